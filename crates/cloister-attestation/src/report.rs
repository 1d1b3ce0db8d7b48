//! The raw SEV-SNP attestation report (AMD SEV-SNP ABI, table "ATTESTATION_REPORT").
//!
//! The report is kept as the exact 1184 bytes the firmware produced: the
//! signature is checked over these bytes, never over a re-encoding, so no
//! bit of the signed area (reserved bytes included) can change unnoticed.
//! Field access goes through the `sev` crate's parser.

use cloister_wire::{HostData, Measurement};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

/// Length of an attestation report in bytes.
pub const REPORT_LEN: usize = 0x4A0;
/// The report is signed over bytes `0..SIGNED_LEN`.
pub const SIGNED_LEN: usize = 0x2A0;
/// Offset of REPORT_DATA (64 bytes).
pub const REPORT_DATA_OFFSET: usize = 0x50;
/// Offset of MEASUREMENT (48 bytes).
pub const MEASUREMENT_OFFSET: usize = 0x90;
/// Offset of HOST_DATA (32 bytes).
pub const HOST_DATA_OFFSET: usize = 0xC0;
/// Offset of the signature's R component (72 bytes, little-endian).
pub const SIGNATURE_R_OFFSET: usize = 0x2A0;
/// Offset of the signature's S component (72 bytes, little-endian).
pub const SIGNATURE_S_OFFSET: usize = 0x2E8;
/// Bytes of a P-384 scalar; the rest of each 72-byte component must be zero.
const SCALAR_LEN: usize = 48;
/// The signature area is followed by reserved bytes up to the end.
const SIGNATURE_END: usize = 0x330;

/// Why report bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The report is not exactly [`REPORT_LEN`] bytes long.
    #[error("attestation report is {actual} bytes, expected {REPORT_LEN}")]
    Length {
        /// The length received.
        actual: usize,
    },
    /// The `sev` parser refused the report (unknown CPU, masked chip id, ...).
    #[error("attestation report fields do not parse: {0}")]
    Fields(String),
}

/// One attestation report, as the exact bytes the firmware signed.
#[derive(Clone, PartialEq, Eq)]
pub struct RawReport(Box<[u8; REPORT_LEN]>);

impl std::fmt::Debug for RawReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RawReport(version {}, measurement {})",
            self.version(),
            hex::encode(self.measurement())
        )
    }
}

impl RawReport {
    /// Takes report bytes; only the length is checked here.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReportError> {
        let array: [u8; REPORT_LEN] = bytes.try_into().map_err(|_| ReportError::Length {
            actual: bytes.len(),
        })?;
        Ok(Self(Box::new(array)))
    }

    /// The report bytes.
    pub fn as_bytes(&self) -> &[u8; REPORT_LEN] {
        &self.0
    }

    /// The report format version (first field). Read without the full parser
    /// so that an unsupported version is reported as such.
    pub fn version(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// The 64 bytes of REPORT_DATA chosen by the guest.
    pub fn report_data(&self) -> &[u8; 64] {
        self.field(REPORT_DATA_OFFSET)
    }

    /// The launch measurement.
    pub fn measurement(&self) -> Measurement {
        Measurement(*self.field(MEASUREMENT_OFFSET))
    }

    /// The HOST_DATA the hypervisor supplied at launch.
    pub fn host_data(&self) -> HostData {
        HostData(*self.field(HOST_DATA_OFFSET))
    }

    /// The bytes covered by the signature.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.0[..SIGNED_LEN]
    }

    /// The ECDSA P-384 signature, if its encoding is canonical: 48-byte
    /// scalars with zero padding, and zero reserved bytes after it.
    pub fn signature(&self) -> Option<p384::ecdsa::Signature> {
        let padded_r = &self.0[SIGNATURE_R_OFFSET..SIGNATURE_S_OFFSET];
        let padded_s = &self.0[SIGNATURE_S_OFFSET..SIGNATURE_END];
        let padding_is_zero = padded_r[SCALAR_LEN..]
            .iter()
            .chain(&padded_s[SCALAR_LEN..])
            .all(|b| *b == 0)
            && self.0[SIGNATURE_END..].iter().all(|b| *b == 0);
        if !padding_is_zero {
            return None;
        }
        let big_endian = |little: &[u8]| -> [u8; SCALAR_LEN] {
            let mut out = [0u8; SCALAR_LEN];
            out.iter_mut()
                .zip(little[..SCALAR_LEN].iter().rev())
                .for_each(|(o, i)| *o = *i);
            out
        };
        p384::ecdsa::Signature::from_scalars(big_endian(padded_r), big_endian(padded_s)).ok()
    }

    /// Writes `signature` into the signature area (little-endian scalars).
    pub(crate) fn set_signature(&mut self, signature: &p384::ecdsa::Signature) {
        let (r, s) = signature.split_bytes();
        let area = &mut self.0[SIGNATURE_R_OFFSET..];
        area.fill(0);
        area[..SCALAR_LEN]
            .iter_mut()
            .zip(r.iter().rev())
            .for_each(|(o, i)| *o = *i);
        let s_area = &mut self.0[SIGNATURE_S_OFFSET..];
        s_area[..SCALAR_LEN]
            .iter_mut()
            .zip(s.iter().rev())
            .for_each(|(o, i)| *o = *i);
    }

    /// All fields, decoded by the `sev` crate.
    pub fn parse(&self) -> Result<AttestationReport, ReportError> {
        AttestationReport::from_bytes(&self.0[..]).map_err(|e| ReportError::Fields(e.to_string()))
    }

    fn field<const N: usize>(&self, offset: usize) -> &[u8; N] {
        self.0[offset..offset + N]
            .try_into()
            .unwrap_or_else(|_| unreachable!("offsets are constants within REPORT_LEN"))
    }
}
