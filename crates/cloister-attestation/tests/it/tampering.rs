//! Table-driven refusals: each tampered or non-compliant piece of simulated
//! evidence must be rejected with its own [`VerifyError`] variant.

use crate::common;

use std::collections::HashMap;
use std::mem::discriminant;
use std::time::{Duration, Instant};

use cloister_attestation::{
    CertKind, CertTable, Evidence, EvidenceProvider, Nonce, NonceTracker, Policy, REPORT_LEN,
    RawReport, RootKind, SimulatedLaunch, SimulatedPlatform, SimulatedProvider, TlsExporter,
    TrustAnchors, VerifiedReport, Verifier, VerifyError, report_data,
};
use common::{allow_list, dev_anchors, dev_policy, launch, production_policy, simulation};

const NONCE_LIFETIME: Duration = Duration::from_secs(30);
const DEBUG_BIT: u64 = 1 << 19;
const MIGRATION_AGENT_BIT: u64 = 1 << 18;
const REPORTED_TCB_MICROCODE: usize = 0x187;
const CHIP_ID: usize = 0x1A0;
const KEY_INFO: usize = 0x48;

/// One verification attempt; each case changes one thing from the default.
struct Attempt {
    platform: &'static SimulatedPlatform,
    launch: SimulatedLaunch,
    policy: Policy,
    anchors: TrustAnchors,
    /// Bind the report to this exporter instead of the session's.
    report_exporter: Option<TlsExporter>,
    /// Edit the report bytes; `resign` then signs them again with the VCEK.
    edit_report: Option<fn(&mut [u8; REPORT_LEN])>,
    resign: bool,
    edit_certificates: Option<fn(&mut CertTable)>,
    edit_wire: Option<fn(&mut Vec<u8>)>,
    /// How long after issue the nonce is redeemed.
    answer_after: Duration,
    /// Answer with a nonce the verifier never issued.
    foreign_nonce: bool,
    /// Present the same evidence twice; the second result counts.
    replay: bool,
}

impl Attempt {
    fn new() -> Self {
        Self {
            platform: &simulation().platform,
            launch: launch(),
            policy: dev_policy(),
            anchors: dev_anchors(),
            report_exporter: None,
            edit_report: None,
            resign: false,
            edit_certificates: None,
            edit_wire: None,
            answer_after: Duration::from_secs(1),
            foreign_nonce: false,
            replay: false,
        }
    }

    fn run(self) -> Result<VerifiedReport, VerifyError> {
        let session_exporter = TlsExporter([0x5e; 32]);
        let start = Instant::now();
        let mut tracker = NonceTracker::new(NONCE_LIFETIME);
        let issued = tracker.issue(start);
        let nonce = if self.foreign_nonce {
            Nonce::random()
        } else {
            issued
        };
        let bound_to = self.report_exporter.unwrap_or(session_exporter);
        let mut report = self
            .platform
            .report(&self.launch, &report_data(&bound_to, &nonce))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(edit) = self.edit_report {
            let mut bytes = *report.as_bytes();
            edit(&mut bytes);
            report = RawReport::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
            if self.resign {
                self.platform.sign(&mut report);
            }
        }
        let mut certificates = self.platform.certificates();
        if let Some(edit) = self.edit_certificates {
            edit(&mut certificates);
        }
        let mut wire = Evidence {
            report,
            certificates,
        }
        .encode();
        if let Some(edit) = self.edit_wire {
            edit(&mut wire);
        }
        let authority = allow_list(&self.policy);
        let verifier = Verifier::new(self.anchors, self.policy, authority);
        let now = start + self.answer_after;
        let first = verifier.verify(&wire, &session_exporter, &nonce, &mut tracker, now);
        if self.replay {
            first.unwrap_or_else(|e| {
                panic!("the original evidence must verify before its replay: {e}")
            });
            return verifier.verify(&wire, &session_exporter, &nonce, &mut tracker, now);
        }
        first
    }
}

type Case = (&'static str, fn(&mut Attempt), fn(&VerifyError) -> bool);

const CASES: &[Case] = &[
    (
        "debug allowed by the guest policy",
        |a| a.launch.guest_policy |= DEBUG_BIT,
        |e| matches!(e, VerifyError::DebugAllowed),
    ),
    (
        "migration agent allowed",
        |a| a.launch.guest_policy |= MIGRATION_AGENT_BIT,
        |e| matches!(e, VerifyError::MigrationAgentAllowed),
    ),
    (
        "old TCB",
        |a| a.platform = &simulation().outdated,
        |e| {
            matches!(
                e,
                VerifyError::TcbTooOld {
                    component: "microcode",
                    ..
                }
            )
        },
    ),
    (
        "wrong VMPL",
        |a| a.launch.vmpl = 2,
        |e| matches!(e, VerifyError::VmplNotAllowed(2)),
    ),
    (
        "measurement not accepted",
        |a| a.launch.measurement.0[0] ^= 1,
        |e| matches!(e, VerifyError::MeasurementNotAccepted(_)),
    ),
    (
        "wrong host data",
        |a| a.launch.host_data.0[31] ^= 1,
        |e| matches!(e, VerifyError::HostDataNotAccepted(_)),
    ),
    (
        "REPORT_DATA bound to another exporter",
        |a| a.report_exporter = Some(TlsExporter([0xee; 32])),
        |e| matches!(e, VerifyError::ReportDataMismatch),
    ),
    (
        "stale nonce",
        |a| a.answer_after = Duration::from_secs(31),
        |e| matches!(e, VerifyError::NonceExpired(_)),
    ),
    (
        "replayed evidence",
        |a| a.replay = true,
        |e| matches!(e, VerifyError::NonceReplayed),
    ),
    (
        "nonce never issued",
        |a| a.foreign_nonce = true,
        |e| matches!(e, VerifyError::NonceUnknown),
    ),
    (
        "truncated report",
        |a| a.edit_wire = Some(truncate_report),
        |e| matches!(e, VerifyError::Malformed(_)),
    ),
    (
        "unsupported report version",
        |a| {
            a.edit_report = Some(|r| r[0] = 6);
            a.resign = true;
        },
        |e| matches!(e, VerifyError::UnsupportedReportVersion { version: 6, .. }),
    ),
    (
        "simulated evidence under a production policy",
        |a| a.policy = production_policy(),
        |e| matches!(e, VerifyError::SimulatedNotAllowed),
    ),
    (
        "unknown signer",
        |a| a.platform = &simulation().stranger,
        |e| matches!(e, VerifyError::UntrustedRoot),
    ),
    (
        "report body tampered after signing",
        |a| a.edit_report = Some(|r| r[0x90] ^= 1),
        |e| matches!(e, VerifyError::ReportSignatureInvalid),
    ),
    (
        "reported TCB differs from the VCEK's",
        |a| {
            a.edit_report = Some(|r| r[REPORTED_TCB_MICROCODE] += 1);
            a.resign = true;
        },
        |e| matches!(e, VerifyError::TcbMismatch { .. }),
    ),
    (
        "chip id differs from the VCEK's",
        |a| {
            a.edit_report = Some(|r| r[CHIP_ID] ^= 1);
            a.resign = true;
        },
        |e| matches!(e, VerifyError::ChipIdMismatch),
    ),
    (
        "ASK not signed by the pinned ARK",
        |a| a.edit_certificates = Some(foreign_ask),
        |e| matches!(e, VerifyError::ChainInvalid(_)),
    ),
    (
        "no VCEK in the certificate table",
        |a| a.edit_certificates = Some(|t| *t = without(t, CertKind::Vcek)),
        |e| matches!(e, VerifyError::MissingEndorsementKey),
    ),
    (
        "report claims a VLEK signed it",
        |a| {
            a.edit_report = Some(|r| r[KEY_INFO] = 1 << 2);
            a.resign = true;
        },
        |e| matches!(e, VerifyError::EndorsementKeyMismatch { .. }),
    ),
    (
        "VCEK is not a certificate",
        |a| a.edit_certificates = Some(|t| t.insert(CertKind::Vcek, vec![0x30, 0x03, 1, 2, 3])),
        |e| {
            matches!(
                e,
                VerifyError::BadCertificate {
                    kind: CertKind::Vcek,
                    ..
                }
            )
        },
    ),
];

/// Rewrites the evidence so that its report is 184 bytes short.
fn truncate_report(wire: &mut Vec<u8>) {
    let short = REPORT_LEN - 184;
    wire[6..10].copy_from_slice(&u32::try_from(short).unwrap_or_default().to_be_bytes());
    wire.drain(10 + short..10 + REPORT_LEN);
}

fn foreign_ask(table: &mut CertTable) {
    let stranger = simulation().stranger.certificates();
    table.insert(
        CertKind::Ask,
        stranger.get(CertKind::Ask).unwrap_or_default().to_vec(),
    );
}

fn without(table: &CertTable, kind: CertKind) -> CertTable {
    let mut kept = CertTable::new();
    table
        .entries()
        .filter(|(k, _)| *k != kind)
        .for_each(|(k, der)| kept.insert(k, der.to_vec()));
    kept
}

#[test]
fn untampered_simulated_evidence_verifies_under_the_development_policy() {
    let verified = Attempt::new().run().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.root, RootKind::Simulated);
    assert_eq!(verified.measurement, launch().measurement);
}

#[test]
fn every_tampered_or_non_compliant_case_is_refused_with_its_own_error() {
    assert!(CASES.len() >= 15);
    let mut seen = HashMap::new();
    for (name, setup, expected) in CASES {
        let mut attempt = Attempt::new();
        setup(&mut attempt);
        let error = match attempt.run() {
            Ok(_) => panic!("case {name:?} was accepted"),
            Err(error) => error,
        };
        assert!(
            expected(&error),
            "case {name:?} failed with the wrong error: {error:?}"
        );
        assert!(!error.to_string().is_empty());
        if let Some(other) = seen.insert(discriminant(&error), *name) {
            panic!("cases {other:?} and {name:?} share the error variant {error:?}");
        }
    }
}

#[test]
fn the_simulated_provider_serves_verifiable_evidence_bound_to_the_session() {
    let provider = SimulatedProvider::new(simulation().platform.clone(), launch());
    assert!(provider.is_simulated());
    let exporter = TlsExporter([3; 32]);
    let mut tracker = NonceTracker::new(NONCE_LIFETIME);
    let now = Instant::now();
    let nonce = tracker.issue(now);
    let evidence = provider
        .evidence(&report_data(&exporter, &nonce))
        .unwrap_or_else(|e| panic!("{e}"));
    let policy = dev_policy();
    let verifier = Verifier::new(dev_anchors(), policy.clone(), allow_list(&policy));
    let verified = verifier.verify(&evidence.encode(), &exporter, &nonce, &mut tracker, now);
    assert_eq!(verified.map(|v| v.host_data), Ok(launch().host_data));
}

#[test]
fn a_seed_reproduces_the_same_simulated_root() {
    let again =
        SimulatedPlatform::from_seed([1; 32], common::SIM_TCB).unwrap_or_else(|e| panic!("{e}"));
    let ark = |p: &SimulatedPlatform| p.certificates().get(CertKind::Ark).map(<[u8]>::to_vec);
    let key = |der: Option<Vec<u8>>| {
        let cert = sev::certs::snp::Certificate::from_der(&der.unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let x509: x509_cert::Certificate = cert.into();
        x509.tbs_certificate.subject_public_key_info
    };
    assert_eq!(key(ark(&again)), key(ark(&simulation().platform)));
    assert_ne!(key(ark(&again)), key(ark(&simulation().stranger)));
}
