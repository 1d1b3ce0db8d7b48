//! HTTP endpoints: the issuer directory, token issuance, `/healthz` and
//! aggregate `/metrics`. Handlers never log request bodies or headers:
//! token requests and responses are token material.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloister_privacypass::account::{
    ACCOUNT_HEADER, AccountAuth, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use cloister_privacypass::directory::{
    DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, TOKEN_REQUEST_MEDIA_TYPE, TOKEN_RESPONSE_MEDIA_TYPE,
};
use cloister_privacypass::{IssuerDirectory, TokenRequest, issue};

use crate::accounts::Accounts;
use crate::config::Config;
use crate::keyring::KeyRing;
use crate::rate_limit::RateLimiter;

/// Path clients POST token requests to.
pub const TOKEN_REQUEST_PATH: &str = "/token-request";

/// A source of Unix time in seconds; tests substitute a fixed clock.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Aggregate counters; no per-account or per-token values.
#[derive(Debug, Default)]
pub struct Metrics {
    issued: AtomicU64,
    rejected_auth: AtomicU64,
    rejected_rate_limit: AtomicU64,
    rejected_malformed: AtomicU64,
    failed_signing: AtomicU64,
}

impl Metrics {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, active_keys: usize) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# TYPE cloister_issuer_tokens_issued_total counter\n\
             cloister_issuer_tokens_issued_total {}\n\
             # TYPE cloister_issuer_requests_rejected_total counter\n\
             cloister_issuer_requests_rejected_total{{reason=\"auth\"}} {}\n\
             cloister_issuer_requests_rejected_total{{reason=\"rate_limit\"}} {}\n\
             cloister_issuer_requests_rejected_total{{reason=\"malformed\"}} {}\n\
             cloister_issuer_requests_rejected_total{{reason=\"signing\"}} {}\n\
             # TYPE cloister_issuer_published_keys gauge\n\
             cloister_issuer_published_keys {}\n",
            get(&self.issued),
            get(&self.rejected_auth),
            get(&self.rejected_rate_limit),
            get(&self.rejected_malformed),
            get(&self.failed_signing),
            active_keys,
        )
    }
}

/// Everything the handlers share.
pub struct IssuerState {
    /// The configuration in force.
    pub config: Config,
    /// Registered accounts.
    pub accounts: Accounts,
    /// Issuer keys (rotated by [`rotate_keys`]).
    pub keys: RwLock<KeyRing>,
    /// Per-account issuance limits.
    pub limiter: Mutex<RateLimiter>,
    /// Aggregate counters.
    pub metrics: Metrics,
    /// Time source.
    pub clock: Clock,
}

impl IssuerState {
    /// Assembles the state from its parts.
    pub fn new(config: Config, accounts: Accounts, keys: KeyRing, clock: Clock) -> Self {
        let limiter = RateLimiter::new(
            config.rate_limit.tokens_per_window,
            config.rate_limit.window_secs,
        );
        Self {
            config,
            accounts,
            keys: RwLock::new(keys),
            limiter: Mutex::new(limiter),
            metrics: Metrics::default(),
            clock,
        }
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Rotates the key ring at the current time (called periodically by the binary).
pub fn rotate_keys(state: &IssuerState) -> Result<bool, crate::keyring::KeyRingError> {
    let now = (state.clock)();
    state
        .keys
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .rotate(now)
}

/// The issuer's HTTP routes.
pub fn router(state: Arc<IssuerState>) -> Router {
    Router::new()
        .route(DIRECTORY_PATH, get(directory))
        .route(TOKEN_REQUEST_PATH, post(token_request))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        // A TokenRequest is 259 bytes; refuse anything much larger unread.
        .layer(DefaultBodyLimit::max(1024))
        .with_state(state)
}

async fn directory(State(state): State<Arc<IssuerState>>) -> Response {
    let document = IssuerDirectory::new(&state.config.request_uri, &state.ring().published());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(DIRECTORY_MEDIA_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        document.to_json(),
    )
        .into_response()
}

async fn metrics(State(state): State<Arc<IssuerState>>) -> Response {
    let published = state.ring().published().len();
    state.metrics.render(published).into_response()
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refuse(status: StatusCode, reason: &'static str) -> Response {
    (status, format!("{reason}\n")).into_response()
}

async fn token_request(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = (state.clock)();
    let metrics = &state.metrics;
    if header_str(&headers, header::CONTENT_TYPE.as_str()) != Some(TOKEN_REQUEST_MEDIA_TYPE) {
        Metrics::bump(&metrics.rejected_malformed);
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/private-token-request",
        );
    }

    // 1. Who is asking: a registered account, signing this very body.
    let auth = match AccountAuth::from_header_values(
        header_str(&headers, ACCOUNT_HEADER),
        header_str(&headers, TIMESTAMP_HEADER),
        header_str(&headers, SIGNATURE_HEADER),
    ) {
        Ok(auth) => auth,
        Err(_) => {
            Metrics::bump(&metrics.rejected_auth);
            return refuse(StatusCode::UNAUTHORIZED, "account authentication required");
        }
    };
    let verified = state.accounts.key(&auth.account).is_some_and(|key| {
        auth.verify(key, &body, now, state.config.max_clock_skew_secs)
            .is_ok()
    });
    if !verified {
        Metrics::bump(&metrics.rejected_auth);
        tracing::debug!("token request with failed account authentication");
        return refuse(StatusCode::UNAUTHORIZED, "account authentication failed");
    }

    // 2. Is the request well formed and for a live key? (Checked before the
    //    rate limit so a bad request costs the client nothing.)
    let signing_keys = state.ring().signing_keys(now);
    let request = match TokenRequest::decode(&body) {
        Ok(request)
            if signing_keys
                .iter()
                .any(|k| k.public_key().truncated_key_id() == request.truncated_token_key_id) =>
        {
            request
        }
        _ => {
            Metrics::bump(&metrics.rejected_malformed);
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not a token request for a current key",
            );
        }
    };

    // 3. How many has this account had in this window?
    let taken = state
        .limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(&auth.account, now);
    if let Err(retry_after) = taken {
        Metrics::bump(&metrics.rejected_rate_limit);
        tracing::debug!(account = %auth.account, "issuance rate limit reached");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            "issuance rate limit reached\n",
        )
            .into_response();
    }

    // 4. Sign, off the async threads (an RSA-2048 private-key operation).
    let signed = tokio::task::spawn_blocking(move || issue(&signing_keys, &request)).await;
    match signed {
        Ok(Ok(response)) => {
            Metrics::bump(&metrics.issued);
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(TOKEN_RESPONSE_MEDIA_TYPE),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                response.encode(),
            )
                .into_response()
        }
        _ => {
            state
                .limiter
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .refund(&auth.account);
            Metrics::bump(&metrics.failed_signing);
            refuse(StatusCode::UNPROCESSABLE_ENTITY, "blinded message rejected")
        }
    }
}
