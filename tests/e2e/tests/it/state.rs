//! Gateway replicas on one state store: a token spent at one replica is
//! refused at another, a restart forgets no spent token, and a store that is
//! down refuses every request (no token accepted) with a clear error; issuer
//! replicas share each account's allowance and refuse token requests while
//! their store is down. (A request replayed to another gateway replica:
//! `cloister-gateway`'s `replay_store.rs`.)

use std::sync::Arc;

use cloister_client::tokens::{FetchError, IssuanceError, TokenWallet};
use cloister_client::{Client, InnerRequest, TokenSource as _, UncheckedKeys};
use cloister_gateway::{EchoRouter, GatewayConfig, PrivacyPassRedeemer, Rejection};
use cloister_issuer::rate_limit::RateLimiter;
use cloister_privacypass::{Redeemer, TokenChallenge, TrustedKey};
use cloister_relay::RelayConfig;
use cloister_state_store::{StateConfig, StateStore};
use cloister_test_support::{Loopback, RedisServer};

use crate::common::Issuer;

/// What a gateway replica needs from the issuer: its keys and challenge.
#[derive(Clone)]
struct Trust {
    keys: Vec<TrustedKey>,
    challenge: TokenChallenge,
}

impl Trust {
    async fn of(issuer: &Issuer) -> Self {
        let client = issuer.client();
        let directory = client.directory().await.expect("issuer directory");
        let keys = TrustedKey::from_directory(&directory, issuer.settings().key_lifetime_secs)
            .expect("trusted keys");
        Self {
            keys,
            challenge: client.challenge().clone(),
        }
    }
}

/// One gateway replica (with its relay) on `store`, redeeming tokens as
/// `[tokens.issuer]` sets it up, in front of the echo router.
async fn replica(store: &StateStore, trust: &Trust) -> (Loopback, Client) {
    let gateway = GatewayConfig::default();
    let spent = store.once_set("spent", gateway.replay.capacity);
    let redeemer = Redeemer::new(
        trust.keys.clone(),
        std::slice::from_ref(&trust.challenge),
        spent,
    );
    let tokens = PrivacyPassRedeemer::new(Arc::new(redeemer));
    let stack =
        Loopback::start_on(store, &gateway, &RelayConfig::default(), tokens, EchoRouter).await;
    let client = Client::new(
        crate::common::loopback_client_config(
            stack.relay_url.clone(),
            stack.key_config_url.clone(),
        ),
        UncheckedKeys,
    )
    .expect("client");
    (stack, client)
}

/// Asks `issuer` for `count` tokens into the wallet kept in `dir`.
async fn fetch(
    issuer: &Issuer,
    dir: &std::path::Path,
    count: usize,
) -> (TokenWallet, Result<usize, FetchError>) {
    let client = issuer.client();
    let wallet = TokenWallet::open(dir, client.challenge()).expect("wallet");
    let fetched = client.fetch(&issuer.account, &wallet, count).await;
    (wallet, fetched)
}

/// `count` tokens from `issuer`, in a wallet kept in `dir`.
async fn tokens(issuer: &Issuer, dir: &std::path::Path, count: usize) -> Vec<String> {
    let (wallet, fetched) = fetch(issuer, dir, count).await;
    assert_eq!(fetched.expect("fetch tokens"), count);
    (0..count)
        .map(|_| wallet.next_token().expect("a token"))
        .collect()
}

/// The inner status and body of one echo request spending `token`.
async fn spend(client: &Client, token: &str) -> (u16, Vec<u8>) {
    let request = InnerRequest::new("POST", "cloister.invalid", "/echo")
        .body("hello")
        .private_token(token);
    let response = client.send(&request).await.expect("round trip");
    let status = response
        .control()
        .status()
        .map_or(0, bhttp::StatusCode::code);
    (status, response.content().to_vec())
}

async fn redis_store(server: &RedisServer) -> StateStore {
    let config = StateConfig::Redis {
        url: server.url(),
        prefix: "cloister-gateway:".into(),
    };
    StateStore::open(&config).await.expect("connect to redis")
}

#[tokio::test]
async fn a_token_spent_at_one_replica_is_refused_at_another() {
    let redis = RedisServer::start(&[]);
    let issuer = Issuer::start(10).await;
    let trust = Trust::of(&issuer).await;
    // Each replica connects on its own, as separate processes would.
    let (first, at_first) = replica(&redis_store(&redis).await, &trust).await;
    let (second, at_second) = replica(&redis_store(&redis).await, &trust).await;
    let wallet = tempfile::tempdir().expect("wallet dir");
    let [token, other] =
        <[String; 2]>::try_from(tokens(&issuer, wallet.path(), 2).await).expect("two tokens");

    assert_eq!(spend(&at_first, &token).await.0, 200, "first spend");
    assert_eq!(
        spend(&at_second, &token).await.0,
        401,
        "the token spent at the first replica is refused at the second"
    );
    assert_eq!(spend(&at_first, &token).await.0, 401);
    assert_eq!(
        spend(&at_second, &other).await.0,
        200,
        "a fresh token is served"
    );
    assert_eq!(first.metrics.rejections(Rejection::TokenDoubleSpent), 1);
    assert_eq!(second.metrics.rejections(Rejection::TokenDoubleSpent), 1);
}

/// Starts a replica on `config` in a runtime of its own, spends `token`
/// there, and stops it: the runtime's end drops the gateway and its store,
/// as a process exit would.
fn run_replica_once(config: &StateConfig, trust: &Trust, token: &str) -> u16 {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(async {
        let store = StateStore::open(config)
            .await
            .expect("open the state store");
        let (_stack, client) = replica(&store, trust).await;
        spend(&client, token).await.0
    });
    drop(runtime);
    status
}

#[test]
fn spent_tokens_survive_a_gateway_restart() {
    let issuer_runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (issuer, trust, tokens) = issuer_runtime.block_on(async {
        let issuer = Issuer::start(10).await;
        let trust = Trust::of(&issuer).await;
        let wallet = tempfile::tempdir().expect("wallet dir");
        let tokens = tokens(&issuer, wallet.path(), 2).await;
        (issuer, trust, tokens)
    });
    let dir = tempfile::tempdir().expect("state dir");
    let redis = RedisServer::start(&[]);
    let backends = [
        StateConfig::redb(dir.path().join("gateway-state.redb")),
        StateConfig::Redis {
            url: redis.url(),
            prefix: "cloister-gateway:".into(),
        },
    ];
    for (config, token) in backends.iter().zip(&tokens) {
        assert_eq!(run_replica_once(config, &trust, token), 200, "{config}");
        assert_eq!(
            run_replica_once(config, &trust, token),
            401,
            "{config}: the restarted gateway refuses the token spent before"
        );
    }
    drop(issuer);
}

#[tokio::test]
async fn requests_fail_closed_when_the_token_store_is_down() {
    let mut redis = RedisServer::start(&[]);
    let issuer = Issuer::start(10).await;
    let trust = Trust::of(&issuer).await;
    let (stack, client) = replica(&redis_store(&redis).await, &trust).await;
    let wallet = tempfile::tempdir().expect("wallet dir");
    let [spent, fresh] =
        <[String; 2]>::try_from(tokens(&issuer, wallet.path(), 2).await).expect("two tokens");
    assert_eq!(spend(&client, &spent).await.0, 200);

    redis.kill();
    for token in [&fresh, &spent] {
        let (status, body) = spend(&client, token).await;
        assert_eq!(status, 503, "refused while the store is down");
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem json");
        assert_eq!(problem["title"], "token store unavailable", "{problem}");
    }
    assert_eq!(stack.metrics.rejections(Rejection::StateStore), 2);
    assert_eq!(
        stack.metrics.routed_requests(),
        1,
        "no request passed without its spend recorded"
    );
}

/// An issuer whose per-account counters are kept in `store`.
async fn issuer_on(store: &StateStore, tokens_per_window: u32) -> Issuer {
    let limiter = RateLimiter::new(store, tokens_per_window, 3_600);
    Issuer::start_with(tokens_per_window, move |mut state| {
        state.limiter = limiter;
        state
    })
    .await
}

#[tokio::test]
async fn issuer_replicas_share_each_accounts_allowance() {
    let redis = RedisServer::start(&[]);
    let first = issuer_on(&redis_store(&redis).await, 3).await;
    let second = issuer_on(&redis_store(&redis).await, 3).await;
    let wallet = tempfile::tempdir().expect("wallet dir");
    assert_eq!(tokens(&first, wallet.path(), 2).await.len(), 2);
    // The same account id at the other replica has one token left this window.
    let error = fetch(&second, wallet.path(), 2)
        .await
        .1
        .expect_err("the allowance is shared");
    assert_eq!(error.stored, 1);
    assert!(
        matches!(error.cause, IssuanceError::RateLimited { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn token_requests_fail_closed_when_the_issuers_store_is_down() {
    let mut redis = RedisServer::start(&[]);
    let issuer = issuer_on(&redis_store(&redis).await, 10).await;
    redis.kill();
    let wallet = tempfile::tempdir().expect("wallet dir");
    let error = fetch(&issuer, wallet.path(), 1)
        .await
        .1
        .expect_err("refused while the store is down");
    assert_eq!(error.stored, 0);
    assert!(
        matches!(&error.cause, IssuanceError::Status { status: 503, message } if message.contains("issuance limits unavailable")),
        "{error}"
    );
    let metrics = reqwest::get(format!("{}/metrics", issuer.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("cloister_issuer_errors_total{kind=\"state_store\"} 1\n"),
        "{metrics}"
    );
}
