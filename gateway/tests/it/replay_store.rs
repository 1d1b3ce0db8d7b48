//! The replay store holds only requests that paid: a flood without tokens
//! cannot fill it and turn paying clients away; and replicas that share it
//! refuse a request replayed from one to another.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bhttp::{Message, Mode};
use cloister_gateway::{
    EchoRouter, Gateway, KeyService, Metrics, NoRedeemer, Redeemed, Rejection, ReplayGuard,
    TokenRedeemer, TokenRejection,
};
use cloister_ohttp_keys::{AeadChoice, KeyRing, RotationPolicy};
use cloister_state_store::{StateConfig, StateStore};
use cloister_wire::media::OHTTP_REQUEST;

/// Accepts each token of the form `PrivateToken token="paid-N"` once.
#[derive(Default)]
struct PaidOnce(Mutex<Vec<Vec<u8>>>);

impl TokenRedeemer for PaidOnce {
    async fn redeem(&self, authorization: Option<&[u8]>) -> Result<Redeemed, TokenRejection> {
        let value = authorization.ok_or(TokenRejection::Missing)?;
        if !value.starts_with(b"PrivateToken token=\"paid-") {
            return Err(TokenRejection::Invalid("not a paid token".into()));
        }
        let mut spent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if spent.iter().any(|t| t == value) {
            return Err(TokenRejection::DoubleSpend);
        }
        spent.push(value.to_vec());
        Ok(Redeemed::IssuerKey([0x11; 32]))
    }
}

/// A fresh key ring's service and its key configuration (replicas share both).
fn keys() -> (Arc<KeyService>, Vec<u8>) {
    let policy = RotationPolicy {
        rotate_every: Duration::from_secs(3600),
        overlap: Duration::from_secs(60),
    };
    let ring = KeyRing::generate(policy, &[AeadChoice::Aes128Gcm], cloister_wire::unix_now())
        .expect("keys");
    let config = ring.current_config().to_vec();
    (
        Arc::new(KeyService::new(ring, None, Duration::from_secs(3600))),
        config,
    )
}

/// One request carrying `authorization`, if any, encapsulated to `config`.
fn encapsulated(config: &[u8], authorization: Option<&str>) -> (Vec<u8>, ohttp::ClientResponse) {
    let mut inner = Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"cloister.invalid".to_vec(),
        b"/session".to_vec(),
    );
    inner.put_header("date", httpdate::fmt_http_date(SystemTime::now()));
    if let Some(value) = authorization {
        inner.put_header("authorization", value);
    }
    let mut encoded = Vec::new();
    inner
        .write_bhttp(Mode::KnownLength, &mut encoded)
        .expect("encode");
    ohttp::ClientRequest::from_encoded_config(config)
        .and_then(|c| c.encapsulate(&encoded))
        .expect("encapsulate")
}

/// The inner status of one request carrying `authorization`, if any.
async fn inner_status<T: TokenRedeemer>(
    gateway: &Gateway<EchoRouter, T>,
    config: &[u8],
    authorization: Option<&str>,
) -> u16 {
    let (request, client) = encapsulated(config, authorization);
    let answer = gateway.handle(Some(OHTTP_REQUEST), &request).await;
    assert_eq!(answer.status, 200, "answered inside the encapsulation");
    let plaintext = client.decapsulate(&answer.body).expect("decapsulate");
    let response = Message::read_bhttp(&mut Cursor::new(plaintext.as_slice())).expect("bhttp");
    response.control().status().map_or(0, |s| s.code())
}

#[tokio::test]
async fn tokenless_requests_cannot_fill_the_replay_store() {
    const CAPACITY: u64 = 4;
    let (keys, config) = keys();
    let metrics = Arc::new(Metrics::default());
    let gateway = Gateway::new(
        keys,
        ReplayGuard::new(
            Duration::from_secs(60),
            cloister_state_store::StateStore::in_memory()
                .expect("store")
                .once_set("replay", CAPACITY),
        ),
        PaidOnce::default(),
        EchoRouter,
        Arc::clone(&metrics),
    );

    // A flood many times the store's size, without tokens or with forged ones.
    for i in 0..3 * CAPACITY {
        let forged = format!("PrivateToken token=\"forged-{i}\"");
        let authorization = (i % 2 == 1).then_some(forged.as_str());
        assert_eq!(inner_status(&gateway, &config, authorization).await, 401);
    }
    assert_eq!(
        metrics.rejections(Rejection::ReplayStoreFull),
        0,
        "the flood never reached the replay store"
    );
    // Half came without a token, half with a forged one.
    assert_eq!(
        metrics.rejections(Rejection::TokenMissing),
        3 * CAPACITY / 2
    );
    assert_eq!(
        metrics.rejections(Rejection::TokenInvalid),
        3 * CAPACITY / 2
    );

    // Paying clients are still served, up to the store's capacity.
    for i in 0..CAPACITY {
        let paid = format!("PrivateToken token=\"paid-{i}\"");
        assert_eq!(inner_status(&gateway, &config, Some(&paid)).await, 200);
    }
    assert_eq!(metrics.routed_requests(), CAPACITY);
}

/// Replicas share their OHTTP keys (one key file), so a request captured on
/// its way to one replica decrypts at every other: the replay guard's store
/// must be shared as well.
#[tokio::test]
async fn a_request_replayed_to_another_replica_is_refused() {
    let redis = cloister_test_support::RedisServer::start(&[]);
    let state = StateConfig::Redis {
        url: redis.url(),
        prefix: "cloister-gateway:".into(),
    };
    let (keys, config) = keys();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        // Each replica connects on its own, as separate processes would.
        let store = StateStore::open(&state).await.expect("connect to redis");
        let metrics = Arc::new(Metrics::default());
        let gateway = Gateway::new(
            Arc::clone(&keys),
            ReplayGuard::new(Duration::from_secs(60), store.once_set("replay", 1_000)),
            // Tokens off, so that the replay guard alone stands between a
            // replay and the host (a paid replay is a double spend first).
            NoRedeemer {
                require_tokens: false,
            },
            EchoRouter,
            Arc::clone(&metrics),
        );
        replicas.push((gateway, metrics));
    }
    let (request, _) = encapsulated(&config, None);
    let first = replicas[0].0.handle(Some(OHTTP_REQUEST), &request).await;
    assert_eq!((first.status, replicas[0].1.routed_requests()), (200, 1));
    // The same bytes at the other replica: refused inside the encapsulation
    // (only the original sender could read why), never routed.
    let replayed = replicas[1].0.handle(Some(OHTTP_REQUEST), &request).await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replicas[1].1.rejections(Rejection::Replayed), 1);
    assert_eq!(replicas[1].1.routed_requests(), 0);
}
