//! Verification of evidence: platform first, then policy, then binding.
//!
//! The order matters only for which error is reported; every check runs
//! before anything is accepted, and any failure refuses the evidence:
//!
//! 1. freshness of the nonce (consumed even if verification then fails);
//! 2. structure of the evidence and report version;
//! 3. chain VCEK/VLEK -> ASK -> pinned ARK (`sev` crate, RSA-PSS);
//! 4. simulated roots only if the policy allows them;
//! 5. ECDSA P-384 report signature over the exact signed bytes;
//! 6. REPORTED_TCB and chip id equal to those in the endorsement key, and
//!    one product line named by root, endorsement key and CPUID alike;
//! 7. policy: debug, migration agent, VMPL, the product line's minimum TCB,
//!    and the launch (measurement, HOST_DATA, guest policy, platform info)
//!    through the [`MeasurementAuthority`];
//! 8. REPORT_DATA equals the binding to this TLS session, nonce and role.

use std::time::Instant;

use cloister_wire::{HostData, Measurement};
use p384::ecdsa::signature::Verifier as _;
use sev::certs::snp::Certificate;
use x509_cert::der::Decode;

use crate::binding::{Role, TlsExporter, report_data_for};
use crate::cert_table::CertKind;
use crate::endorsement::{EndorsementError, EndorsementFacts, Tcb};
use crate::evidence::{Evidence, EvidenceError};
use crate::nonce::{FreshnessError, Nonce, NonceTracker};
use crate::policy::{AuthorityRejection, LaunchFacts, MeasurementAuthority, Policy};
use crate::report::ReportError;
use crate::roots::{ChainError, ProductLine, RootKind, TrustAnchors};

/// Why evidence was refused. Each failed check has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The nonce was never issued by this verifier.
    #[error("nonce unknown to this verifier")]
    NonceUnknown,
    /// The nonce is older than its lifetime.
    #[error("stale nonce: {0}")]
    NonceExpired(FreshnessError),
    /// The nonce was already used: this evidence is a replay.
    #[error("nonce already used: evidence replayed")]
    NonceReplayed,
    /// The evidence bytes are malformed.
    #[error("malformed evidence: {0}")]
    Malformed(#[from] EvidenceError),
    /// The report version is outside the policy's range.
    #[error("report version {version} not accepted (policy allows {min}..={max})")]
    UnsupportedReportVersion {
        /// The report's version.
        version: u32,
        /// Policy minimum.
        min: u32,
        /// Policy maximum.
        max: u32,
    },
    /// Neither a VCEK nor a VLEK is in the certificate table.
    #[error("evidence carries no VCEK or VLEK certificate")]
    MissingEndorsementKey,
    /// The report names a signing key other than the certificate supplied.
    #[error("report says it was signed by {signed_by} but the evidence carries a {supplied:?}")]
    EndorsementKeyMismatch {
        /// The report's KEY_INFO.SIGNING_KEY.
        signed_by: String,
        /// The certificate present.
        supplied: CertKind,
    },
    /// A certificate does not parse.
    #[error("{kind:?} certificate does not parse: {reason}")]
    BadCertificate {
        /// Which certificate.
        kind: CertKind,
        /// The parser's message.
        reason: String,
    },
    /// The chain leads to no pinned root ("unknown signer").
    #[error("evidence signed under an unknown root")]
    UntrustedRoot,
    /// The chain claims a pinned root but a signature along it is wrong.
    #[error("certificate chain invalid: {0}")]
    ChainInvalid(String),
    /// Evidence from a simulated platform under a policy that forbids it.
    #[error("simulated evidence refused: policy does not set allow_simulated")]
    SimulatedNotAllowed,
    /// The report's signature does not verify under the endorsement key.
    #[error("report signature invalid")]
    ReportSignatureInvalid,
    /// The endorsement key's extensions are unusable.
    #[error("endorsement key certificate: {0}")]
    Endorsement(#[from] EndorsementError),
    /// REPORTED_TCB differs from the TCB the endorsement key was issued for.
    #[error("reported TCB {reported:?} differs from the endorsement key's TCB {certified:?}")]
    TcbMismatch {
        /// REPORTED_TCB from the report.
        reported: Tcb,
        /// TCB from the certificate.
        certified: Tcb,
    },
    /// The report's chip id is not the VCEK's hardware id.
    #[error("report chip id does not match the VCEK's hardware id")]
    ChipIdMismatch,
    /// Neither the root, the endorsement key nor the CPUID names a known
    /// product line.
    #[error("evidence names no known product line")]
    UnknownProductLine,
    /// Root, endorsement key and CPUID disagree on the product line.
    #[error("evidence names two product lines: {0:?} and {1:?}")]
    ProductLineMismatch(ProductLine, ProductLine),
    /// The policy sets no minimum TCB for this product line.
    #[error("policy accepts no {0:?} platform (no minimum TCB for it)")]
    ProductLineNotAllowed(ProductLine),
    /// The guest's SNP policy allows debugging.
    #[error("guest policy allows debugging")]
    DebugAllowed,
    /// The guest's SNP policy allows a migration agent.
    #[error("guest policy allows a migration agent")]
    MigrationAgentAllowed,
    /// The report comes from a VMPL the policy does not accept.
    #[error("report from VMPL {0}, not accepted by policy")]
    VmplNotAllowed(u32),
    /// A component of REPORTED_TCB is below the policy's minimum.
    #[error("reported TCB component {component} is {reported}, policy minimum is {minimum}")]
    TcbTooOld {
        /// Which component.
        component: &'static str,
        /// Its reported level.
        reported: u8,
        /// The policy's minimum.
        minimum: u8,
    },
    /// The launch measurement is not released software.
    #[error("measurement not accepted: {0}")]
    MeasurementNotAccepted(AuthorityRejection),
    /// The HOST_DATA (policies, model, settings) is not accepted.
    #[error("host data not accepted: {0}")]
    HostDataNotAccepted(AuthorityRejection),
    /// The guest policy or platform info is not the one released with this
    /// launch.
    #[error("launch settings not accepted: {0}")]
    LaunchSettingsNotAccepted(AuthorityRejection),
    /// The launch is that of a release that was revoked or is no longer
    /// (or not yet) current.
    #[error("{0}")]
    ReleaseNotCurrent(AuthorityRejection),
    /// The measurement authority could not decide.
    #[error("{0}")]
    AuthorityUnavailable(AuthorityRejection),
    /// REPORT_DATA is not bound to this TLS session and nonce.
    #[error("REPORT_DATA is not bound to this TLS session and nonce")]
    ReportDataMismatch,
}

impl From<FreshnessError> for VerifyError {
    fn from(error: FreshnessError) -> Self {
        match error {
            FreshnessError::Unknown => Self::NonceUnknown,
            FreshnessError::Replayed => Self::NonceReplayed,
            expired @ FreshnessError::Expired { .. } => Self::NonceExpired(expired),
        }
    }
}

impl From<ReportError> for VerifyError {
    fn from(error: ReportError) -> Self {
        Self::Malformed(error.into())
    }
}

impl From<ChainError> for VerifyError {
    fn from(error: ChainError) -> Self {
        match error {
            ChainError::UntrustedRoot => Self::UntrustedRoot,
            broken @ ChainError::Broken { .. } => Self::ChainInvalid(broken.to_string()),
        }
    }
}

impl From<AuthorityRejection> for VerifyError {
    fn from(rejection: AuthorityRejection) -> Self {
        match rejection {
            AuthorityRejection::Measurement(_) => Self::MeasurementNotAccepted(rejection),
            AuthorityRejection::HostData(_) => Self::HostDataNotAccepted(rejection),
            AuthorityRejection::GuestPolicy(_) | AuthorityRejection::PlatformInfo(_) => {
                Self::LaunchSettingsNotAccepted(rejection)
            }
            AuthorityRejection::Revoked { .. } | AuthorityRejection::NotCurrent { .. } => {
                Self::ReleaseNotCurrent(rejection)
            }
            AuthorityRejection::Unavailable(_) => Self::AuthorityUnavailable(rejection),
        }
    }
}

/// What a platform-verified report proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReport {
    /// The root that anchored the chain; [`RootKind::Simulated`] means no
    /// hardware guarantee at all.
    pub root: RootKind,
    /// The launch measurement.
    pub measurement: Measurement,
    /// HOST_DATA: what the host's policies, model and settings hash to.
    pub host_data: HostData,
    /// The product line of the platform that signed the report.
    pub product_line: ProductLine,
    /// REPORT_DATA.
    pub report_data: [u8; 64],
    /// The VMPL the report was requested from.
    pub vmpl: u32,
    /// REPORTED_TCB, equal to the endorsement key's TCB.
    pub reported_tcb: Tcb,
    /// The fully parsed report.
    pub report: sev::firmware::guest::AttestationReport,
}

/// Verifies evidence against pinned roots, a policy and a measurement authority.
#[derive(Debug, Clone)]
pub struct Verifier<A> {
    anchors: TrustAnchors,
    policy: Policy,
    authority: A,
}

impl<A: MeasurementAuthority> Verifier<A> {
    /// A verifier trusting `anchors`, enforcing `policy`, and asking
    /// `authority` about measurements and HOST_DATA.
    pub fn new(anchors: TrustAnchors, policy: Policy, authority: A) -> Self {
        Self {
            anchors,
            policy,
            authority,
        }
    }

    /// The policy enforced.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The authority asked about launches (to name the release a verified
    /// launch belongs to).
    pub fn authority(&self) -> &A {
        &self.authority
    }

    /// Full verification of a host's evidence received in a TLS session:
    /// [`Verifier::verify_as`] the [`Role::Host`].
    pub fn verify(
        &self,
        evidence: &[u8],
        exporter: &TlsExporter,
        nonce: &Nonce,
        tracker: &mut NonceTracker,
        now: Instant,
    ) -> Result<VerifiedReport, VerifyError> {
        self.verify_as(Role::Host, evidence, exporter, nonce, tracker, now)
    }

    /// Full verification of evidence that the `role` side of a TLS session
    /// sent: redeems `nonce` in `tracker` at `now`, then runs every check,
    /// ending with the REPORT_DATA binding to `role`, `exporter` and `nonce`.
    /// Evidence made for the other role fails that last check.
    pub fn verify_as(
        &self,
        role: Role,
        evidence: &[u8],
        exporter: &TlsExporter,
        nonce: &Nonce,
        tracker: &mut NonceTracker,
        now: Instant,
    ) -> Result<VerifiedReport, VerifyError> {
        tracker.redeem(nonce, now)?;
        let evidence = Evidence::decode(evidence)?;
        self.verify_bound(&evidence, &report_data_for(role, exporter, nonce))
    }

    /// Every check except nonce freshness: the caller supplies the expected
    /// REPORT_DATA (for example a host checking its own report at start-up).
    pub fn verify_bound(
        &self,
        evidence: &Evidence,
        expected: &[u8; 64],
    ) -> Result<VerifiedReport, VerifyError> {
        let verified = self.verify_platform(evidence)?;
        self.check_policy(&verified)?;
        if verified.report_data != *expected {
            return Err(VerifyError::ReportDataMismatch);
        }
        Ok(verified)
    }

    /// Checks that the report is genuine: structure, chain, signature and
    /// TCB/chip consistency. Says nothing about whether it is acceptable.
    pub fn verify_platform(&self, evidence: &Evidence) -> Result<VerifiedReport, VerifyError> {
        let version = evidence.report.version();
        let versions = &self.policy.report_versions;
        if !versions.contains(&version) {
            return Err(VerifyError::UnsupportedReportVersion {
                version,
                min: *versions.start(),
                max: *versions.end(),
            });
        }
        let report = evidence.report.parse()?;
        let (kind, vek_der) = evidence
            .endorsement_key()
            .ok_or(VerifyError::MissingEndorsementKey)?;
        let signed_by = report.key_info.signing_key();
        let expected_kind = match signed_by {
            0 => CertKind::Vcek,
            1 => CertKind::Vlek,
            _ => CertKind::Other([0; 16]),
        };
        if kind != expected_kind {
            let signed_by = format!("signing key {signed_by}");
            return Err(VerifyError::EndorsementKeyMismatch {
                signed_by,
                supplied: kind,
            });
        }
        let vek_x509 =
            x509_cert::Certificate::from_der(vek_der).map_err(|e| VerifyError::BadCertificate {
                kind,
                reason: e.to_string(),
            })?;
        let facts = EndorsementFacts::from_certificate(&vek_x509)?;
        let vek = Certificate::from(vek_x509);
        let ark = optional_certificate(evidence, CertKind::Ark)?;
        let ask = optional_certificate(evidence, CertKind::Ask)?;
        let root = self.anchors.anchor(ark.as_ref(), ask.as_ref(), &vek)?;
        if root == RootKind::Simulated && !self.policy.allow_simulated {
            return Err(VerifyError::SimulatedNotAllowed);
        }
        let key =
            p384::ecdsa::VerifyingKey::from_sec1_bytes(vek.public_key_sec1()).map_err(|e| {
                VerifyError::BadCertificate {
                    kind,
                    reason: format!("not a P-384 key: {e}"),
                }
            })?;
        let signature = evidence
            .report
            .signature()
            .ok_or(VerifyError::ReportSignatureInvalid)?;
        key.verify(evidence.report.signed_bytes(), &signature)
            .map_err(|_| VerifyError::ReportSignatureInvalid)?;
        let reported_tcb = Tcb::from(report.reported_tcb);
        if reported_tcb != facts.tcb {
            return Err(VerifyError::TcbMismatch {
                reported: reported_tcb,
                certified: facts.tcb,
            });
        }
        if kind == CertKind::Vcek && !facts.matches_chip(&report.chip_id) {
            return Err(VerifyError::ChipIdMismatch);
        }
        let product_line = product_line(root, &facts, &report)?;
        Ok(VerifiedReport {
            root,
            measurement: Measurement(report.measurement),
            host_data: HostData(report.host_data),
            product_line,
            report_data: report.report_data,
            vmpl: report.vmpl,
            reported_tcb,
            report,
        })
    }

    /// Applies the policy and the measurement authority to a genuine report.
    pub fn check_policy(&self, verified: &VerifiedReport) -> Result<(), VerifyError> {
        let guest_policy = verified.report.policy;
        if guest_policy.debug_allowed() {
            return Err(VerifyError::DebugAllowed);
        }
        if guest_policy.migrate_ma_allowed() {
            return Err(VerifyError::MigrationAgentAllowed);
        }
        if !self.policy.allowed_vmpls.contains(&verified.vmpl) {
            return Err(VerifyError::VmplNotAllowed(verified.vmpl));
        }
        let minimum = self
            .policy
            .minimum_tcb
            .get(&verified.product_line)
            .ok_or(VerifyError::ProductLineNotAllowed(verified.product_line))?;
        check_minimum_tcb(&verified.reported_tcb, minimum)?;
        self.authority.check(&verified.launch())?;
        Ok(())
    }
}

impl VerifiedReport {
    /// The launch this report names, as releases name launches.
    pub fn launch(&self) -> LaunchFacts {
        LaunchFacts {
            measurement: self.measurement,
            host_data: self.host_data,
            guest_policy: self.report.policy.into(),
            platform_info: self.report.plat_info.into(),
        }
    }
}

/// The one product line that the root (for AMD roots), the endorsement key's
/// product name and the report's CPUID (version 3 and later) all name; a
/// simulated root names none, so its endorsement key must.
fn product_line(
    root: RootKind,
    facts: &EndorsementFacts,
    report: &sev::firmware::guest::AttestationReport,
) -> Result<ProductLine, VerifyError> {
    let from_root = match root {
        RootKind::Amd(line) => Some(line),
        RootKind::Simulated => None,
    };
    let from_key = facts
        .product_name
        .as_deref()
        .map(|name| ProductLine::from_product_name(name).ok_or(VerifyError::UnknownProductLine))
        .transpose()?;
    let from_cpuid = match (report.cpuid_fam_id, report.cpuid_mod_id) {
        (Some(family), Some(model)) => {
            Some(ProductLine::from_cpuid(family, model).ok_or(VerifyError::UnknownProductLine)?)
        }
        _ => None,
    };
    let mut named = [from_root, from_key, from_cpuid].into_iter().flatten();
    let line = named.next().ok_or(VerifyError::UnknownProductLine)?;
    match named.find(|other| *other != line) {
        Some(other) => Err(VerifyError::ProductLineMismatch(line, other)),
        None => Ok(line),
    }
}

fn check_minimum_tcb(reported: &Tcb, minimum: &Tcb) -> Result<(), VerifyError> {
    let components = [
        ("fmc", reported.fmc.unwrap_or(0), minimum.fmc.unwrap_or(0)),
        ("bootloader", reported.bootloader, minimum.bootloader),
        ("tee", reported.tee, minimum.tee),
        ("snp", reported.snp, minimum.snp),
        ("microcode", reported.microcode, minimum.microcode),
    ];
    match components
        .into_iter()
        .find(|(_, reported, minimum)| reported < minimum)
    {
        Some((component, reported, minimum)) => Err(VerifyError::TcbTooOld {
            component,
            reported,
            minimum,
        }),
        None => Ok(()),
    }
}

fn optional_certificate(
    evidence: &Evidence,
    kind: CertKind,
) -> Result<Option<Certificate>, VerifyError> {
    evidence
        .certificates
        .get(kind)
        .map(|der| {
            Certificate::from_der(der).map_err(|e| VerifyError::BadCertificate {
                kind,
                reason: e.to_string(),
            })
        })
        .transpose()
}
