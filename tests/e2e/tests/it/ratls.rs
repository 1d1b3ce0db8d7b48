//! Client -> relay -> gateway -> host on loopback: an RA-TLS session whose
//! records ride inside OHTTP requests, forwarded by the gateway's
//! `HttpForwardRouter` to the host's `POST /session`. The client sends its
//! payload to an honest host and refuses one whose evidence fails.
//!
//! Evidence is SIMULATED; the verifier accepts it only because its policy
//! sets `allow_simulated`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloister_api::FeatureResponse;
use cloister_attestation::{AuthorityRejection, VerifyError};
use cloister_client::{
    Client, ClientConfig, OhttpTransport, PinnedDigests, TokenSource, UncheckedKeys,
};
use cloister_gateway::NoRedeemer;
use cloister_ratls::{ClientError, ClientSession, SessionConfig, SessionTable, routes};
use cloister_test_support::{Loopback, forward_to, serve_app};
use common::{CountingFeature, RELEASED, provider, summarise, verifier};

use crate::ratls_common as common;

/// A host launched with `measurement`, behind its own relay and gateway;
/// returns the client transport and the host's feature.
async fn stack(measurement: [u8; 48]) -> (OhttpTransport<UncheckedKeys>, Arc<CountingFeature>) {
    let feature = Arc::new(CountingFeature::default());
    let table = SessionTable::new(
        &SessionConfig::default(),
        provider(measurement),
        feature.clone(),
    )
    .unwrap_or_else(|e| panic!("table: {e}"));
    let host = serve_app(routes(Arc::new(table))).await;
    let servers = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        forward_to(host),
    )
    .await;

    let client = Client::new(
        ClientConfig {
            relay_url: servers.relay_url,
            key_config_url: servers.key_config_url,
            ..ClientConfig::default()
        },
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
        FeatureResponse::Summary {
            text: "1 messages, first: ship it".into(),
            messages_covered: 1
        }
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
    let table = SessionTable::new(
        &SessionConfig::default(),
        provider(RELEASED),
        Arc::new(CountingFeature::default()),
    )
    .unwrap_or_else(|e| panic!("table: {e}"));
    let host = serve_app(routes(Arc::new(table))).await;
    let servers = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        forward_to(host),
    )
    .await;
    let config = ClientConfig {
        relay_url: servers.relay_url,
        key_config_url: servers.key_config_url,
        ..ClientConfig::default()
    };
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
