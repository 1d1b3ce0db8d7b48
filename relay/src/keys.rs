//! The gateway's key configuration, served to clients by the relay from its
//! own copy (RFC 9540 `GET /.well-known/ohttp-gateway`, DESIGN.md phase 2).
//!
//! A client that fetched the key list from the gateway would hand the
//! gateway its address just before its first request. Here the relay
//! fetches the list on its own schedule (when the copy's `max-age` runs
//! out, and at least every `key_refresh_secs`), never because a client
//! asked, and answers clients from the copy: the gateway sees only the
//! relay's fetches, at times no client chose. Clients still check the
//! configuration against the transparency ledger: the relay is not trusted
//! with it, only used so that it reaches them without naming them.

use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloister_metrics::Counter;
use cloister_wire::media;
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::Instant;

/// Used when the gateway's answer names no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// Wait after a failed fetch before the next one.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Largest key list accepted from the gateway.
const MAX_KEY_LIST: usize = 64 * 1024;

/// Why the relay could not refresh its copy of the key list.
#[derive(Debug, Error)]
pub enum KeyFetchError {
    /// The gateway could not be reached or its answer not read.
    #[error("fetching the key list: {0}")]
    Transport(#[from] reqwest::Error),
    /// The gateway answered with something other than a key list.
    #[error("the key endpoint answered {status} with {media_type:?}")]
    NotAKeyList {
        /// HTTP status.
        status: u16,
        /// Its content type.
        media_type: Option<String>,
    },
    /// The key list is larger than any gateway publishes.
    #[error("key list larger than {MAX_KEY_LIST} bytes")]
    TooLarge,
}

/// One fetched key list.
struct Copy {
    body: Bytes,
    etag: Option<HeaderValue>,
    expires: Instant,
}

/// The relay's copy of the gateway's key list.
pub struct KeyCache {
    http: reqwest::Client,
    upstream: String,
    longest_interval: Duration,
    copy: RwLock<Option<Copy>>,
    loaded: watch::Sender<bool>,
    served: Counter,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("upstream", &self.upstream)
            .field("longest_interval", &self.longest_interval)
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    pub(crate) fn new(
        http: reqwest::Client,
        upstream: String,
        longest_interval: Duration,
        served: Counter,
    ) -> Self {
        Self {
            http,
            upstream,
            longest_interval,
            copy: RwLock::new(None),
            loaded: watch::Sender::new(false),
            served,
        }
    }

    /// Fetch the key list from the gateway now and keep it. The relay does
    /// this on its own schedule; tests call it to stand for that schedule.
    ///
    /// # Errors
    /// The gateway could not be reached or did not answer with a key list;
    /// the copy held so far is kept.
    pub async fn refresh(&self) -> Result<Duration, KeyFetchError> {
        let answer = self
            .http
            .get(&self.upstream)
            .header(header::ACCEPT, media::OHTTP_KEYS)
            .send()
            .await?;
        let status = answer.status().as_u16();
        let media_type = answer
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status != 200 || media_type.as_deref() != Some(media::OHTTP_KEYS) {
            return Err(KeyFetchError::NotAKeyList { status, media_type });
        }
        let max_age = answer
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(cloister_wire::max_age)
            .map_or(DEFAULT_MAX_AGE, Duration::from_secs);
        let etag = answer.headers().get(header::ETAG).cloned();
        let body = answer.bytes().await?;
        if body.len() > MAX_KEY_LIST {
            return Err(KeyFetchError::TooLarge);
        }
        *self.copy.write().unwrap_or_else(PoisonError::into_inner) = Some(Copy {
            body,
            etag,
            expires: Instant::now() + max_age,
        });
        self.loaded.send_replace(true);
        Ok(max_age
            .min(self.longest_interval)
            .max(Duration::from_secs(1)))
    }

    /// Returns once the relay holds a key list.
    pub async fn loaded(&self) {
        let mut loaded = self.loaded.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = loaded.wait_for(|loaded| *loaded).await;
    }

    /// Whether the relay holds a key list yet.
    #[must_use]
    pub fn is_loaded(&self) -> bool {
        *self.loaded.borrow()
    }

    /// Key lists served to clients so far.
    #[must_use]
    pub fn served(&self) -> u64 {
        self.served.get()
    }
}

/// Keeps `cache` fresh until the relay that holds it is dropped.
pub(crate) fn spawn_refresher(cache: Weak<KeyCache>) {
    tokio::spawn(async move {
        loop {
            let Some(keys) = cache.upgrade() else {
                return;
            };
            let wait = match keys.refresh().await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, upstream = %keys.upstream, "key list refresh failed; serving the last copy");
                    RETRY_AFTER.min(keys.longest_interval)
                }
            };
            drop(keys);
            tokio::time::sleep(wait).await;
        }
    });
}

/// `GET /.well-known/ohttp-gateway`: the copy, with the `max-age` it has
/// left; 503 until the relay holds one.
pub(crate) async fn serve_keys(State(cache): State<Arc<KeyCache>>) -> Response {
    let copy = cache.copy.read().unwrap_or_else(PoisonError::into_inner);
    let Some(copy) = copy.as_ref() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    cache.served.inc();
    let left = copy.expires.saturating_duration_since(Instant::now());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media::OHTTP_KEYS),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={}", left.as_secs())) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    if let Some(etag) = &copy.etag {
        headers.insert(header::ETAG, etag.clone());
    }
    (headers, copy.body.clone()).into_response()
}

/// `/healthz`: ready only once the relay holds the gateway's key list, so
/// that a load balancer sends no client to a relay that cannot serve keys.
pub(crate) async fn health(State(keys): State<Arc<KeyCache>>) -> (StatusCode, &'static str) {
    if keys.is_loaded() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no key configuration from the gateway yet\n",
        )
    }
}
