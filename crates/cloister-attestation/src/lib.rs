//! AMD SEV-SNP attestation for Cloister (`docs/DESIGN.md`, phase 4).
//!
//! A client must not send a conversation to a host until the host proves,
//! with evidence signed by AMD hardware, that it is a confidential VM running
//! released software under released policies, and that the proof belongs to
//! the very TLS session the client is talking over. This crate is that proof,
//! independent of any transport; the RA-TLS layer (`cloister-ratls`) carries
//! its bytes, and both the host and the client link it.
//!
//! # Main types
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
//!   to the VCEK's and one [`ProductLine`] named by root, key and CPUID, then
//!   the [`Policy`] (TOML; a minimum TCB per product line) and a
//!   [`MeasurementAuthority`] for the launch ([`LaunchFacts`]: measurement,
//!   HOST_DATA, guest policy and platform info, released together). Each
//!   failed check is its own [`VerifyError`] variant.
//! * **Providers** ([`EvidenceProvider`]): [`SevGuestProvider`] reads
//!   `/dev/sev-guest`; [`SimulatedProvider`] is a **simulated** stand-in for
//!   development and CI, accepted only under `allow_simulated = true`.
//! * **HOST_DATA** ([`HostData::of_launch`](cloister_wire::HostData::of_launch)):
//!   binds the host's policy files ([`policy_set_digest`]), model and
//!   settings; the host checks it against its own report before serving.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A simulated host answers a client's nonce; the client verifies the
//! evidence against its pinned roots, its policy and an allow-list, and the
//! same evidence is refused when replayed.
//!
//! ```rust
//! use std::time::{Duration, Instant};
//!
//! use cloister_attestation::{
//!     AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, EvidenceProvider, LaunchFacts, NonceTracker,
//!     Policy, SimulatedLaunch, SimulatedPlatform, SimulatedProvider, TlsExporter, TrustAnchors,
//!     Verifier, VerifyError, report_data,
//! };
//! use cloister_wire::{HostData, Measurement};
//!
//! // The host side: a SIMULATED platform. Its root derives from a public seed
//! // (seconds of RSA key generation), kept in a cache folder as hosts do.
//! let cache = std::env::temp_dir().join("cloister-simulated");
//! let (platform, _) = SimulatedPlatform::cached(DEVELOPMENT_SEED, DEVELOPMENT_TCB, &cache)?;
//! let anchors = platform.pin_in(TrustAnchors::amd())?;
//! let launch = SimulatedLaunch::new(Measurement([0x4d; 48]), HostData([0x48; 32]));
//! let host = SimulatedProvider::new(platform, launch);
//!
//! // The client side: a development policy and the released values.
//! let policy = Policy::from_toml(
//!     r#"
//!     allow_simulated = true
//!     [minimum_tcb.milan]
//!     bootloader = 3
//!     tee = 0
//!     snp = 8
//!     microcode = 115
//!     [accepted] # this example asks an explicit allow-list instead
//!     launches = []
//!     "#,
//! )?;
//! let released = AllowList {
//!     launches: [LaunchFacts {
//!         measurement: Measurement([0x4d; 48]),
//!         host_data: HostData([0x48; 32]),
//!         guest_policy: SimulatedLaunch::DEFAULT_GUEST_POLICY,
//!         platform_info: SimulatedLaunch::DEFAULT_PLATFORM_INFO,
//!     }]
//!     .into(),
//! };
//! let verifier = Verifier::new(anchors, policy, released);
//!
//! // One attestation: the client's nonce, the session's exporter.
//! let mut nonces = NonceTracker::new(Duration::from_secs(60));
//! let nonce = nonces.issue(Instant::now());
//! let exporter = TlsExporter([7; 32]); // in a session: exported from TLS
//! let evidence = host.evidence(&report_data(&exporter, &nonce))?.encode();
//!
//! let verified = verifier.verify(&evidence, &exporter, &nonce, &mut nonces, Instant::now())?;
//! assert_eq!(verified.host_data, HostData([0x48; 32]));
//!
//! let replay = verifier.verify(&evidence, &exporter, &nonce, &mut nonces, Instant::now());
//! assert!(matches!(replay, Err(VerifyError::NonceReplayed)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
    AllowList, AuthorityRejection, LaunchFacts, MeasurementAuthority, NEWEST_REPORT_VERSION,
    OLDEST_REPORT_VERSION, Policy, PolicyError,
};
pub use policy_set::{POLICY_SET_DOMAIN, PolicySetError, policy_set_digest};
pub use provider::{
    EvidenceProvider, ProviderError, SIMULATION_WARNING, SevGuestProvider, SimulatedProvider,
    evidence_from_ext_report,
};
pub use report::{REPORT_LEN, RawReport, ReportError, SIGNED_LEN};
pub use roots::{ChainError, ProductLine, RootKind, TrustAnchors};
pub use simulated::{
    DEVELOPMENT_SEED, DEVELOPMENT_TCB, RootSource, SIMULATED_MEASUREMENT_DOMAIN, SimulatedLaunch,
    SimulatedPlatform, SimulatedRoot, SimulationError, simulated_measurement,
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
