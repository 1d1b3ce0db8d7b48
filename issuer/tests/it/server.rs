//! The issuer's HTTP surface end to end (in process, no sockets): the
//! directory, authenticated issuance producing redeemable tokens, refusal of
//! unauthenticated and malformed requests, the per-account rate limit, and
//! aggregate metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use cloister_issuer::accounts::Accounts;
use cloister_issuer::config::{Config, RateLimitConfig};
use cloister_issuer::keyring::KeyRing;
use cloister_issuer::server::{IssuerState, TOKEN_REQUEST_PATH, router};
use cloister_privacypass::account::{
    ACCOUNT_HEADER, AccountAuth, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use cloister_privacypass::directory::{DIRECTORY_PATH, TOKEN_REQUEST_MEDIA_TYPE};
use cloister_privacypass::header::format_authorization;
use cloister_privacypass::{
    IssuerDirectory, IssuerPublicKey, Redeemer, TokenChallenge, TokenResponse, TrustedKey,
    request_token,
};
use ed25519_dalek::SigningKey;
use tower::ServiceExt as _;

const START: u64 = 1_700_000_000;

struct Harness {
    state: Arc<IssuerState>,
    clock: Arc<AtomicU64>,
    alice: SigningKey,
    _keys: tempfile::TempDir,
}

fn harness(tokens_per_window: u32) -> Harness {
    let alice = SigningKey::from_bytes(&[1; 32]);
    let accounts = Accounts::from_toml(&format!(
        "[[account]]\nid = \"alice\"\npublic_key = \"{}\"\n",
        hex::encode(alice.verifying_key().as_bytes())
    ))
    .expect("accounts");
    let keys = tempfile::tempdir().expect("tempdir");
    let config = Config {
        rate_limit: RateLimitConfig {
            tokens_per_window,
            window_secs: 3600,
        },
        ..Config::default()
    };
    let ring = KeyRing::open(keys.path(), config.keys.lifetime_secs, START).expect("key ring");
    let clock = Arc::new(AtomicU64::new(START));
    let now = Arc::clone(&clock);
    let state = Arc::new(IssuerState::new(
        config,
        accounts,
        ring,
        Arc::new(move || now.load(Ordering::SeqCst)),
        &cloister_state_store::StateStore::in_memory().expect("store"),
    ));
    Harness {
        state,
        clock,
        alice,
        _keys: keys,
    }
}

impl Harness {
    async fn get(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = router(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        (
            status,
            to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body")
                .to_vec(),
        )
    }

    async fn post(
        &self,
        body: Vec<u8>,
        auth: Option<AccountAuth>,
        content_type: &str,
    ) -> (StatusCode, Vec<u8>) {
        let mut request =
            Request::post(TOKEN_REQUEST_PATH).header(header::CONTENT_TYPE, content_type);
        if let Some(auth) = auth {
            let [account, timestamp, signature] = auth.header_values();
            request = request
                .header(ACCOUNT_HEADER, account)
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, signature);
        }
        let response = router(Arc::clone(&self.state))
            .oneshot(request.body(Body::from(body)).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        (
            status,
            to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body")
                .to_vec(),
        )
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    async fn current_key(&self) -> IssuerPublicKey {
        let (status, body) = self.get(DIRECTORY_PATH).await;
        assert_eq!(status, StatusCode::OK);
        IssuerDirectory::from_json(&body)
            .expect("directory")
            .current_key(self.now())
            .expect("keys")
            .expect("a key")
    }

    /// Asks for one token as alice; returns the status and, on success, the
    /// `Authorization` header value for the finished token.
    async fn obtain(&self, challenge: &TokenChallenge) -> (StatusCode, Option<String>) {
        let key = self.current_key().await;
        let (request, pending) = request_token(&key, challenge).expect("blind");
        let body = request.encode();
        let auth = AccountAuth::sign("alice", &self.alice, self.now(), &body).expect("sign");
        let (status, response) = self.post(body, Some(auth), TOKEN_REQUEST_MEDIA_TYPE).await;
        if status != StatusCode::OK {
            return (status, None);
        }
        let response = TokenResponse::decode(&response).expect("token response");
        let token = pending.finalize(&response).expect("finalize");
        (status, Some(format_authorization(&token)))
    }
}

fn challenge() -> TokenChallenge {
    TokenChallenge::new(
        "issuer.cloister.localhost",
        None,
        &["gateway.cloister.localhost"],
    )
    .expect("challenge")
}

#[tokio::test]
async fn issued_token_redeems_at_a_gateway_once() {
    let h = harness(10);
    let (status, header) = h.obtain(&challenge()).await;
    assert_eq!(status, StatusCode::OK);
    let header = header.expect("token");
    let key = h.current_key().await;
    let trusted = TrustedKey {
        key,
        not_before: START,
        not_after: START + 3600,
    };
    let spent = cloister_state_store::StateStore::in_memory()
        .expect("store")
        .once_set("spent", 100);
    let redeemer = Redeemer::new(vec![trusted], &[challenge()], spent);
    assert!(redeemer.redeem_at(&header, START + 1).await.is_ok());
    assert!(redeemer.redeem_at(&header, START + 1).await.is_err());
}

#[tokio::test]
async fn requests_without_valid_account_signature_are_refused() {
    let h = harness(10);
    let key = h.current_key().await;
    let (request, _) = request_token(&key, &challenge()).expect("blind");
    let body = request.encode();

    let (status, _) = h.post(body.clone(), None, TOKEN_REQUEST_MEDIA_TYPE).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no signature");

    let mallory = SigningKey::from_bytes(&[2; 32]);
    let forged = AccountAuth::sign("alice", &mallory, h.now(), &body).expect("sign");
    assert_eq!(
        h.post(body.clone(), Some(forged), TOKEN_REQUEST_MEDIA_TYPE)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let unknown = AccountAuth::sign("mallory", &mallory, h.now(), &body).expect("sign");
    assert_eq!(
        h.post(body.clone(), Some(unknown), TOKEN_REQUEST_MEDIA_TYPE)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let stale = AccountAuth::sign("alice", &h.alice, h.now() - 3600, &body).expect("sign");
    assert_eq!(
        h.post(body.clone(), Some(stale), TOKEN_REQUEST_MEDIA_TYPE)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let other_body = AccountAuth::sign("alice", &h.alice, h.now(), b"another body").expect("sign");
    assert_eq!(
        h.post(body, Some(other_body), TOKEN_REQUEST_MEDIA_TYPE)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn malformed_requests_are_refused_without_using_the_allowance() {
    let h = harness(1);
    let garbage = vec![0u8; 17];
    let auth = AccountAuth::sign("alice", &h.alice, h.now(), &garbage).expect("sign");
    assert_eq!(
        h.post(garbage, Some(auth), TOKEN_REQUEST_MEDIA_TYPE)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let key = h.current_key().await;
    let (mut request, _) = request_token(&key, &challenge()).expect("blind");
    request.truncated_token_key_id ^= 0xff;
    let body = request.encode();
    let auth = AccountAuth::sign("alice", &h.alice, h.now(), &body).expect("sign");
    assert_eq!(
        h.post(body.clone(), Some(auth.clone()), TOKEN_REQUEST_MEDIA_TYPE)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        h.post(body, Some(auth), "text/plain").await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    // The single allowed token is still available.
    assert_eq!(h.obtain(&challenge()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_is_enforced_per_window() {
    let h = harness(2);
    assert_eq!(h.obtain(&challenge()).await.0, StatusCode::OK);
    assert_eq!(h.obtain(&challenge()).await.0, StatusCode::OK);
    assert_eq!(
        h.obtain(&challenge()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    h.clock.fetch_add(3600, Ordering::SeqCst);
    assert_eq!(
        h.obtain(&challenge()).await.0,
        StatusCode::OK,
        "next window"
    );

    let (status, metrics) = h.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(metrics).expect("utf8");
    for line in [
        "cloister_issuer_tokens_issued_total 3",
        "cloister_issuer_errors_total{kind=\"rate_limit\"} 1",
        "cloister_issuer_errors_total{kind=\"auth\"} 0",
        "cloister_issuer_published_keys 1",
        // Four issuances, each after a directory fetch.
        "cloister_issuer_requests_total{route=\"/token-request\",status=\"2xx\"} 3",
        "cloister_issuer_requests_total{route=\"/token-request\",status=\"4xx\"} 1",
        "cloister_issuer_request_duration_seconds_count{route=\"/token-request\"} 4",
        "cloister_issuer_requests_total{route=\"/.well-known/private-token-issuer-directory\",status=\"2xx\"} 4",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
    assert_eq!(h.get("/healthz").await.0, StatusCode::OK);
}
