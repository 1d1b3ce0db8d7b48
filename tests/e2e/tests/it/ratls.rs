//! Client -> relay -> gateway -> host on loopback: an RA-TLS session whose
//! records ride inside OHTTP requests, forwarded by the gateway's
//! `HttpForwardRouter` to the host's `POST /session`. The client sends its
//! payload to an honest host and refuses one whose evidence fails.
//!
//! Requests and answers are padded to size buckets: conversations of
//! different lengths in one bucket look the same to the relay and the
//! gateway.
//!
//! Evidence is SIMULATED; the verifier accepts it only because its policy
//! sets `allow_simulated`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cloister_api::{FeatureResponse, Summary};
use cloister_attestation::{AuthorityRejection, VerifyError};
use cloister_client::{Client, OhttpTransport, PinnedDigests, TokenSource, UncheckedKeys};
use cloister_gateway::{NoRedeemer, RouteError, Router};
use cloister_ratls::{ClientError, ClientSession, SessionConfig, SessionTable, routes};
use cloister_test_support::{Loopback, forward_to, serve_app};
use common::{CountingFeature, RELEASED, provider, summarise, verifier};

use crate::ratls_common as common;

/// A simulated host launched with `measurement`, serving `feature` on loopback.
async fn simulated_host(
    measurement: [u8; 48],
    feature: Arc<CountingFeature>,
) -> std::net::SocketAddr {
    let table = SessionTable::new(&SessionConfig::default(), provider(measurement), feature)
        .unwrap_or_else(|e| panic!("table: {e}"));
    serve_app(routes(Arc::new(table))).await
}

/// A host launched with `measurement`, behind its own relay and gateway;
/// returns the client transport and the host's feature.
async fn stack(measurement: [u8; 48]) -> (OhttpTransport<UncheckedKeys>, Arc<CountingFeature>) {
    let feature = Arc::new(CountingFeature::default());
    let host = simulated_host(measurement, Arc::clone(&feature)).await;
    let servers = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        forward_to(host),
    )
    .await;

    let client = Client::new(
        crate::common::loopback_client_config(servers.relay_url, servers.key_config_url),
        UncheckedKeys,
    )
    .unwrap_or_else(|e| panic!("client: {e}"));
    (
        OhttpTransport::new(Arc::new(client), "cloister.invalid"),
        feature,
    )
}

#[tokio::test]
async fn an_attested_session_through_relay_and_gateway() {
    let (transport, feature) = stack(RELEASED).await;
    let mut session = ClientSession::establish(transport, &verifier(true))
        .await
        .unwrap_or_else(|e| panic!("establish: {e}"));
    assert_eq!(session.attestation().measurement, RELEASED);
    let response = session
        .request(&summarise("ship it"))
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    assert_eq!(
        response,
        FeatureResponse::of(&Summary {
            text: "1 messages, first: ship it".into(),
            messages_covered: 1
        })
    );
    assert_eq!(feature.calls(), 1);
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
    assert_eq!(feature.calls(), 0);
}

/// Counts the tokens taken from it.
#[derive(Default)]
struct CountingTokens(AtomicUsize);

impl TokenSource for CountingTokens {
    fn next_token(&self) -> Option<String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        None
    }
}

#[tokio::test]
async fn a_key_config_the_client_refuses_costs_no_token() {
    let host = simulated_host(RELEASED, Arc::new(CountingFeature::default())).await;
    let servers = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        forward_to(host),
    )
    .await;
    let config = crate::common::loopback_client_config(servers.relay_url, servers.key_config_url);
    // Pins some other key's digest: the gateway's key is refused.
    let client = Client::new(config, PinnedDigests([[7; 32]].into()))
        .unwrap_or_else(|e| panic!("client: {e}"));
    let tokens = Arc::new(CountingTokens::default());
    let transport =
        OhttpTransport::new(Arc::new(client), "cloister.invalid").with_tokens(tokens.clone());
    let outcome = ClientSession::establish(transport, &verifier(true)).await;
    assert!(
        matches!(&outcome, Err(ClientError::Transport(e)) if e.to_string().contains("not pinned")),
        "{outcome:?}"
    );
    assert_eq!(tokens.0.load(Ordering::SeqCst), 0, "no token was taken");
}

/// The body length of every exchange, in order: (request, response).
type Lengths = Arc<Mutex<Vec<(usize, usize)>>>;

/// Stands in front of the relay and records the body lengths the relay
/// receives and sends back.
async fn relay_tap(relay_url: String, seen: Lengths) -> String {
    let http = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/relay",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (http, relay_url, seen) = (http.clone(), relay_url.clone(), Arc::clone(&seen));
            async move {
                let answer = http
                    .post(&relay_url)
                    .header("content-type", cloister_wire::media::OHTTP_REQUEST)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("relay: {e}"));
                let status = answer.status().as_u16();
                let answer = answer
                    .bytes()
                    .await
                    .unwrap_or_else(|e| panic!("relay body: {e}"));
                seen.lock()
                    .unwrap_or_else(|e| panic!("{e}"))
                    .push((body.len(), answer.len()));
                (
                    axum::http::StatusCode::from_u16(status)
                        .unwrap_or_else(|e| panic!("status: {e}")),
                    [("content-type", cloister_wire::media::OHTTP_RESPONSE)],
                    answer,
                )
            }
        }),
    );
    format!("http://{}/relay", serve_app(app).await)
}

/// Records the lengths of the inner request bodies (the client's TLS
/// records) and of the host's answers, as the gateway sees them.
#[derive(Clone)]
struct InnerLengths<R> {
    inner: R,
    seen: Lengths,
}

impl<R: Router> Router for InnerLengths<R> {
    async fn route(&self, request: bhttp::Message) -> Result<bhttp::Message, RouteError> {
        let sent = request.content().len();
        let answer = self.inner.route(request).await?;
        self.seen
            .lock()
            .unwrap_or_else(|e| panic!("{e}"))
            .push((sent, answer.content().len()));
        Ok(answer)
    }
}

/// One attested session summarising `text`; what the relay and the
/// gateway saw of it.
async fn observed_conversation(text: &str) -> (Vec<(usize, usize)>, Vec<(usize, usize)>) {
    let host = simulated_host(RELEASED, Arc::new(CountingFeature::default())).await;
    let at_gateway = Lengths::default();
    let router = InnerLengths {
        inner: forward_to(host),
        seen: Arc::clone(&at_gateway),
    };
    let servers = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        router,
    )
    .await;
    let at_relay = Lengths::default();
    let client = Client::new(
        crate::common::loopback_client_config(
            relay_tap(servers.relay_url, Arc::clone(&at_relay)).await,
            servers.key_config_url,
        ),
        UncheckedKeys,
    )
    .unwrap_or_else(|e| panic!("client: {e}"));
    let transport = OhttpTransport::new(Arc::new(client), "cloister.invalid");
    let mut session = ClientSession::establish(transport, &verifier(true))
        .await
        .unwrap_or_else(|e| panic!("establish: {e}"));
    let response = session
        .request(&summarise(text))
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    assert!(
        matches!(response.decode::<Summary>(), Ok(Summary { text: summary, .. }) if summary.ends_with(text)),
        "{response:?}"
    );
    let seen = |lengths: Lengths| lengths.lock().unwrap_or_else(|e| panic!("{e}")).clone();
    (seen(at_relay), seen(at_gateway))
}

#[tokio::test]
async fn lengths_within_a_bucket_are_identical_at_the_relay() {
    // Both conversations, and both summaries, fit the smallest bucket.
    let short = observed_conversation("ok").await;
    let longer = observed_conversation(&"a longer conversation ".repeat(20)).await;
    assert_eq!(short.0.len(), 3, "handshake, attestation, request");
    assert_eq!(short.0, longer.0, "at the relay");
    assert_eq!(short.1, longer.1, "at the gateway");
    // A conversation in a larger bucket differs, in its request and answer.
    let bucket = cloister_ratls::PADDED_FRAME_SIZES[1];
    let large = observed_conversation(&"x".repeat(bucket)).await;
    assert_eq!(short.0[..2], large.0[..2], "handshake and attestation");
    assert!(
        large.0[2].0 > short.0[2].0 && large.0[2].1 > short.0[2].1,
        "{:?} vs {:?}",
        large.0[2],
        short.0[2]
    );
}
