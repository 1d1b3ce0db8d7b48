//! [`Evidence`]: what a CVM hands a verifier, and its stable wire encoding.
//!
//! Evidence is one attestation report plus the platform's certificate table,
//! which carries the VCEK or VLEK and, when the platform supplies them, the
//! ASK (or ASVK) and ARK. When the hypervisor supplies no certificates the
//! host inserts its cached VCEK into the table before sending.
//!
//! Wire format, version 1 (all integers big-endian):
//!
//! ```text
//! magic          4 bytes  "CLEV"
//! format version u16      1
//! report length  u32      must be 1184
//! report         bytes
//! table length   u32      at most 64 KiB
//! cert table     bytes    GHCB layout, see cert_table
//! ```
//!
//! Nothing may follow. A new layout gets a new format version; a decoder
//! refuses versions it does not know rather than guessing.

use crate::cert_table::{CertKind, CertTable, CertTableError, MAX_TABLE_LEN};
use crate::report::{REPORT_LEN, RawReport, ReportError};

/// The four bytes every encoded evidence starts with.
pub const MAGIC: [u8; 4] = *b"CLEV";
/// The only wire format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Why evidence bytes were rejected before any cryptography ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The input ended inside a field.
    #[error("evidence truncated while reading {0}")]
    Truncated(&'static str),
    /// The input does not start with [`MAGIC`].
    #[error("not Cloister evidence (bad magic)")]
    BadMagic,
    /// The wire format version is not [`FORMAT_VERSION`].
    #[error("evidence wire format version {0} is not supported (expected {FORMAT_VERSION})")]
    UnsupportedFormat(u16),
    /// The report is malformed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The certificate table is malformed.
    #[error("certificate table: {0}")]
    CertTable(#[from] CertTableError),
    /// Bytes follow the certificate table.
    #[error("{0} unexpected bytes after the evidence")]
    TrailingBytes(usize),
}

/// An attestation report and the certificates that endorse it. Unverified:
/// hand it to [`crate::Verifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The report, exactly as signed.
    pub report: RawReport,
    /// VCEK or VLEK, optional ASK/ASVK and ARK, and any other platform entries.
    pub certificates: CertTable,
}

impl Evidence {
    /// The endorsement key certificate: VLEK if present, else VCEK.
    pub fn endorsement_key(&self) -> Option<(CertKind, &[u8])> {
        [CertKind::Vlek, CertKind::Vcek]
            .into_iter()
            .find_map(|kind| self.certificates.get(kind).map(|der| (kind, der)))
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let table = self.certificates.encode();
        let mut out = Vec::with_capacity(14 + REPORT_LEN + table.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&wire_len(REPORT_LEN).to_be_bytes());
        out.extend_from_slice(self.report.as_bytes());
        out.extend_from_slice(&wire_len(table.len()).to_be_bytes());
        out.extend_from_slice(&table);
        out
    }

    /// Parses the wire encoding; structural checks only.
    pub fn decode(bytes: &[u8]) -> Result<Self, EvidenceError> {
        let mut input = Reader(bytes);
        if input.take(4, "magic")? != MAGIC {
            return Err(EvidenceError::BadMagic);
        }
        let version = u16::from_be_bytes(input.array("format version")?);
        if version != FORMAT_VERSION {
            return Err(EvidenceError::UnsupportedFormat(version));
        }
        let report_len = u32::from_be_bytes(input.array("report length")?) as usize;
        if report_len != REPORT_LEN {
            return Err(ReportError::Length { actual: report_len }.into());
        }
        let report = RawReport::from_bytes(input.take(report_len, "report")?)?;
        let table_len = u32::from_be_bytes(input.array("certificate table length")?) as usize;
        if table_len > MAX_TABLE_LEN {
            return Err(CertTableError::TooLong(table_len).into());
        }
        let certificates = CertTable::parse(input.take(table_len, "certificate table")?)?;
        if !input.0.is_empty() {
            return Err(EvidenceError::TrailingBytes(input.0.len()));
        }
        Ok(Self {
            report,
            certificates,
        })
    }
}

/// Lengths written are bounded by [`REPORT_LEN`] and [`MAX_TABLE_LEN`].
fn wire_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], EvidenceError> {
        if self.0.len() < n {
            return Err(EvidenceError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], EvidenceError> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| EvidenceError::Truncated(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Evidence {
        let mut certificates = CertTable::new();
        certificates.insert(CertKind::Vcek, vec![0x30, 0x00]);
        Evidence {
            report: RawReport::from_bytes(&[0x11; REPORT_LEN]).unwrap_or_else(|e| panic!("{e}")),
            certificates,
        }
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let evidence = sample();
        assert_eq!(Evidence::decode(&evidence.encode()), Ok(evidence));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                Evidence::decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
    }

    #[test]
    fn trailing_bytes_bad_magic_and_unknown_version_are_rejected() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert_eq!(
            Evidence::decode(&bytes),
            Err(EvidenceError::TrailingBytes(1))
        );
        let mut bytes = sample().encode();
        bytes[0] = b'X';
        assert_eq!(Evidence::decode(&bytes), Err(EvidenceError::BadMagic));
        let mut bytes = sample().encode();
        bytes[5] = 2;
        assert_eq!(
            Evidence::decode(&bytes),
            Err(EvidenceError::UnsupportedFormat(2))
        );
    }

    #[test]
    fn a_short_report_length_is_named() {
        let mut bytes = sample().encode();
        bytes[6..10].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(
            Evidence::decode(&bytes),
            Err(EvidenceError::Report(ReportError::Length { actual: 1000 }))
        );
    }
}
