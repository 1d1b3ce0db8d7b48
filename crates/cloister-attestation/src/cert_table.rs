//! The platform certificate table returned with an extended report.
//!
//! Layout (GHCB specification, "SNP Extended Guest Request"; the same bytes
//! the Linux `SNP_GET_EXT_REPORT` ioctl hands back): a list of 24-byte
//! entries `GUID (16 bytes) || offset (u32 LE) || length (u32 LE)`, ended by
//! an all-zero entry, followed by the certificate blobs. Offsets count from
//! the start of the table. The parser is strict: every entry must point
//! inside the buffer, no entry may be empty, and a GUID may not repeat.

/// Largest certificate table accepted (AMD chains are a few KiB).
pub const MAX_TABLE_LEN: usize = 64 * 1024;
const ENTRY_LEN: usize = 24;

/// What a certificate table entry holds, from its GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CertKind {
    /// AMD Root Key.
    Ark,
    /// AMD SEV Key (or the ASVK, for a VLEK chain).
    Ask,
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
    /// Certificate revocation list.
    Crl,
    /// Any other GUID, kept verbatim.
    Other([u8; 16]),
}

/// GUIDs in RFC 4122 byte order, as the table stores them.
const GUIDS: [(CertKind, [u8; 16]); 5] = [
    (
        CertKind::Ark,
        guid(0xc0b406a4, 0xa803, 0x4952, 0x9743_3fb6014cd0ae),
    ),
    (
        CertKind::Ask,
        guid(0x4ab7b379, 0xbbac, 0x4fe4, 0xa02f_05aef327c782),
    ),
    (
        CertKind::Vcek,
        guid(0x63da758d, 0xe664, 0x4564, 0xadc5_f4b93be8accd),
    ),
    (
        CertKind::Vlek,
        guid(0xa8074bc2, 0xa25a, 0x483e, 0xaae6_39c045a0b8a1),
    ),
    (
        CertKind::Crl,
        guid(0x92f81bc3, 0x5811, 0x4d3d, 0x97ff_d19f88dc67ea),
    ),
];

const fn guid(a: u32, b: u16, c: u16, d: u64) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    let d = d.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

impl CertKind {
    /// The kind named by a GUID.
    pub fn from_guid(bytes: [u8; 16]) -> Self {
        GUIDS
            .iter()
            .find(|(_, g)| *g == bytes)
            .map_or(Self::Other(bytes), |(kind, _)| *kind)
    }

    /// The GUID that names this kind.
    pub fn guid(&self) -> [u8; 16] {
        match self {
            Self::Other(bytes) => *bytes,
            known => GUIDS
                .iter()
                .find(|(kind, _)| kind == known)
                .map_or([0; 16], |(_, g)| *g),
        }
    }
}

/// Why a certificate table was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertTableError {
    /// The table exceeds [`MAX_TABLE_LEN`].
    #[error("certificate table is {0} bytes, more than the {MAX_TABLE_LEN} allowed")]
    TooLong(usize),
    /// The entry list runs past the end without a terminating zero entry.
    #[error("certificate table has no terminating zero entry")]
    Unterminated,
    /// An entry points outside the table or into the entry list.
    #[error("certificate table entry {index} ({kind:?}) points outside its blob area")]
    OutOfBounds {
        /// Position of the entry.
        index: usize,
        /// What it claimed to hold.
        kind: CertKind,
    },
    /// An entry has length zero.
    #[error("certificate table entry {index} ({kind:?}) is empty")]
    Empty {
        /// Position of the entry.
        index: usize,
        /// What it claimed to hold.
        kind: CertKind,
    },
    /// The same GUID appears twice.
    #[error("certificate table holds more than one {0:?}")]
    Duplicate(CertKind),
}

/// A parsed certificate table: (kind, certificate bytes) in table order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertTable {
    entries: Vec<(CertKind, Vec<u8>)>,
}

impl CertTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the entry of `kind`.
    pub fn insert(&mut self, kind: CertKind, der: Vec<u8>) {
        match self.entries.iter_mut().find(|(k, _)| *k == kind) {
            Some(entry) => entry.1 = der,
            None => self.entries.push((kind, der)),
        }
    }

    /// The certificate of `kind`, if present.
    pub fn get(&self, kind: CertKind) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, der)| der.as_slice())
    }

    /// All entries in table order.
    pub fn entries(&self) -> impl Iterator<Item = (CertKind, &[u8])> {
        self.entries.iter().map(|(k, der)| (*k, der.as_slice()))
    }

    /// Parses the GHCB table layout.
    pub fn parse(bytes: &[u8]) -> Result<Self, CertTableError> {
        if bytes.len() > MAX_TABLE_LEN {
            return Err(CertTableError::TooLong(bytes.len()));
        }
        let mut headers = Vec::new();
        for header in bytes.chunks(ENTRY_LEN) {
            let (guid_bytes, sizes) = header
                .split_first_chunk::<16>()
                .ok_or(CertTableError::Unterminated)?;
            if *guid_bytes == [0; 16] {
                break;
            }
            let (offset, length) = sizes
                .split_first_chunk::<4>()
                .ok_or(CertTableError::Unterminated)?;
            let length: [u8; 4] = length
                .try_into()
                .map_err(|_| CertTableError::Unterminated)?;
            headers.push((
                CertKind::from_guid(*guid_bytes),
                read_u32(*offset),
                read_u32(length),
            ));
        }
        // Blobs live after the entry list and its zero terminator.
        let blobs_start = (headers.len() + 1) * ENTRY_LEN;
        if blobs_start > bytes.len() {
            return Err(CertTableError::Unterminated);
        }
        let mut table = Self::new();
        for (index, (kind, offset, length)) in headers.into_iter().enumerate() {
            if length == 0 {
                return Err(CertTableError::Empty { index, kind });
            }
            let blob = offset
                .checked_add(length)
                .filter(|end| offset >= blobs_start && *end <= bytes.len())
                .map(|end| &bytes[offset..end])
                .ok_or(CertTableError::OutOfBounds { index, kind })?;
            if table.get(kind).is_some() {
                return Err(CertTableError::Duplicate(kind));
            }
            table.entries.push((kind, blob.to_vec()));
        }
        Ok(table)
    }

    /// Encodes the GHCB table layout (entries, zero entry, blobs).
    pub fn encode(&self) -> Vec<u8> {
        let mut header = Vec::with_capacity((self.entries.len() + 1) * ENTRY_LEN);
        let mut blobs = Vec::new();
        let blobs_start = (self.entries.len() + 1) * ENTRY_LEN;
        for (kind, der) in &self.entries {
            header.extend_from_slice(&kind.guid());
            header.extend_from_slice(&len_u32(blobs_start + blobs.len()).to_le_bytes());
            header.extend_from_slice(&len_u32(der.len()).to_le_bytes());
            blobs.extend_from_slice(der);
        }
        header.extend_from_slice(&[0; ENTRY_LEN]);
        header.extend_from_slice(&blobs);
        header
    }
}

fn read_u32(word: [u8; 4]) -> usize {
    u32::from_le_bytes(word) as usize
}

/// Table sizes are bounded by [`MAX_TABLE_LEN`], far below `u32::MAX`.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CertTable {
        let mut table = CertTable::new();
        table.insert(CertKind::Vcek, vec![1, 2, 3]);
        table.insert(CertKind::Ask, vec![4, 5]);
        table.insert(CertKind::Other([7; 16]), vec![6]);
        table
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let table = sample();
        assert_eq!(CertTable::parse(&table.encode()), Ok(table));
    }

    #[test]
    fn guids_match_the_ghcb_spec_text() {
        assert_eq!(
            hex::encode(CertKind::Vcek.guid()),
            "63da758de6644564adc5f4b93be8accd"
        );
        assert_eq!(CertKind::from_guid(CertKind::Ark.guid()), CertKind::Ark);
    }

    #[test]
    fn missing_terminator_is_rejected() {
        let bytes = sample().encode();
        assert_eq!(
            CertTable::parse(&bytes[..ENTRY_LEN * 2]),
            Err(CertTableError::Unterminated)
        );
    }

    #[test]
    fn out_of_bounds_entry_is_rejected() {
        let mut bytes = sample().encode();
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            CertTable::parse(&bytes),
            Err(CertTableError::OutOfBounds { index: 2, .. })
        ));
    }

    #[test]
    fn blob_overlapping_the_entries_is_rejected() {
        let mut bytes = sample().encode();
        bytes[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&bytes),
            Err(CertTableError::OutOfBounds { index: 0, .. })
        ));
    }

    #[test]
    fn duplicate_guid_is_rejected() {
        let mut bytes = sample().encode();
        let ask_guid = CertKind::Ask.guid();
        bytes[..16].copy_from_slice(&ask_guid);
        assert_eq!(
            CertTable::parse(&bytes),
            Err(CertTableError::Duplicate(CertKind::Ask))
        );
    }

    #[test]
    fn empty_entry_is_rejected() {
        let mut bytes = sample().encode();
        bytes[20..24].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            CertTable::parse(&bytes),
            Err(CertTableError::Empty { index: 0, .. })
        ));
    }
}
