//! REPORT_DATA binding: ties a report to one TLS session and one client nonce.
//!
//! DESIGN.md fixes the construction: the 64 bytes of REPORT_DATA are
//! `SHA-512("cloister-attest-v1" || tls_exporter || nonce)`, where
//! `tls_exporter` is the 32-byte RFC 8446 exporter value for the label
//! [`EXPORTER_LABEL`] with an empty context. Evidence produced for one TLS
//! session therefore never verifies for another (no relayed evidence), and a
//! nonce the client just chose keeps old evidence from being replayed.

use sha2::{Digest, Sha512};

use crate::nonce::Nonce;

/// Domain-separation prefix hashed in front of every REPORT_DATA preimage.
pub const REPORT_DATA_DOMAIN: &[u8] = b"cloister-attest-v1";

/// The TLS exporter label both ends use to derive the session binding.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-cloister-attestation";

/// Length in bytes of the exporter value requested under [`EXPORTER_LABEL`].
pub const EXPORTER_LEN: usize = 32;

/// The keying material exported from one TLS session under [`EXPORTER_LABEL`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TlsExporter(pub [u8; EXPORTER_LEN]);

impl std::fmt::Debug for TlsExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secret-derived: print only that it exists.
        f.write_str("TlsExporter(..)")
    }
}

/// The REPORT_DATA a host must request, and a client must expect, for one
/// TLS session and one nonce.
pub fn report_data(exporter: &TlsExporter, nonce: &Nonce) -> [u8; 64] {
    let mut hash = Sha512::new();
    hash.update(REPORT_DATA_DOMAIN);
    hash.update(exporter.0);
    hash.update(nonce.as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_matches_the_design_formula() {
        let exporter = TlsExporter([7; EXPORTER_LEN]);
        let nonce = Nonce::from_bytes([9; 32]);
        let mut preimage = b"cloister-attest-v1".to_vec();
        preimage.extend_from_slice(&[7; 32]);
        preimage.extend_from_slice(&[9; 32]);
        let expected: [u8; 64] = Sha512::digest(&preimage).into();
        assert_eq!(report_data(&exporter, &nonce), expected);
    }

    #[test]
    fn every_input_changes_report_data() {
        let base = report_data(&TlsExporter([1; 32]), &Nonce::from_bytes([2; 32]));
        assert_ne!(
            base,
            report_data(&TlsExporter([3; 32]), &Nonce::from_bytes([2; 32]))
        );
        assert_ne!(
            base,
            report_data(&TlsExporter([1; 32]), &Nonce::from_bytes([4; 32]))
        );
    }
}
