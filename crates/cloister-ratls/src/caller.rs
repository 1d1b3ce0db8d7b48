//! The second direction of a mutual session: a CVM that calls another CVM
//! proves what it runs too.
//!
//! The host challenges the caller with its own nonce, right behind its own
//! evidence; the caller verifies the host first and only then answers with
//! evidence whose REPORT_DATA is
//! `SHA-512("cloister-attest-caller-v1" || exporter || host_nonce)`
//! ([`Role::Caller`]), over the same TLS exporter as the host's evidence.
//! The distinct domain keeps a caller's evidence from passing as a host's
//! and a host's as a caller's.

use std::time::{Duration, Instant};

use cloister_attestation::{
    Evidence, EvidenceProvider, MeasurementAuthority, Nonce, NonceTracker, ProviderError, Role,
    TlsExporter, VerifiedReport, Verifier, VerifyError, report_data_for,
};

/// How long a nonce stays answerable: the client's for the host's
/// evidence, the host's for the caller's.
pub(crate) const NONCE_LIFETIME: Duration = Duration::from_secs(60);

/// Produces a caller's evidence for one TLS session and host nonce.
///
/// Every [`EvidenceProvider`] is one: it signs REPORT_DATA =
/// [`report_data_for`]`(Role::Caller, exporter, nonce)`. The trait exists
/// so that tests can play callers that cheat.
pub trait CallerAttester: Send + Sync {
    /// Evidence of the caller bound to `exporter` and the host's `nonce`.
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError>;
}

impl<P: EvidenceProvider + ?Sized> CallerAttester for P {
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        self.evidence(&report_data_for(Role::Caller, exporter, nonce))
    }
}

/// Decides whether a caller's evidence is good enough for this host to
/// serve it: platform, policy, measurement authority and the binding to
/// this session, the host's nonce and the caller role.
///
/// Implemented by every [`Verifier`] whatever its [`MeasurementAuthority`]
/// (an allow-list from a policy file, or a ledger client), so the host can
/// hold one behind `Arc<dyn CallerVerifier>` with its own policy, separate
/// from what clients use to verify hosts.
pub trait CallerVerifier: Send + Sync {
    /// Redeems `nonce` in `nonces` at `now` and verifies `evidence` as the
    /// caller's, bound to `exporter` and `nonce`.
    ///
    /// # Errors
    /// The [`VerifyError`] of the first check that failed.
    fn verify_caller(
        &self,
        evidence: &[u8],
        exporter: &TlsExporter,
        nonce: &Nonce,
        nonces: &mut NonceTracker,
        now: Instant,
    ) -> Result<VerifiedReport, VerifyError>;
}

impl<A: MeasurementAuthority + Send + Sync> CallerVerifier for Verifier<A> {
    fn verify_caller(
        &self,
        evidence: &[u8],
        exporter: &TlsExporter,
        nonce: &Nonce,
        nonces: &mut NonceTracker,
        now: Instant,
    ) -> Result<VerifiedReport, VerifyError> {
        self.verify_as(Role::Caller, evidence, exporter, nonce, nonces, now)
    }
}
