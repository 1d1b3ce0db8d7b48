//! Client -> relay -> gateway -> host on loopback: an RA-TLS session whose
//! records ride inside OHTTP requests, forwarded by the gateway's
//! `HttpForwardRouter` to the host's `POST /session`. The client sends its
//! payload to an honest host and refuses one whose evidence fails.
//!
//! Evidence is SIMULATED; the verifier accepts it only because its policy
//! sets `allow_simulated`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloister_api::{FeatureRequest, FeatureResponse, SuggestRequest, Tone};
use cloister_attestation::{AuthorityRejection, VerifyError};
use cloister_client::{Client, ClientConfig, UncheckedKeys};
use cloister_gateway::{Gateway, HttpForwardRouter, KeyService, Metrics, NoRedeemer, ReplayGuard, now_unix};
use cloister_ohttp_keys::{AeadChoice, KeyRing, RotationPolicy};
use cloister_ratls::{
    ClientError, ClientSession, FeatureService, OhttpTransport, SessionConfig, SessionTable, routes,
};
use common::{RELEASED, provider, verifier};
use tokio::net::TcpListener;

mod common;

const MAX_BODY: usize = 256 * 1024;

#[derive(Default)]
struct Echo {
    calls: AtomicUsize,
}

impl FeatureService for Echo {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match request {
            FeatureRequest::Suggest(suggest) => Ok(FeatureResponse::Suggestions {
                items: vec![suggest.draft.to_uppercase()],
            }),
            FeatureRequest::Summarise(_) => Err("unsupported".into()),
        }
    }
}

async fn spawn(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A host launched with `measurement`, behind its own relay and gateway;
/// returns the client transport and the host's feature.
async fn stack(measurement: [u8; 48]) -> (OhttpTransport<UncheckedKeys>, Arc<Echo>) {
    let feature = Arc::new(Echo::default());
    let table = SessionTable::new(&SessionConfig::default(), provider(measurement), feature.clone())
        .unwrap_or_else(|e| panic!("table: {e}"));
    let host = spawn(routes(Arc::new(table))).await;

    let router = HttpForwardRouter::new(vec![format!("http://{host}")], Duration::from_secs(10), MAX_BODY)
        .unwrap_or_else(|e| panic!("router: {e}"));
    let rotation = RotationPolicy {
        rotate_every: Duration::from_secs(86_400),
        overlap: Duration::from_secs(600),
    };
    let ring = KeyRing::generate(rotation, &[AeadChoice::Aes128Gcm], now_unix())
        .unwrap_or_else(|e| panic!("keys: {e}"));
    let keys = Arc::new(KeyService::new(ring, None, Duration::from_secs(3600)));
    let gateway = Arc::new(Gateway::new(
        Arc::clone(&keys),
        ReplayGuard::new(Duration::from_secs(60), 10_000),
        NoRedeemer { require_tokens: false },
        router,
        Arc::new(Metrics::default()),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let gateway_addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move { cloister_gateway::serve(listener, gateway, "/gateway", MAX_BODY).await });
    let relay = cloister_relay::RelayConfig {
        gateway_url: format!("http://{gateway_addr}/gateway"),
        max_request_bytes: MAX_BODY,
        timeout_ms: 10_000,
        ..cloister_relay::RelayConfig::default()
    };
    let relay_addr = spawn(cloister_relay::app(relay).unwrap_or_else(|e| panic!("relay: {e}"))).await;

    let client = Client::new(
        ClientConfig {
            relay_url: format!("http://{relay_addr}/relay"),
            key_config_url: format!("http://{gateway_addr}/.well-known/ohttp-gateway"),
            timeout: Duration::from_secs(10),
        },
        UncheckedKeys,
    )
    .unwrap_or_else(|e| panic!("client: {e}"));
    (OhttpTransport::new(Arc::new(client), "cloister.invalid"), feature)
}

fn suggest(draft: &str) -> FeatureRequest {
    FeatureRequest::Suggest(SuggestRequest {
        draft: draft.into(),
        context: vec![],
        tone: Tone::Neutral,
        count: 1,
    })
}

#[tokio::test]
async fn an_attested_session_through_relay_and_gateway() {
    let (transport, feature) = stack(RELEASED).await;
    let mut session = ClientSession::establish(transport, &verifier(true))
        .await
        .unwrap_or_else(|e| panic!("establish: {e}"));
    assert_eq!(session.attestation().measurement, RELEASED);
    let response = session
        .request(&suggest("ship it"))
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    assert_eq!(
        response,
        FeatureResponse::Suggestions {
            items: vec!["SHIP IT".into()]
        }
    );
    assert_eq!(feature.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_client_sends_nothing_to_an_unreleased_host_through_the_gateway() {
    let (transport, feature) = stack([0x0b; 48]).await;
    let outcome = ClientSession::establish(transport, &verifier(true)).await;
    assert!(
        matches!(
            &outcome,
            Err(ClientError::Attestation(VerifyError::MeasurementNotAccepted(
                AuthorityRejection::Measurement(m)
            ))) if *m == [0x0b; 48]
        ),
        "{outcome:?}"
    );
    assert_eq!(feature.calls.load(Ordering::SeqCst), 0);
}
