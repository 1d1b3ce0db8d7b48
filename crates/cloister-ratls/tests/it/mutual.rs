//! Mutual RA-TLS for CVM-to-CVM calls: the host attests to the caller as
//! before, then challenges the caller, and serves nothing until the
//! caller's evidence verified for this session, the host's nonce and the
//! caller role. Every way a caller can fail is shown to be refused.
//!
//! All evidence here comes from a SIMULATED platform; the verifiers accept
//! it only because their policy sets `allow_simulated` (except where a test
//! shows that a production policy refuses it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cloister_attestation::{
    AuthorityRejection, Evidence, LaunchFacts, MeasurementAuthority, Nonce, ProviderError,
    SimulatedProvider, TlsExporter, VerifyError,
};
use cloister_ratls::{
    CallerAttester, CallerVerifier, ClientError, ClientSession, InMemoryTransport, SessionAttester,
    TransportError,
};
use cloister_wire::Measurement;
use common::{
    Host, IDLE, ManualClock, RELEASED, provider, summarise, verifier, verifier_accepting,
    verifier_with,
};

use crate::common;

/// The calling CVM's released measurement.
const CALLER: [u8; 48] = [0x43; 48];

/// What a host requires of its callers: simulated evidence of [`CALLER`].
fn callers() -> Arc<dyn CallerVerifier> {
    Arc::new(verifier_accepting(true, CALLER))
}

/// Counts how often the caller was asked for evidence.
struct Counting {
    inner: Arc<dyn CallerAttester>,
    calls: AtomicUsize,
}

impl Counting {
    fn new(inner: Arc<dyn CallerAttester>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl CallerAttester for Counting {
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.attest_caller(exporter, nonce)
    }
}

async fn mutual(
    host: &Host,
    caller: &dyn CallerAttester,
) -> Result<ClientSession<InMemoryTransport>, ClientError> {
    ClientSession::establish_mutual(host.transport(), &verifier(true), caller).await
}

#[tokio::test]
async fn mutual_session_attests_both_sides_then_serves() {
    let host = Host::mutual(callers());
    let caller = Counting::new(provider(CALLER));
    let mut session = mutual(&host, &caller)
        .await
        .unwrap_or_else(|e| panic!("establish_mutual: {e}"));
    assert_eq!(session.attestation().measurement, RELEASED);
    assert_eq!(caller.calls(), 1);
    assert_eq!(host.calls(), 0, "nothing is served during attestation");

    session
        .request(&summarise("from another CVM"))
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    session
        .request(&summarise("and again"))
        .await
        .unwrap_or_else(|e| panic!("second request: {e}"));
    assert_eq!(host.calls(), 2);
    let stats = host.table.stats();
    assert_eq!(
        (
            stats.open,
            stats.attested,
            stats.callers_attested,
            stats.callers_refused,
            stats.requests
        ),
        (1, 1, 1, 0, 2)
    );
}

/// Genuine caller evidence made for another TLS session (a relay between
/// the real caller and this host): same nonce, other exporter.
struct RelayedEvidence(Arc<SimulatedProvider>);

impl CallerAttester for RelayedEvidence {
    fn attest_caller(
        &self,
        _this_session: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        self.0.attest_caller(&TlsExporter([0xee; 32]), nonce)
    }
}

/// Replays the evidence it produced for its first session in every later
/// one (whose exporter and challenge differ).
struct Replaying {
    genuine: Arc<SimulatedProvider>,
    recorded: Mutex<Option<Evidence>>,
}

impl CallerAttester for Replaying {
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = recorded.as_ref() {
            return Ok(old.clone());
        }
        let evidence = self.genuine.attest_caller(exporter, nonce)?;
        *recorded = Some(evidence.clone());
        Ok(evidence)
    }
}

/// Answers the host's challenge with host-role evidence: the right
/// session and nonce, the wrong domain.
struct HostRoleEvidence(Arc<SimulatedProvider>);

impl CallerAttester for HostRoleEvidence {
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        self.0.attest(exporter, nonce)
    }
}

/// A ledger-backed authority that cannot reach its ledger: fails closed.
struct LedgerUnreachable;

impl MeasurementAuthority for LedgerUnreachable {
    fn check(&self, _: &LaunchFacts) -> Result<(), AuthorityRejection> {
        Err(AuthorityRejection::Unavailable("ledger unreachable".into()))
    }
}

/// The host's refusal as the caller sees it; also checks that the host
/// served nothing and closed the session.
async fn caller_refused(host: &Host, caller: &dyn CallerAttester) -> String {
    let outcome = mutual(host, caller).await;
    let Err(ClientError::CallerRefused(reason)) = outcome else {
        panic!("expected the host to refuse the caller, got {outcome:?}");
    };
    let stats = host.table.stats();
    assert_eq!(host.calls(), 0, "the feature must never run");
    assert_eq!(stats.open, 0, "a refused caller's session is closed");
    reason
}

/// What is wrong, the host's verifier, the caller's attester, the error.
type RefusalCase = (
    &'static str,
    Arc<dyn CallerVerifier>,
    Arc<dyn CallerAttester>,
    VerifyError,
);

#[tokio::test]
async fn the_host_refuses_callers_whose_evidence_fails() {
    let genuine = provider(CALLER);
    let cases: [RefusalCase; 5] = [
        (
            "measurement not accepted",
            callers(),
            provider([0x66; 48]),
            VerifyError::MeasurementNotAccepted(AuthorityRejection::Measurement(Measurement(
                [0x66; 48],
            ))),
        ),
        (
            "evidence relayed from another session",
            callers(),
            Arc::new(RelayedEvidence(genuine.clone())),
            VerifyError::ReportDataMismatch,
        ),
        (
            "host-role evidence offered as the caller's",
            callers(),
            Arc::new(HostRoleEvidence(genuine.clone())),
            VerifyError::ReportDataMismatch,
        ),
        (
            "simulated caller under a production caller policy",
            Arc::new(verifier_accepting(false, CALLER)),
            genuine.clone(),
            VerifyError::SimulatedNotAllowed,
        ),
        (
            "ledger-backed authority unavailable",
            Arc::new(verifier_with(true, LedgerUnreachable)),
            genuine,
            VerifyError::AuthorityUnavailable(AuthorityRejection::Unavailable(
                "ledger unreachable".into(),
            )),
        ),
    ];
    for (name, policy, caller, expected) in cases {
        let host = Host::mutual(policy);
        assert_eq!(
            caller_refused(&host, &*caller).await,
            expected.to_string(),
            "{name}"
        );
        let stats = host.table.stats();
        assert_eq!(
            (stats.callers_refused, stats.callers_attested),
            (1, 0),
            "{name}"
        );
    }
}

#[tokio::test]
async fn evidence_replayed_from_an_earlier_session_is_refused() {
    let host = Host::mutual(callers());
    let replaying = Replaying {
        genuine: provider(CALLER),
        recorded: Mutex::new(None),
    };
    mutual(&host, &replaying)
        .await
        .unwrap_or_else(|e| panic!("first session: {e}"));
    let outcome = mutual(&host, &replaying).await;
    assert!(
        matches!(&outcome, Err(ClientError::CallerRefused(reason))
            if *reason == VerifyError::ReportDataMismatch.to_string()),
        "{outcome:?}"
    );
    let stats = host.table.stats();
    assert_eq!(
        (stats.callers_attested, stats.callers_refused, stats.open),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_caller_without_evidence_is_not_served() {
    let host = Host::mutual(callers());
    let outcome = ClientSession::establish(host.transport(), &verifier(true)).await;
    assert!(
        matches!(outcome, Err(ClientError::CallerAttestationRequired)),
        "{outcome:?}"
    );

    /// A caller that cannot produce evidence at all.
    struct NoEvidence;
    impl CallerAttester for NoEvidence {
        fn attest_caller(&self, _: &TlsExporter, _: &Nonce) -> Result<Evidence, ProviderError> {
            Err(ProviderError::NoEndorsementKey)
        }
    }
    let outcome = mutual(&host, &NoEvidence).await;
    assert!(
        matches!(outcome, Err(ClientError::OwnEvidence(_))),
        "{outcome:?}"
    );
    assert_eq!(host.calls(), 0);
    let stats = host.table.stats();
    assert_eq!((stats.requests, stats.callers_attested), (0, 0));
}

#[tokio::test]
async fn a_caller_gives_no_evidence_to_a_host_it_refuses() {
    let host = Host::mutual(callers());
    let caller = Counting::new(provider(CALLER));
    let distrusting = verifier_accepting(true, [0x77; 48]);
    let outcome = ClientSession::establish_mutual(host.transport(), &distrusting, &caller).await;
    assert!(
        matches!(
            &outcome,
            Err(ClientError::Attestation(
                VerifyError::MeasurementNotAccepted(_)
            ))
        ),
        "{outcome:?}"
    );
    assert_eq!(caller.calls(), 0, "no evidence for an unverified host");
    assert_eq!(host.table.stats().callers_refused, 0);
}

/// A host that passes caller-role evidence off as its own.
struct CallerRoleHost(Arc<SimulatedProvider>);

impl SessionAttester for CallerRoleHost {
    fn attest(&self, exporter: &TlsExporter, nonce: &Nonce) -> Result<Evidence, ProviderError> {
        self.0.attest_caller(exporter, nonce)
    }
}

#[tokio::test]
async fn caller_role_evidence_never_passes_as_the_hosts() {
    let host = Host::with(Arc::new(CallerRoleHost(provider(RELEASED))), 4);
    let outcome = ClientSession::establish(host.transport(), &verifier(true)).await;
    assert!(
        matches!(
            &outcome,
            Err(ClientError::Attestation(VerifyError::ReportDataMismatch))
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_host_that_does_not_ask_gets_no_caller_evidence() {
    let host = Host::honest();
    let caller = Counting::new(provider(CALLER));
    let mut session = mutual(&host, &caller)
        .await
        .unwrap_or_else(|e| panic!("establish_mutual: {e}"));
    session
        .request(&summarise("plain host"))
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    assert_eq!(caller.calls(), 0);
    assert_eq!(host.table.stats().callers_attested, 0);
}

/// Takes longer than the host's idle timeout to produce its evidence.
struct SlowCaller {
    genuine: Arc<SimulatedProvider>,
    host_clock: Arc<ManualClock>,
}

impl CallerAttester for SlowCaller {
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        self.host_clock.advance(IDLE + Duration::from_secs(1));
        self.genuine.attest_caller(exporter, nonce)
    }
}

#[tokio::test]
async fn idle_expiry_applies_to_mutual_sessions() {
    let host = Host::mutual(callers());
    let mut session = mutual(&host, &*provider(CALLER))
        .await
        .unwrap_or_else(|e| panic!("establish_mutual: {e}"));
    host.clock.advance(IDLE - Duration::from_secs(1));
    session
        .request(&summarise("still here"))
        .await
        .unwrap_or_else(|e| panic!("live session refused: {e}"));
    host.clock.advance(IDLE + Duration::from_secs(1));
    let outcome = session.request(&summarise("too late")).await;
    assert!(
        matches!(
            &outcome,
            Err(ClientError::Transport(TransportError::Status {
                status: 404,
                ..
            }))
        ),
        "{outcome:?}"
    );

    // A challenge left unanswered past the idle timeout dies with its session.
    let slow = SlowCaller {
        genuine: provider(CALLER),
        host_clock: host.clock.clone(),
    };
    let outcome = mutual(&host, &slow).await;
    assert!(
        matches!(
            &outcome,
            Err(ClientError::Transport(TransportError::Status {
                status: 404,
                ..
            }))
        ),
        "{outcome:?}"
    );
    let stats = host.table.stats();
    assert_eq!(
        (stats.open, stats.expired, stats.callers_attested),
        (0, 2, 1)
    );
    assert_eq!(host.calls(), 1);
}

#[tokio::test]
async fn allow_lists_are_separate_per_direction() {
    // The caller runs the host's released measurement, but the host accepts
    // only CALLER from its callers: the two policies are independent.
    let host = Host::mutual(callers());
    let reason = caller_refused(&host, &*provider(RELEASED)).await;
    assert_eq!(
        reason,
        VerifyError::MeasurementNotAccepted(AuthorityRejection::Measurement(Measurement(RELEASED)))
            .to_string()
    );
}
