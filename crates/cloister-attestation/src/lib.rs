//! AMD SEV-SNP attestation for Cloister (DESIGN.md, phase 4 and "Attestation").
//!
//! A client must not send a conversation to a host until the host proves,
//! with evidence signed by AMD hardware, that it is a confidential VM running
//! released software under released policies, and that the proof belongs to
//! the very TLS session the client is talking over. This crate is that proof,
//! independent of any transport; the RA-TLS layer carries its bytes.
//!
//! * **Binding** ([`report_data`]): REPORT_DATA =
//!   `SHA-512("cloister-attest-v1" || tls_exporter || nonce)`, with the
//!   exporter label [`EXPORTER_LABEL`] (32 bytes), and single-use, expiring
//!   nonces ([`NonceTracker`]). In mutual sessions the calling CVM binds its
//!   own evidence under `"cloister-attest-caller-v1"` ([`Role`],
//!   [`report_data_for`]), so neither side's evidence passes for the other's.
//! * **Evidence** ([`Evidence`]): report + certificate table (VCEK or VLEK,
//!   optional ASK/ARK), with a versioned wire encoding and strict parsers.
//! * **Verification** ([`Verifier`]): chain to a pinned AMD root for Milan,
//!   Genoa or Turin ([`TrustAnchors`]), report signature, reported TCB equal
//!   to the VCEK's, then the [`Policy`] (TOML) and a
//!   [`MeasurementAuthority`] for measurements and HOST_DATA. Each failed
//!   check is its own [`VerifyError`] variant.
//! * **Providers** ([`EvidenceProvider`]): [`SevGuestProvider`] reads
//!   `/dev/sev-guest`; [`SimulatedProvider`] is a **simulated** stand-in for
//!   development and CI, accepted only under `allow_simulated = true`.
//! * **HOST_DATA** ([`policy_set_digest`]): the digest of the host's policy
//!   files, which the host checks against its own report before serving.

mod binding;
mod cert_table;
mod endorsement;
mod evidence;
mod nonce;
mod policy;
mod policy_set;
mod provider;
mod report;
mod roots;
mod simulated;
mod verify;

pub use binding::{
    CALLER_REPORT_DATA_DOMAIN, EXPORTER_LABEL, EXPORTER_LEN, REPORT_DATA_DOMAIN, Role, TlsExporter,
    report_data, report_data_for,
};
pub use cert_table::{CertKind, CertTable, CertTableError, MAX_TABLE_LEN};
pub use endorsement::{EndorsementError, EndorsementFacts, Tcb};
pub use evidence::{Evidence, EvidenceError, FORMAT_VERSION, MAGIC};
pub use nonce::{FreshnessError, Nonce, NonceTracker};
pub use policy::{
    AllowList, AuthorityRejection, MeasurementAuthority, NEWEST_REPORT_VERSION,
    OLDEST_REPORT_VERSION, Policy, PolicyError,
};
pub use policy_set::{
    POLICY_SET_DOMAIN, PolicySetError, ensure_policy_set_matches, policy_set_digest,
};
pub use provider::{
    EvidenceProvider, ProviderError, SIMULATION_WARNING, SevGuestProvider, SimulatedProvider,
    evidence_from_ext_report,
};
pub use report::{REPORT_LEN, RawReport, ReportError, SIGNED_LEN};
pub use roots::{ChainError, ProductLine, RootKind, TrustAnchors};
pub use simulated::{
    DEVELOPMENT_SEED, DEVELOPMENT_TCB, SIMULATED_MEASUREMENT_DOMAIN, SimulatedLaunch,
    SimulatedPlatform, SimulationError, simulated_measurement,
};
pub use verify::{VerifiedReport, Verifier, VerifyError};

/// Parses untrusted bytes the way a verifier does, for fuzzing: evidence
/// framing, certificate table, report fields and endorsement extensions.
/// Returns normally on any input; a panic is a bug.
pub fn parse_untrusted(bytes: &[u8]) {
    let _ = CertTable::parse(bytes);
    if let Ok(report) = RawReport::from_bytes(bytes) {
        let _ = report.parse();
        let _ = report.signature();
    }
    if let Ok(evidence) = Evidence::decode(bytes) {
        let _ = evidence.report.parse();
        let _ = evidence.report.signature();
        for (_, der) in evidence.certificates.entries() {
            if let Ok(cert) = <x509_cert::Certificate as x509_cert::der::Decode>::from_der(der) {
                let _ = EndorsementFacts::from_certificate(&cert);
            }
        }
    }
}
