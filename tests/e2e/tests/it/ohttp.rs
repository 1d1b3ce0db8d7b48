//! Client -> relay -> gateway -> test router on loopback: the happy path and
//! each failure of the OHTTP layer (key rotation and unknown key ids,
//! corrupted bodies, replays, stale dates, oversized bodies, key
//! consistency, tokens), each followed by proof the servers still serve.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bhttp::{Message, Mode};
use cloister_client::{
    Client, ClientConfig, ClientError, InnerRequest, PinnedDigests, UncheckedKeys,
};
use cloister_gateway::{
    EchoRouter, GatewayConfig, KeyService, Metrics, NoRedeemer, Redeemed, Rejection, RouteError,
    Router, TokenRedeemer, TokenRejection,
};
use cloister_ohttp_keys::{AeadChoice, KeyRing};
use cloister_relay::{KeyCache, RelayConfig};
use cloister_test_support::Loopback;
use cloister_wire::OHTTP_KEYS_PATH;

use crate::common;

const GATEWAY_MAX_BODY: usize = 8 * 1024;
const RELAY_MAX_BODY: usize = 64 * 1024;
const OVERLAP: Duration = Duration::from_secs(600);

/// A relay and a gateway on loopback (see [`Loopback`]).
pub(crate) struct Stack {
    keys: Arc<KeyService>,
    relay_keys: Arc<KeyCache>,
    metrics: Arc<Metrics>,
    relay_url: String,
    pub(crate) key_config_url: String,
    pub(crate) gateway_origin: String,
}

impl Stack {
    pub(crate) fn client(&self) -> Client {
        Client::new(self.client_config(), UncheckedKeys).expect("client")
    }

    fn client_config(&self) -> ClientConfig {
        crate::common::loopback_client_config(self.relay_url.clone(), self.key_config_url.clone())
    }

    async fn post_raw(&self, body: Vec<u8>) -> reqwest::Response {
        reqwest::Client::new()
            .post(&self.relay_url)
            .header("content-type", "message/ohttp-req")
            .body(body)
            .send()
            .await
            .expect("relay answers")
    }

    /// The configuration the gateway itself publishes now.
    async fn current_config(&self) -> Vec<u8> {
        let list = reqwest::get(format!("{}{}", self.gateway_origin, OHTTP_KEYS_PATH))
            .await
            .expect("keys")
            .bytes()
            .await
            .expect("body");
        cloister_ohttp_keys::split_key_list(&list).expect("list")[0].to_vec()
    }
}

/// Small body limits keep the oversize tests small.
async fn start_with<R: Router, T: TokenRedeemer>(
    aeads: &[AeadChoice],
    tokens: T,
    router: R,
) -> Stack {
    let mut gateway = GatewayConfig {
        max_request_bytes: GATEWAY_MAX_BODY,
        ..GatewayConfig::default()
    };
    gateway.keys.aeads = aeads.to_vec();
    gateway.keys.overlap_secs = OVERLAP.as_secs();
    let relay = RelayConfig {
        max_request_bytes: RELAY_MAX_BODY,
        ..RelayConfig::default()
    };
    let stack = Loopback::start_with(&gateway, &relay, tokens, router).await;
    Stack {
        keys: stack.keys,
        relay_keys: stack.relay_keys,
        metrics: stack.metrics,
        relay_url: stack.relay_url,
        key_config_url: stack.key_config_url,
        gateway_origin: stack.gateway_origin,
    }
}

async fn start() -> Stack {
    start_with(
        &[AeadChoice::Aes128Gcm, AeadChoice::Chacha20Poly1305],
        NoRedeemer {
            require_tokens: false,
        },
        EchoRouter,
    )
    .await
}

pub(crate) fn echo(text: &str) -> InnerRequest {
    InnerRequest::new("POST", "cloister.invalid", "/echo").body(text)
}

async fn assert_echoes(client: &Client, text: &str) {
    let response = client.send(&echo(text)).await.expect("round trip");
    assert_eq!(
        response.control().status().map(bhttp::StatusCode::code),
        Some(200)
    );
    assert_eq!(response.content(), format!("POST /echo\n{text}").as_bytes());
}

/// Encapsulate an inner request by hand, for tests that tamper with or replay the bytes.
fn encapsulate(config: &[u8], date: SystemTime) -> (Vec<u8>, ohttp::ClientResponse) {
    let mut message = Message::request(
        b"GET".to_vec(),
        b"https".to_vec(),
        b"cloister.invalid".to_vec(),
        b"/".to_vec(),
    );
    message.put_header("date", httpdate::fmt_http_date(date));
    let mut encoded = Vec::new();
    message
        .write_bhttp(Mode::KnownLength, &mut encoded)
        .expect("encode");
    ohttp::ClientRequest::from_encoded_config(config)
        .expect("config")
        .encapsulate(&encoded)
        .expect("encapsulate")
}

fn problem_type(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).expect("problem json");
    value["type"].as_str().expect("type").to_owned()
}

#[tokio::test]
async fn round_trip_through_relay_and_gateway() {
    let stack = start().await;
    let client = stack.client();
    assert_echoes(&client, "hello").await;
    assert_echoes(&client, "again").await;
    assert_eq!(stack.metrics.routed_requests(), 2);
    assert_eq!(
        stack.relay_keys.served(),
        1,
        "key configuration cached between requests"
    );
    assert_eq!(
        stack.metrics.key_configs_served(),
        1,
        "the gateway served only the relay's copy"
    );
}

#[tokio::test]
async fn chacha20_poly1305_configuration_works_end_to_end() {
    let stack = start_with(
        &[AeadChoice::Chacha20Poly1305],
        NoRedeemer {
            require_tokens: false,
        },
        EchoRouter,
    )
    .await;
    let config = stack.current_config().await;
    assert_eq!(
        &config[config.len() - 4..],
        &[0x00, 0x01, 0x00, 0x03],
        "HKDF-SHA256 with ChaCha20-Poly1305"
    );
    assert_echoes(&stack.client(), "chacha").await;
}

#[tokio::test]
async fn key_rotation_mid_run_overlap_then_refetch() {
    let stack = start().await;
    let client = stack.client();
    assert_echoes(&client, "before rotation").await;
    let old_id = stack.keys.with_ring(KeyRing::current_key_id);

    let new_id = stack.keys.rotate_now().expect("rotate");
    assert_ne!(old_id, new_id);
    assert_eq!(stack.current_config().await[0], new_id, "new key published");
    // The client still holds the old configuration: accepted during the overlap window.
    assert_echoes(&client, "during overlap").await;
    assert_eq!(stack.metrics.rejections(Rejection::UnknownKeyId), 0);

    // The overlap window ends: the old key is forgotten.
    stack
        .keys
        .maintain(cloister_wire::unix_now() + OVERLAP.as_secs() + 1)
        .expect("maintain");
    assert_eq!(stack.keys.with_ring(KeyRing::key_ids), vec![new_id]);
    // The relay's schedule comes round (in production before the overlap
    // ends, as the key list's max-age is capped by it).
    stack.relay_keys.refresh().await.expect("relay refresh");
    // The client is told, refetches and retries with a fresh encapsulation.
    assert_echoes(&client, "after retirement").await;
    assert_eq!(stack.metrics.rejections(Rejection::UnknownKeyId), 1);
    assert_eq!(stack.relay_keys.served(), 2, "fetched twice by the client");
    assert_eq!(
        stack.metrics.key_configs_served(),
        3,
        "2 by the relay, 1 by this test"
    );
}

/// A gateway that lost its saved keys starts a fresh ring, whose key id may
/// be the one a client holds, under another key. The request then does not
/// decrypt (a bare 400, RFC 9458 §5.3) instead of drawing the key problem:
/// the client must refetch once and be served, not fail until its cached
/// configuration expires.
#[tokio::test]
async fn a_key_id_reused_under_another_key_makes_the_client_refetch() {
    let stack = start().await;
    let client = stack.client();
    assert_echoes(&client, "before the gateway starts afresh").await;
    let old_id = stack.keys.with_ring(KeyRing::current_key_id);
    let old_config = stack.current_config().await;

    // Rotate all the way round, retiring each key: the same id, another key.
    let retire_all = cloister_wire::unix_now() + OVERLAP.as_secs() + 1;
    loop {
        let id = stack.keys.rotate_now().expect("rotate");
        stack.keys.maintain(retire_all).expect("maintain");
        if id == old_id {
            break;
        }
    }
    assert_eq!(stack.keys.with_ring(KeyRing::key_ids), vec![old_id]);
    assert_ne!(stack.current_config().await, old_config, "another key");
    stack.relay_keys.refresh().await.expect("relay refresh");

    assert_echoes(&client, "after the gateway started afresh").await;
    assert_eq!(stack.metrics.rejections(Rejection::DecapsulationFailed), 1);
    assert_eq!(stack.metrics.rejections(Rejection::UnknownKeyId), 0);
    assert_eq!(stack.relay_keys.served(), 2, "fetched twice by the client");
}

#[tokio::test]
async fn unknown_key_id_gets_the_key_problem() {
    let stack = start().await;
    let mut config = stack.current_config().await;
    config[0] = config[0].wrapping_add(100);
    let (encapsulated, _) = encapsulate(&config, SystemTime::now());
    let answer = stack.post_raw(encapsulated).await;
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    assert_eq!(
        problem_type(&answer.bytes().await.expect("body")),
        cloister_wire::problem::OHTTP_KEY
    );
    assert_eq!(stack.metrics.rejections(Rejection::UnknownKeyId), 1);
    assert_echoes(&stack.client(), "still serving").await;
}

#[tokio::test]
async fn truncated_and_corrupted_bodies_are_refused_without_detail() {
    let stack = start().await;
    let config = stack.current_config().await;
    let (encapsulated, _) = encapsulate(&config, SystemTime::now());
    let mut flipped = encapsulated.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let cases = [
        encapsulated[..encapsulated.len() - 1].to_vec(),
        encapsulated[..20].to_vec(),
        encapsulated[..3].to_vec(),
        vec![],
        flipped,
    ];
    for body in cases {
        let answer = stack.post_raw(body.clone()).await;
        assert_eq!(answer.status(), 400, "{} bytes", body.len());
        assert!(
            answer.bytes().await.expect("body").is_empty(),
            "no detail for a failed decapsulation"
        );
    }
    assert_eq!(stack.metrics.rejections(Rejection::DecapsulationFailed), 5);
    assert_echoes(&stack.client(), "still serving").await;
}

#[tokio::test]
async fn replayed_request_is_refused_inside_the_encapsulation() {
    let stack = start().await;
    let config = stack.current_config().await;
    let (encapsulated, decapsulator) = encapsulate(&config, SystemTime::now());
    let first = stack.post_raw(encapsulated.clone()).await;
    assert_eq!(first.status(), 200);
    let replay = stack.post_raw(encapsulated).await;
    assert_eq!(
        replay.status(),
        200,
        "answered encapsulated: only the sender can read why"
    );
    let plaintext = decapsulator
        .decapsulate(&replay.bytes().await.expect("body"))
        .expect("decapsulates");
    let inner = Message::read_bhttp(&mut Cursor::new(plaintext.as_slice())).expect("bhttp");
    assert_eq!(
        inner.control().status().map(bhttp::StatusCode::code),
        Some(400)
    );
    assert_eq!(
        problem_type(inner.content()),
        cloister_wire::problem::REPLAYED
    );
    assert_eq!(stack.metrics.rejections(Rejection::Replayed), 1);
    assert_eq!(
        stack.metrics.routed_requests(),
        1,
        "the replay never reached the router"
    );
    assert_echoes(&stack.client(), "still serving").await;
}

#[tokio::test]
async fn stale_date_is_refused_and_the_client_corrects_its_clock() {
    let stack = start().await;
    let config = stack.current_config().await;
    let (stale, decapsulator) = encapsulate(&config, SystemTime::now() - Duration::from_secs(3600));
    let answer = stack.post_raw(stale).await;
    let plaintext = decapsulator
        .decapsulate(&answer.bytes().await.expect("body"))
        .expect("decapsulates");
    let inner = Message::read_bhttp(&mut Cursor::new(plaintext.as_slice())).expect("bhttp");
    assert_eq!(problem_type(inner.content()), cloister_wire::problem::DATE);
    assert!(
        inner.header().get(b"date").is_some(),
        "gateway tells its time"
    );

    let client = stack.client();
    client.set_clock_offset(-3600);
    assert_echoes(&client, "after correction").await;
    assert_eq!(stack.metrics.rejections(Rejection::DateRejected), 2);
}

#[tokio::test]
async fn oversized_bodies_are_refused_by_relay_and_gateway() {
    let stack = start().await;
    let client = stack.client();
    let over_gateway = client.send(&echo(&"x".repeat(GATEWAY_MAX_BODY + 1))).await;
    assert!(
        matches!(over_gateway, Err(ClientError::Status { status: 413, .. })),
        "{:?}",
        over_gateway.err()
    );
    let over_relay = stack.post_raw(vec![0; RELAY_MAX_BODY + 1]).await;
    assert_eq!(over_relay.status(), 413);
    assert_echoes(&client, "still serving").await;
}

#[tokio::test]
async fn key_consistency_failure_sends_nothing() {
    let stack = start().await;
    let client = Client::new(stack.client_config(), PinnedDigests::default()).expect("client");
    let refused = client.send(&echo("secret")).await;
    assert!(
        matches!(refused, Err(ClientError::KeyConsistency(_))),
        "{:?}",
        refused.err()
    );
    assert_eq!(stack.metrics.encapsulated_requests(), 0);

    let digest = cloister_ohttp_keys::key_config_digest(&stack.current_config().await);
    let pinned = Client::new(
        stack.client_config(),
        PinnedDigests([digest].into_iter().collect()),
    )
    .expect("client");
    let response = pinned
        .send(&echo("pinned"))
        .await
        .expect("pinned key accepted");
    assert_eq!(
        response.control().status().map(bhttp::StatusCode::code),
        Some(200)
    );
}

#[tokio::test]
async fn required_tokens_fail_closed_without_a_redeemer() {
    let stack = start_with(
        &[AeadChoice::Aes128Gcm],
        NoRedeemer {
            require_tokens: true,
        },
        EchoRouter,
    )
    .await;
    let client = stack.client();
    for request in [
        echo("no token"),
        echo("with token").private_token("dG9rZW4"),
    ] {
        let response = client.send(&request).await.expect("inner answer");
        assert_eq!(
            response.control().status().map(bhttp::StatusCode::code),
            Some(401)
        );
    }
    assert_eq!(stack.metrics.rejections(Rejection::TokenMissing), 1);
    assert_eq!(stack.metrics.rejections(Rejection::TokenInvalid), 1);
    assert_eq!(stack.metrics.routed_requests(), 0);
}

/// Accepts every token once.
#[derive(Clone, Default)]
struct SingleUseTokens(Arc<Mutex<Vec<Vec<u8>>>>);

impl TokenRedeemer for SingleUseTokens {
    async fn redeem(&self, authorization: Option<&[u8]>) -> Result<Redeemed, TokenRejection> {
        let token = authorization.ok_or(TokenRejection::Missing)?.to_vec();
        let mut spent = self.0.lock().expect("lock");
        if spent.contains(&token) {
            return Err(TokenRejection::DoubleSpend);
        }
        spent.push(token);
        Ok(Redeemed::IssuerKey([0x22; 32]))
    }
}

/// Header fields (name, value) of one request.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Echoes, and remembers the header fields each request arrived with.
#[derive(Clone, Default)]
struct RecordingRouter(Arc<Mutex<Vec<Fields>>>);

impl Router for RecordingRouter {
    async fn route(&self, request: Message) -> Result<Message, RouteError> {
        let fields = request
            .header()
            .iter()
            .map(|f| (f.name().to_vec(), f.value().to_vec()))
            .collect();
        self.0.lock().expect("lock").push(fields);
        EchoRouter.route(request).await
    }
}

#[tokio::test]
async fn token_is_redeemed_once_and_never_reaches_the_host() {
    let router = RecordingRouter::default();
    let stack = start_with(
        &[AeadChoice::Aes128Gcm],
        SingleUseTokens::default(),
        router.clone(),
    )
    .await;
    let client = stack.client();
    let request = echo("paid")
        .private_token("dG9rZW4")
        .header("cloister-session", "s1");
    let first = client.send(&request).await.expect("answer");
    assert_eq!(
        first.control().status().map(bhttp::StatusCode::code),
        Some(200)
    );
    let second = client.send(&request).await.expect("answer");
    assert_eq!(
        second.control().status().map(bhttp::StatusCode::code),
        Some(401),
        "double spend refused"
    );
    assert_eq!(stack.metrics.rejections(Rejection::TokenDoubleSpent), 1);
    assert_eq!(stack.metrics.tokens_redeemed(&[0x22; 32]), 1);
    let seen = router.0.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].iter().all(|(name, _)| name != b"authorization"),
        "token stripped before routing"
    );
    assert!(
        seen[0]
            .iter()
            .any(|(name, value)| name == b"cloister-session" && value == b"s1")
    );
}

#[tokio::test]
async fn key_endpoint_sets_cache_headers_and_health_answers() {
    let stack = start().await;
    let answer = reqwest::get(&stack.key_config_url).await.expect("keys");
    assert_eq!(answer.headers()["content-type"], "application/ohttp-keys");
    let cache = answer.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let max_age: u64 = cache
        .trim_start_matches("public, max-age=")
        .parse()
        .expect("number");
    assert!(max_age > 0 && max_age <= 3600, "{max_age}");
    assert!(answer.headers().get("etag").is_some());
    let health_url = stack
        .key_config_url
        .replace("/.well-known/ohttp-gateway", "/healthz");
    assert_eq!(
        reqwest::get(health_url).await.expect("healthz").status(),
        200
    );
}

/// A gateway redeeming Privacy Pass tokens of `issuer`, the way its
/// `[tokens.issuer]` configuration sets it up (directory keys, the default
/// challenge), in front of the echo router.
pub(crate) async fn start_redeeming(issuer: &common::Issuer) -> Stack {
    use cloister_privacypass::{Redeemer, TrustedKey};
    let client = issuer.client();
    let directory = client.directory().await.expect("issuer directory");
    let keys = TrustedKey::from_directory(&directory, issuer.settings().key_lifetime_secs)
        .expect("trusted keys");
    let spent = cloister_state_store::StateStore::in_memory()
        .expect("store")
        .once_set("spent", 1000);
    let redeemer = Redeemer::new(keys, std::slice::from_ref(client.challenge()), spent);
    let tokens = cloister_gateway::PrivacyPassRedeemer::new(Arc::new(redeemer));
    start_with(&[AeadChoice::Aes128Gcm], tokens, EchoRouter).await
}

#[tokio::test]
async fn wallet_tokens_are_redeemed_once_at_the_gateway() {
    use cloister_client::TokenSource as _;
    let issuer = common::Issuer::start(10).await;
    let stack = start_redeeming(&issuer).await;
    let state = tempfile::tempdir().expect("state dir");
    let client_tokens = issuer.client();
    let wallet =
        cloister_client::tokens::TokenWallet::open(state.path(), client_tokens.challenge())
            .expect("wallet");
    assert_eq!(
        client_tokens
            .fetch(&issuer.account, &wallet, 2)
            .await
            .expect("fetch"),
        2
    );
    let client = stack.client();
    let status = |response: &Message| response.control().status().map(bhttp::StatusCode::code);

    let token = wallet.next_token().expect("a token");
    let accepted = client
        .send(&echo("first").private_token(&token))
        .await
        .expect("round trip");
    assert_eq!(status(&accepted), Some(200));
    assert!(
        !accepted.content().windows(12).any(|w| w == b"PrivateToken"),
        "token stripped before the router"
    );

    // The same token again (a fresh encapsulation, so not an OHTTP replay): refused.
    let replayed = client
        .send(&echo("again").private_token(&token))
        .await
        .expect("round trip");
    assert_eq!(status(&replayed), Some(401));

    // No token at all: refused. The wallet's next token: accepted.
    let without = client.send(&echo("none")).await.expect("round trip");
    assert_eq!(status(&without), Some(401));
    let next = wallet.next_token().expect("second token");
    assert_ne!(next, token);
    let accepted = client
        .send(&echo("second").private_token(&next))
        .await
        .expect("round trip");
    assert_eq!(status(&accepted), Some(200));
    assert_eq!(wallet.next_token(), None, "the wallet is empty after two");
}

#[tokio::test]
async fn tokens_for_another_origin_are_refused_at_the_gateway() {
    use cloister_client::TokenSource as _;
    let issuer = common::Issuer::start(10).await;
    let stack = start_redeeming(&issuer).await;
    let state = tempfile::tempdir().expect("state dir");
    let settings = cloister_client::tokens::IssuerSettings {
        origin: "other.example".into(),
        ..issuer.settings()
    };
    let elsewhere = cloister_client::tokens::IssuerClient::new(settings).expect("issuer client");
    let wallet = cloister_client::tokens::TokenWallet::open(state.path(), elsewhere.challenge())
        .expect("wallet");
    elsewhere
        .fetch(&issuer.account, &wallet, 1)
        .await
        .expect("fetch");
    let token = wallet.next_token().expect("a token");
    let refused = stack
        .client()
        .send(&echo("x").private_token(&token))
        .await
        .expect("round trip");
    assert_eq!(
        refused.control().status().map(bhttp::StatusCode::code),
        Some(401)
    );
}
