//! HTTP endpoints: the issuer directory, token issuance, `/healthz` and
//! aggregate `/metrics`. Handlers never log request bodies or headers:
//! token requests and responses are token material.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{KeyWindow, Subject};
use cloister_ledger_verify::publish::{KeyPublisher, PublishError};
use cloister_metrics::{Counter, ErrorKind, Gauge, ServerMetrics};
use cloister_privacypass::account::{
    ACCOUNT_HEADER, AccountAuth, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use cloister_privacypass::directory::{
    DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, PublishedKey, TOKEN_REQUEST_MEDIA_TYPE,
    TOKEN_RESPONSE_MEDIA_TYPE,
};
use cloister_privacypass::{IssuerDirectory, TokenRequest, issue};
use cloister_state_store::StateStore;

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
    Arc::new(cloister_wire::unix_now)
}

/// Why a token request was refused: the `kind` label of
/// `cloister_issuer_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No account signature, or one that does not verify.
    Auth,
    /// The account had its tokens for this window.
    RateLimit,
    /// Wrong media type, or not a token request for a current key.
    Malformed,
    /// The blinded message could not be signed.
    Signing,
    /// The state store holding the rate-limit counters could not answer.
    StateStore,
}

impl ErrorKind for Refusal {
    const ALL: &'static [Self] = &[
        Self::Auth,
        Self::RateLimit,
        Self::Malformed,
        Self::Signing,
        Self::StateStore,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::RateLimit => "rate_limit",
            Self::Malformed => "malformed",
            Self::Signing => "signing",
            Self::StateStore => "state_store",
        }
    }
}

/// The issuer's metrics: requests, [`Refusal`]s and latency per route,
/// tokens issued and keys published; no per-account or per-token values.
#[derive(Debug)]
pub struct Metrics {
    server: Arc<ServerMetrics<Refusal>>,
    issued: Counter,
    published_keys: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut server = ServerMetrics::new("cloister_issuer");
        let issued = server.counter("tokens_issued", "Tokens issued.");
        let published_keys = server.gauge("published_keys", "Issuer keys in the directory.");
        Self {
            server: Arc::new(server),
            issued,
            published_keys,
        }
    }
}

impl Metrics {
    fn refuse(&self, refusal: Refusal, status: StatusCode, reason: &'static str) -> Response {
        self.server.error(refusal);
        (status, format!("{reason}\n")).into_response()
    }

    fn set_published(&self, ring: &KeyRing) {
        self.published_keys
            .set(i64::try_from(ring.published().len()).unwrap_or(i64::MAX));
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
    pub limiter: RateLimiter,
    /// Aggregate counters.
    pub metrics: Metrics,
    /// Time source.
    pub clock: Clock,
    /// With a ledger: the `token_key_id`s it holds, the only keys published.
    logged: RwLock<Option<BTreeSet<[u8; 32]>>>,
}

impl IssuerState {
    /// Assembles the state from its parts; the rate-limit counters are kept in `store`.
    pub fn new(
        config: Config,
        accounts: Accounts,
        keys: KeyRing,
        clock: Clock,
        store: &StateStore,
    ) -> Self {
        let limiter = RateLimiter::new(
            store,
            config.rate_limit.tokens_per_window,
            config.rate_limit.window_secs,
        );
        let metrics = Metrics::default();
        metrics.set_published(&keys);
        Self {
            config,
            accounts,
            keys: RwLock::new(keys),
            limiter,
            metrics,
            clock,
            logged: RwLock::new(None),
        }
    }

    /// Publishes only keys [`publish_keys`] has logged in the ledger, from
    /// now on: a client that trusts the ledger would refuse any other.
    #[must_use]
    pub fn publishing_only_logged_keys(self) -> Self {
        *self.logged.write().unwrap_or_else(PoisonError::into_inner) = Some(BTreeSet::new());
        self
    }

    /// The keys the directory lists: every live key, or with a ledger, the logged ones.
    fn published(&self) -> Vec<PublishedKey> {
        let keys = self.ring().published();
        match &*self.logged.read().unwrap_or_else(PoisonError::into_inner) {
            None => keys,
            Some(logged) => keys
                .into_iter()
                .filter(|published| logged.contains(published.key.key_id()))
                .collect(),
        }
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Rotates the key ring at the current time (called periodically by the binary).
pub fn rotate_keys(state: &IssuerState) -> Result<bool, crate::keyring::KeyRingError> {
    let now = (state.clock)();
    let mut ring = state.keys.write().unwrap_or_else(PoisonError::into_inner);
    let rotated = ring.rotate(now);
    state.metrics.set_published(&ring);
    rotated
}

/// Logs every live key (with its window, from its not-before for the key
/// lifetime) that the ledger does not hold yet, and marks it publishable.
/// Returns how many keys were logged just now.
///
/// # Errors
/// The first key the ledger could not take; keys before it stay published.
pub async fn publish_keys(
    state: &IssuerState,
    publisher: &KeyPublisher,
) -> Result<usize, PublishError> {
    let (keys, lifetime) = {
        let ring = state.ring();
        (ring.published(), ring.lifetime())
    };
    let mut appended = 0;
    for published in keys {
        let Some(not_before) = published.not_before else {
            continue;
        };
        let token_key_id = *published.key.key_id();
        let subject = Subject::IssuerKey {
            token_key_id: HexBytes(token_key_id),
            window: KeyWindow {
                not_before,
                not_after: not_before.saturating_add(lifetime),
            },
        };
        appended += usize::from(publisher.ensure_logged(subject).await?);
        if let Some(logged) = &mut *state.logged.write().unwrap_or_else(PoisonError::into_inner) {
            logged.insert(token_key_id);
        }
    }
    Ok(appended)
}

/// The issuer's HTTP routes, `/metrics` included.
pub fn router(state: Arc<IssuerState>) -> Router {
    let metrics = Arc::clone(&state.metrics.server);
    metrics.instrument(
        Router::new()
            .route(DIRECTORY_PATH, get(directory))
            .route(TOKEN_REQUEST_PATH, post(token_request))
            .route("/healthz", get(|| async { "ok\n" }))
            // A TokenRequest is 259 bytes; refuse anything much larger unread.
            .layer(DefaultBodyLimit::max(1024))
            .with_state(state),
    )
}

async fn directory(State(state): State<Arc<IssuerState>>) -> Response {
    let document = IssuerDirectory::new(&state.config.request_uri, &state.published());
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

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn token_request(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = (state.clock)();
    let metrics = &state.metrics;
    if header_str(&headers, header::CONTENT_TYPE.as_str()) != Some(TOKEN_REQUEST_MEDIA_TYPE) {
        return metrics.refuse(
            Refusal::Malformed,
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
            return metrics.refuse(
                Refusal::Auth,
                StatusCode::UNAUTHORIZED,
                "account authentication required",
            );
        }
    };
    let verified = state.accounts.key(&auth.account).is_some_and(|key| {
        auth.verify(key, &body, now, state.config.max_clock_skew_secs)
            .is_ok()
    });
    if !verified {
        tracing::debug!("token request with failed account authentication");
        return metrics.refuse(
            Refusal::Auth,
            StatusCode::UNAUTHORIZED,
            "account authentication failed",
        );
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
            return metrics.refuse(
                Refusal::Malformed,
                StatusCode::UNPROCESSABLE_ENTITY,
                "not a token request for a current key",
            );
        }
    };

    // 3. How many has this account had in this window?
    let taken = match state.limiter.take(&auth.account, now).await {
        Ok(taken) => taken,
        Err(error) => {
            // Fail closed: without the counters no limit can be applied.
            tracing::error!(%error, "rate-limit store unavailable; token request refused");
            return metrics.refuse(
                Refusal::StateStore,
                StatusCode::SERVICE_UNAVAILABLE,
                "issuance limits unavailable",
            );
        }
    };
    if let Err(retry_after) = taken {
        metrics.server.error(Refusal::RateLimit);
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
            metrics.issued.inc();
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
            if let Err(error) = state.limiter.refund(&auth.account, now).await {
                tracing::warn!(%error, "could not refund a token of a failed issuance");
            }
            metrics.refuse(
                Refusal::Signing,
                StatusCode::UNPROCESSABLE_ENTITY,
                "blinded message rejected",
            )
        }
    }
}
