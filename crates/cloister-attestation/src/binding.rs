//! REPORT_DATA binding: ties a report to one TLS session, one nonce and the
//! side of the session that produced it.
//!
//! DESIGN.md fixes the construction for the host: the 64 bytes of
//! REPORT_DATA are `SHA-512("cloister-attest-v1" || tls_exporter || nonce)`,
//! where `tls_exporter` is the 32-byte RFC 8446 exporter value for the label
//! [`EXPORTER_LABEL`] with an empty context and `nonce` is the 32 bytes the
//! client chose. Evidence produced for one TLS session therefore never
//! verifies for another (no relayed evidence), and a nonce the client just
//! chose keeps old evidence from being replayed.
//!
//! In a mutual session (a CVM calling another CVM) the calling side attests
//! too, over the same exporter and the host's nonce, under its own domain:
//! `SHA-512("cloister-attest-caller-v1" || tls_exporter || nonce)`
//! ([`Role::Caller`]). The two domains keep one side's evidence from ever
//! standing in for the other's, whatever order the messages come in: a host
//! that reflects its client's challenge back cannot pass the client's
//! evidence off as its own, nor a caller the host's. The preimages cannot
//! collide across roles either: exporter and nonce have fixed lengths, so
//! the preimages differ in length (82 against 89 bytes).

use sha2::{Digest, Sha512};

use crate::nonce::Nonce;

/// Domain-separation prefix hashed in front of the host's REPORT_DATA
/// preimage ([`Role::Host`]).
pub const REPORT_DATA_DOMAIN: &[u8] = b"cloister-attest-v1";

/// Domain-separation prefix hashed in front of the caller's REPORT_DATA
/// preimage in a mutual session ([`Role::Caller`]).
pub const CALLER_REPORT_DATA_DOMAIN: &[u8] = b"cloister-attest-caller-v1";

/// Which side of an attested TLS session produced the evidence. Each role
/// binds under its own domain string, so evidence made for one role never
/// verifies as the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The TLS server (the CVM host), answering the client's nonce.
    Host,
    /// The TLS client of a mutual session (a CVM calling another CVM),
    /// answering the host's nonce.
    Caller,
}

impl Role {
    /// The domain-separation prefix of this role's REPORT_DATA preimage.
    pub const fn domain(self) -> &'static [u8] {
        match self {
            Self::Host => REPORT_DATA_DOMAIN,
            Self::Caller => CALLER_REPORT_DATA_DOMAIN,
        }
    }
}

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
/// TLS session and one nonce: [`report_data_for`] the [`Role::Host`].
pub fn report_data(exporter: &TlsExporter, nonce: &Nonce) -> [u8; 64] {
    report_data_for(Role::Host, exporter, nonce)
}

/// The REPORT_DATA that `role` must request, and its peer must expect, for
/// one TLS session and one nonce chosen by the peer.
pub fn report_data_for(role: Role, exporter: &TlsExporter, nonce: &Nonce) -> [u8; 64] {
    let mut hash = Sha512::new();
    hash.update(role.domain());
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
    fn caller_report_data_matches_its_documented_formula() {
        let exporter = TlsExporter([7; EXPORTER_LEN]);
        let nonce = Nonce::from_bytes([9; 32]);
        let mut preimage = b"cloister-attest-caller-v1".to_vec();
        preimage.extend_from_slice(&[7; 32]);
        preimage.extend_from_slice(&[9; 32]);
        let expected: [u8; 64] = Sha512::digest(&preimage).into();
        assert_eq!(report_data_for(Role::Caller, &exporter, &nonce), expected);
    }

    #[test]
    fn the_roles_never_share_report_data() {
        let exporter = TlsExporter([1; EXPORTER_LEN]);
        let nonce = Nonce::from_bytes([2; 32]);
        assert_eq!(
            report_data(&exporter, &nonce),
            report_data_for(Role::Host, &exporter, &nonce)
        );
        assert_ne!(
            report_data_for(Role::Host, &exporter, &nonce),
            report_data_for(Role::Caller, &exporter, &nonce)
        );
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
