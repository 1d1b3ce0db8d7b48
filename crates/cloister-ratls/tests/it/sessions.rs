//! RA-TLS sessions end to end over the in-memory transport and over the
//! host's HTTP route: handshake, attestation, request; and every way the
//! client must refuse to send its payload.
//!
//! All evidence here comes from a SIMULATED platform; the verifiers accept
//! it only because their policy sets `allow_simulated`.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak, mpsc};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cloister_api::{
    BudgetKind, FeatureError, FeatureRequest, FeatureResponse, RequestError, Summary,
};
use cloister_attestation::{
    Evidence, Nonce, ProviderError, SimulatedProvider, TlsExporter, VerifyError, report_data,
};
use cloister_ratls::{
    Cancellation, ClientError, ClientSession, FeatureService, InMemoryTransport, SESSION_PATH,
    SessionAttester, SessionConfig, SessionError, SessionTable, Transport, TransportError, routes,
};
use common::{HOST_DATA, Host, IDLE, ManualClock, RELEASED, provider, summarise, verifier};
use tower::ServiceExt;

use crate::common;

const MEASUREMENT: [u8; 48] = RELEASED;

async fn attested(host: &Host) -> ClientSession<InMemoryTransport> {
    ClientSession::establish(host.transport(), &verifier(true))
        .await
        .unwrap_or_else(|e| panic!("establish: {e}"))
}

#[tokio::test]
async fn handshake_attestation_and_request_round_trip() {
    let host = Host::honest();
    let mut session = attested(&host).await;
    assert_eq!(session.attestation().measurement, MEASUREMENT);
    assert_eq!(session.attestation().host_data, HOST_DATA);
    assert_eq!(host.calls(), 0, "nothing is served during attestation");

    let response = session
        .request(&summarise("hello"))
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    assert_eq!(
        response,
        FeatureResponse::of(&Summary {
            text: "1 messages, first: hello".into(),
            messages_covered: 1
        })
    );
    // A second request on the same session, and a feature error travels back.
    let suggest = FeatureRequest::of(&cloister_api::SuggestRequest {
        draft: "hi".into(),
        context: vec![],
        tone: cloister_api::Tone::Neutral,
        count: 1,
    });
    // It arrives typed, with the fields the host sent.
    match session.request(&suggest).await {
        Err(ClientError::Feature(RequestError::Feature(FeatureError::BudgetExceeded {
            budget: BudgetKind::TokensPerCall,
            limit: 16,
            used: 64,
        }))) => {}
        other => panic!("expected the typed budget error, got {other:?}"),
    }
    assert_eq!(host.calls(), 2);
    let stats = host.table.stats();
    assert_eq!(
        (stats.open, stats.opened, stats.attested, stats.requests),
        (1, 1, 1, 2)
    );
}

/// A host that is not the attested CVM, relaying evidence the genuine
/// platform produced for another TLS session (same nonce, other exporter):
/// the diversion attack on attested TLS.
struct RelayedEvidence {
    genuine: Arc<SimulatedProvider>,
}

impl SessionAttester for RelayedEvidence {
    fn attest(
        &self,
        _this_session: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        let other_session = TlsExporter([0xee; 32]);
        self.genuine.attest(&other_session, nonce)
    }
}

/// Replies with genuine evidence for the right session but an old nonce.
struct StaleNonce {
    genuine: Arc<SimulatedProvider>,
}

impl SessionAttester for StaleNonce {
    fn attest(
        &self,
        this_session: &TlsExporter,
        _nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        use cloister_attestation::EvidenceProvider;
        self.genuine
            .evidence(&report_data(this_session, &Nonce::from_bytes([1; 32])))
    }
}

async fn refused(host: &Host, allow_simulated: bool) -> VerifyError {
    match ClientSession::establish(host.transport(), &verifier(allow_simulated)).await {
        Err(ClientError::Attestation(error)) => error,
        other => panic!("expected an attestation refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_client_refuses_hosts_whose_evidence_fails() {
    let genuine = provider(MEASUREMENT);
    let cases: [(&str, Host, bool, VerifyError); 4] = [
        (
            "evidence relayed from another session",
            Host::with(
                Arc::new(RelayedEvidence {
                    genuine: genuine.clone(),
                }),
                4,
            ),
            true,
            VerifyError::ReportDataMismatch,
        ),
        (
            "evidence for another nonce",
            Host::with(Arc::new(StaleNonce { genuine }), 4),
            true,
            VerifyError::ReportDataMismatch,
        ),
        (
            "simulated evidence under a production policy",
            Host::honest(),
            false,
            VerifyError::SimulatedNotAllowed,
        ),
        (
            "measurement not released",
            Host::with(provider([0x66; 48]), 4),
            true,
            VerifyError::MeasurementNotAccepted(
                cloister_attestation::AuthorityRejection::Measurement(cloister_wire::Measurement(
                    [0x66; 48],
                )),
            ),
        ),
    ];
    for (name, host, allow_simulated, expected) in cases {
        assert_eq!(refused(&host, allow_simulated).await, expected, "{name}");
        assert_eq!(host.calls(), 0, "{name}: the feature must never run");
        assert_eq!(
            host.table.stats().requests,
            0,
            "{name}: no request reached the host"
        );
    }
}

/// Refuses to attest at all.
struct NoEvidence;

impl SessionAttester for NoEvidence {
    fn attest(&self, _: &TlsExporter, _: &Nonce) -> Result<Evidence, ProviderError> {
        Err(ProviderError::NoEndorsementKey)
    }
}

#[tokio::test]
async fn a_host_without_evidence_gets_no_payload() {
    let host = Host::with(Arc::new(NoEvidence), 4);
    let outcome = ClientSession::establish(host.transport(), &verifier(true)).await;
    assert!(
        matches!(&outcome, Err(ClientError::Refused(reason)) if reason.contains("no evidence")),
        "{outcome:?}"
    );
    assert_eq!(host.calls(), 0);
}

#[tokio::test]
async fn idle_sessions_expire_and_active_ones_do_not() {
    let host = Host::honest();
    let mut session = attested(&host).await;
    // Just inside the timeout, repeatedly: use keeps the session alive.
    for _ in 0..3 {
        host.clock.advance(IDLE - Duration::from_secs(1));
        session
            .request(&summarise("still here"))
            .await
            .unwrap_or_else(|e| panic!("live session refused: {e}"));
    }
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
    let stats = host.table.stats();
    assert_eq!((stats.open, stats.expired), (0, 1));
    assert_eq!(host.calls(), 3, "the expired request never ran");
}

/// A feature whose request outlasts the idle timeout while an expiry sweep
/// runs: what a real model on a loaded CPU may do.
struct OutlastingFeature {
    table: OnceLock<Weak<SessionTable>>,
    clock: Arc<ManualClock>,
}

impl FeatureService for OutlastingFeature {
    fn handle(&self, _: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        self.clock.advance(IDLE * 2);
        let table = self
            .table
            .get()
            .and_then(Weak::upgrade)
            .ok_or(RequestError::AtCapacity)?;
        table.expire_idle();
        Ok(FeatureResponse::of(&Summary {
            text: "done".into(),
            messages_covered: 1,
        }))
    }
}

#[tokio::test]
async fn a_session_serving_a_request_longer_than_the_timeout_is_not_expired() {
    let clock = Arc::new(ManualClock::new());
    let feature = Arc::new(OutlastingFeature {
        table: OnceLock::new(),
        clock: Arc::clone(&clock),
    });
    let config = SessionConfig {
        idle_timeout_secs: IDLE.as_secs(),
        max_sessions: 4,
    };
    let table =
        SessionTable::with_clock(&config, provider(RELEASED), feature.clone(), clock.clone())
            .map(Arc::new)
            .unwrap_or_else(|e| panic!("table: {e}"));
    feature
        .table
        .set(Arc::downgrade(&table))
        .unwrap_or_else(|_| unreachable!());
    let mut session =
        ClientSession::establish(InMemoryTransport::new(Arc::clone(&table)), &verifier(true))
            .await
            .unwrap_or_else(|e| panic!("establish: {e}"));
    for round in 0..2 {
        let outcome = session.request(&summarise("a long one")).await;
        assert!(outcome.is_ok(), "round {round}: {outcome:?}");
    }
    let stats = table.stats();
    assert_eq!((stats.open, stats.expired), (1, 0), "{stats:?}");
    // Once the request is over, the idle clock runs from its end.
    clock.advance(IDLE + Duration::from_secs(1));
    table.expire_idle();
    assert_eq!(table.stats().open, 0);
}

#[tokio::test]
async fn expiry_sweeps_sessions_nobody_returns_to() {
    let host = Host::honest();
    let _first = attested(&host).await;
    let _second = attested(&host).await;
    assert_eq!(host.table.stats().open, 2);
    host.clock.advance(IDLE + Duration::from_secs(1));
    host.table.expire_idle();
    let stats = host.table.stats();
    assert_eq!((stats.open, stats.expired), (0, 2));
}

#[tokio::test]
async fn unknown_ids_and_garbage_get_clear_errors_and_the_table_keeps_serving() {
    let host = Host::honest();
    let mut bystander = attested(&host).await;
    let table = &host.table;

    let application_data = [23, 3, 3, 0, 5, 1, 2, 3, 4, 5];
    assert!(matches!(
        table.exchange("never-opened", &application_data),
        Err(SessionError::UnknownSession)
    ));
    assert!(matches!(
        table.exchange("has space", &application_data),
        Err(SessionError::InvalidSessionId)
    ));
    assert!(matches!(
        table.exchange("", &[]),
        Err(SessionError::InvalidSessionId)
    ));
    // Looks like a ClientHello, is not one.
    let fake_hello = [22, 3, 1, 0, 4, 1, 0, 0, 0];
    assert!(matches!(
        table.exchange("fake-hello", &fake_hello),
        Err(SessionError::Tls(_))
    ));
    // Garbage injected into a live session kills that session only.
    let victim = attested(&host).await;
    let garbage = [
        23, 3, 3, 0, 20, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert!(matches!(
        table.exchange(victim.session_id(), &garbage),
        Err(SessionError::Tls(_))
    ));
    assert!(matches!(
        table.exchange(victim.session_id(), &garbage),
        Err(SessionError::UnknownSession)
    ));

    let stats = table.stats();
    assert_eq!((stats.open, stats.failed), (1, 2));
    bystander
        .request(&summarise("unaffected"))
        .await
        .unwrap_or_else(|e| panic!("bystander: {e}"));
    attested(&host).await;
    assert_eq!(host.calls(), 1);
}

#[tokio::test]
async fn the_table_refuses_sessions_beyond_its_bound() {
    let host = Host::with(provider(MEASUREMENT), 1);
    let _only = attested(&host).await;
    let outcome = ClientSession::establish(host.transport(), &verifier(true)).await;
    assert!(
        matches!(
            &outcome,
            Err(ClientError::Transport(TransportError::Status {
                status: 503,
                ..
            }))
        ),
        "{outcome:?}"
    );
}

/// Records through the host's axum routes, as the gateway forwards them.
struct RouteTransport(axum::Router);

impl Transport for RouteTransport {
    async fn exchange(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let request = Request::post(SESSION_PATH)
            .header(cloister_wire::header::SESSION, session_id)
            .body(Body::from(records))
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        let response = self
            .0
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        if status != StatusCode::OK {
            return Err(TransportError::Status {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(body.to_vec())
    }
}

#[tokio::test]
async fn the_http_route_carries_a_whole_session_and_reports_errors() {
    let host = Host::honest();
    let router = routes(host.table.clone());
    let mut session = ClientSession::establish(RouteTransport(router.clone()), &verifier(true))
        .await
        .unwrap_or_else(|e| panic!("establish over HTTP: {e}"));
    session
        .request(&summarise("over http"))
        .await
        .unwrap_or_else(|e| panic!("request over HTTP: {e}"));
    assert_eq!(host.calls(), 1);

    let transport = RouteTransport(router.clone());
    let unknown = transport.exchange("nobody", vec![23, 3, 3, 0, 1, 0]).await;
    assert!(
        matches!(&unknown, Err(TransportError::Status { status: 404, message }) if message.contains("unknown")),
        "{unknown:?}"
    );
    let headerless = Request::post(SESSION_PATH)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let response = router
        .oneshot(headerless)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// A feature that holds its request until the test lets it go.
struct HeldFeature {
    entered: mpsc::SyncSender<()>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl FeatureService for HeldFeature {
    fn handle(&self, _: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        let _ = self.entered.send(());
        let release = self.release.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = release.recv_timeout(Duration::from_secs(10));
        Ok(FeatureResponse::of(&Summary {
            text: "held".into(),
            messages_covered: 1,
        }))
    }
}

#[tokio::test]
async fn a_second_exchange_while_one_runs_is_refused_at_once() {
    let (entered, running) = mpsc::sync_channel(1);
    let (release, held) = mpsc::channel();
    let feature = HeldFeature {
        entered,
        release: Mutex::new(held),
    };
    let table = SessionTable::new(
        &SessionConfig::default(),
        provider(RELEASED),
        Arc::new(feature),
    )
    .map(Arc::new)
    .unwrap_or_else(|e| panic!("table: {e}"));
    let mut session =
        ClientSession::establish(InMemoryTransport::new(Arc::clone(&table)), &verifier(true))
            .await
            .unwrap_or_else(|e| panic!("establish: {e}"));
    let session_id = session.session_id().to_owned();
    let first = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(session.request(&summarise("first")))
    });
    running
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the first request never ran: {e}"));

    let asked = Instant::now();
    let second = table.exchange(&session_id, &[23, 3, 3, 0, 1, 0]);
    assert!(matches!(second, Err(SessionError::Busy)), "{second:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "refused at once, not queued: {:?}",
        asked.elapsed()
    );

    release.send(()).unwrap_or_else(|e| panic!("{e}"));
    let answer = first.join().unwrap_or_else(|_| panic!("first request"));
    assert!(
        answer.is_ok(),
        "the session outlives the refusal: {answer:?}"
    );
}

/// A feature that runs until its caller gives up (ten seconds at most) and
/// reports whether it was told to stop.
struct UntilCancelled {
    stopped: mpsc::SyncSender<bool>,
}

impl FeatureService for UntilCancelled {
    /// Never called: the table always asks for a cancellable request.
    fn handle(&self, _: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        Err(RequestError::AtCapacity)
    }

    fn handle_cancellable(
        &self,
        _: FeatureRequest,
        cancel: &Cancellation,
    ) -> Result<FeatureResponse, RequestError> {
        let started = Instant::now();
        while !cancel.is_cancelled() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.stopped.send(cancel.is_cancelled());
        Err(RequestError::AtCapacity)
    }
}

/// The HTTP route, given up on after `patience`, as a gateway gives up on
/// a host that is too slow.
struct ImpatientTransport {
    route: RouteTransport,
    patience: Duration,
}

impl Transport for ImpatientTransport {
    async fn exchange(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        tokio::time::timeout(self.patience, self.route.exchange(session_id, records))
            .await
            .map_err(|_| TransportError::Failed("gave up".into()))?
    }
}

#[tokio::test]
async fn work_whose_caller_gave_up_is_cancelled() {
    let (stopped, outcome) = mpsc::sync_channel(1);
    let table = SessionTable::new(
        &SessionConfig::default(),
        provider(RELEASED),
        Arc::new(UntilCancelled { stopped }),
    )
    .map(Arc::new)
    .unwrap_or_else(|e| panic!("table: {e}"));
    let transport = ImpatientTransport {
        route: RouteTransport(routes(Arc::clone(&table))),
        patience: Duration::from_secs(2),
    };
    let mut session = ClientSession::establish(transport, &verifier(true))
        .await
        .unwrap_or_else(|e| panic!("establish: {e}"));
    let answer = session.request(&summarise("a long one")).await;
    assert!(
        matches!(
            &answer,
            Err(ClientError::Transport(TransportError::Failed(_)))
        ),
        "{answer:?}"
    );
    let cancelled =
        tokio::task::spawn_blocking(move || outcome.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| {
                panic!("the feature did not stop within 5 s of the gateway giving up: {e}")
            });
    assert!(cancelled, "the feature ran on after its caller gave up");
    // The session whose answer nobody received is gone.
    for _ in 0..100 {
        if table.stats().open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(table.stats().open, 0);
}
