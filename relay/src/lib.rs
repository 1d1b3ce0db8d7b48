//! Cloister's Oblivious HTTP relay (RFC 9458 §6.2), a third party.
//!
//! The relay is what keeps the gateway from learning who sends a request: it
//! accepts `message/ohttp-req` POSTs from clients and forwards the bytes to
//! the one gateway it is configured for, in a request it builds afresh. No
//! inbound header is copied, so no client address, `Forwarded`/`Via`/
//! `X-Forwarded-For`, cookie, user agent or credential reaches the gateway.
//! It holds no keys and cannot read the requests: it only enforces a body
//! size limit and a time limit, and hands the gateway's answer back
//! unchanged (status, content type and body). A party other than the
//! gateway's operator runs it.
//!
//! It also serves the gateway's key configuration to clients
//! (`GET /.well-known/ohttp-gateway`) from a copy it refreshes on its own
//! schedule ([`KeyCache`]), so that fetching keys does not hand the client's
//! address to the gateway either.
//!
//! # Main types
//!
//! * [`RelayConfig`]: the TOML configuration (`relay.example.toml`), with
//!   defaults that work on loopback.
//! * [`app`]: the routes (`POST {path}`, the key configuration,
//!   `/healthz`, `/metrics`); [`serve`] runs them on a listener;
//!   [`app_with_keys`] also returns the [`KeyCache`].
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A stand-in gateway that answers with the names of the headers it
//! received: what the client put in its own headers never arrives.
//!
//! ```rust
//! use axum::http::HeaderMap;
//! use cloister_relay::RelayConfig;
//! use cloister_wire::media::OHTTP_REQUEST;
//! use tokio::net::TcpListener;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = axum::Router::new().route(
//!     "/gateway",
//!     axum::routing::post(|headers: HeaderMap| async move {
//!         headers.keys().map(|name| format!("{name} ")).collect::<String>()
//!     }),
//! );
//! let gateway_listener = TcpListener::bind("127.0.0.1:0").await?;
//! let gateway_url = format!("http://{}/gateway", gateway_listener.local_addr()?);
//! tokio::spawn(async move { axum::serve(gateway_listener, gateway).await });
//!
//! let relay_listener = TcpListener::bind("127.0.0.1:0").await?;
//! let relay_url = format!("http://{}/relay", relay_listener.local_addr()?);
//! tokio::spawn(cloister_relay::serve(relay_listener, RelayConfig { gateway_url, ..RelayConfig::default() }));
//!
//! let answer = reqwest::Client::new()
//!     .post(relay_url)
//!     .header("content-type", OHTTP_REQUEST)
//!     .header("x-forwarded-for", "192.0.2.7")
//!     .header("cookie", "session=alice")
//!     .body(vec![0u8; 64])
//!     .send()
//!     .await?;
//! let seen = answer.text().await?;
//! assert!(seen.contains("content-type"));
//! assert!(!seen.contains("x-forwarded-for") && !seen.contains("cookie"), "{seen}");
//! # Ok(())
//! # }
//! ```

mod keys;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloister_metrics::{Counter, ErrorKind, Histogram, ServerMetrics};
use cloister_tls::{Listener, PlainHttp, TlsError, TlsSettings, check_url};
use cloister_wire::{OHTTP_KEYS_PATH, media};
use serde::Deserialize;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::time::Instant;

pub use keys::{KeyCache, KeyFetchError};

/// Media types of gateway answers passed back to the client; anything else
/// is passed back without a content type.
const PASSED_MEDIA_TYPES: [&str; 2] = [media::OHTTP_RESPONSE, media::PROBLEM_JSON];

/// The relay's TOML configuration; see `relay.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Path that accepts encapsulated requests.
    pub path: String,
    /// The gateway's OHTTP endpoint: the only place requests go.
    pub gateway_url: String,
    /// Where the relay fetches the gateway's key configuration, which it
    /// serves to clients at `/.well-known/ohttp-gateway`.
    pub key_config_url: String,
    /// The longest the relay serves one copy of the key configuration
    /// before fetching it again, in seconds; it refetches sooner when the
    /// copy's `max-age` runs out.
    pub key_refresh_secs: u64,
    /// The local address the relay's connections to the gateway leave
    /// from; unset: the system's choice.
    pub outbound_address: Option<IpAddr>,
    /// Largest request body accepted, in bytes (larger: 413). The default
    /// fits the largest padded request (a 64 KiB RA-TLS frame) with its TLS,
    /// Binary HTTP, token and OHTTP overhead.
    pub max_request_bytes: usize,
    /// Largest gateway answer passed back, in bytes (larger: 502).
    pub max_response_bytes: usize,
    /// Time for the whole exchange, from the first byte read to the last
    /// byte of the answer, in milliseconds (reading too slowly: 408;
    /// gateway too slow: 504).
    ///
    /// A feature request is one exchange that lasts as long as the plugin's
    /// inference, so the default outlasts the gateway's default router
    /// timeout (itself longer than the largest plugin wall-time budget):
    /// when a host is too slow, the gateway's encapsulated answer reaches
    /// the client instead of this relay's bare 504. Clients wait longer
    /// still.
    pub timeout_ms: u64,
    /// HTTPS: the certificate clients see, and the CA bundle the gateway's
    /// certificate must chain to. Without `cert` and `key` the relay serves
    /// plain HTTP on a loopback address only; without `ca` it reaches only a
    /// loopback gateway, over plain HTTP.
    pub tls: TlsSettings,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7100)),
            path: "/relay".into(),
            gateway_url: "http://127.0.0.1:7200/gateway".into(),
            key_config_url: format!("http://127.0.0.1:7200{OHTTP_KEYS_PATH}"),
            key_refresh_secs: 300,
            outbound_address: None,
            max_request_bytes: 72 * 1024,
            max_response_bytes: 1024 * 1024,
            timeout_ms: 90_000,
            tls: TlsSettings::default(),
        }
    }
}

/// A relay that cannot start.
#[derive(Debug, Error)]
pub enum RelayError {
    /// The outbound HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The `[tls]` files are unusable, or a gateway URL is plain HTTP
    /// beyond loopback.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why the relay did not forward a request or pass back an answer: the
/// `kind` label of `cloister_relay_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayFailure {
    /// The body is not `message/ohttp-req` (415).
    BadMediaType,
    /// The body could not be read or is too large (413 and the like).
    BadBody,
    /// The client sent the body too slowly (408).
    ClientTimeout,
    /// The gateway could not be reached or answered unusably (502).
    UpstreamFailed,
    /// The gateway did not answer in time (504).
    UpstreamTimeout,
}

impl ErrorKind for RelayFailure {
    const ALL: &'static [Self] = &[
        Self::BadMediaType,
        Self::BadBody,
        Self::ClientTimeout,
        Self::UpstreamFailed,
        Self::UpstreamTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::BadMediaType => "bad_media_type",
            Self::BadBody => "bad_body",
            Self::ClientTimeout => "client_timeout",
            Self::UpstreamFailed => "upstream_failed",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }
}

struct Relay {
    config: RelayConfig,
    http: reqwest::Client,
    metrics: Arc<ServerMetrics<RelayFailure>>,
    /// Gateway answers passed back to the client.
    forwarded: Counter,
    /// Sizes of the bodies forwarded each way: a flood or an odd mix of
    /// sizes shows here without any content.
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl Relay {
    fn refuse(&self, failure: RelayFailure, response: impl IntoResponse) -> Response {
        self.metrics.error(failure);
        response.into_response()
    }
}

/// The relay's routes: `POST {path}`, `GET /.well-known/ohttp-gateway`,
/// `/healthz` and `/metrics` (requests, [`RelayFailure`]s and latency, in
/// OpenMetrics text). Must be called inside a Tokio runtime: it starts the
/// task that keeps the key configuration fresh.
///
/// # Errors
/// The outbound HTTP client could not be built.
pub fn app(config: RelayConfig) -> Result<axum::Router, RelayError> {
    app_with_keys(config).map(|(app, _)| app)
}

/// As [`app`], and the relay's [`KeyCache`] (to wait for its first copy, or
/// to have it refresh now).
///
/// # Errors
/// The outbound HTTP client could not be built.
pub fn app_with_keys(config: RelayConfig) -> Result<(axum::Router, Arc<KeyCache>), RelayError> {
    // No default headers, no cookie store, no redirects: the outbound request holds only what we put in it.
    for (what, url) in [
        ("gateway URL", &config.gateway_url),
        ("gateway key configuration URL", &config.key_config_url),
    ] {
        check_url(what, url, PlainHttp::Loopback)?;
    }
    let http = config
        .tls
        .trust()?
        .http_client()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(config.outbound_address)
        .build()?;
    let max = config.max_request_bytes;
    let path = config.path.clone();
    let mut metrics = ServerMetrics::new("cloister_relay");
    let forwarded = metrics.counter("forwarded", "Gateway answers passed back to clients.");
    let served = metrics.counter(
        "key_configs_served",
        "Key configurations served to clients from the relay's copy.",
    );
    let request_bytes = metrics.size_histogram(
        "encapsulated_request",
        "Sizes of the encapsulated request bodies forwarded to the gateway.",
    );
    let response_bytes = metrics.size_histogram(
        "encapsulated_response",
        "Sizes of the gateway's answers passed back.",
    );
    let metrics = Arc::new(metrics);
    let keys = Arc::new(KeyCache::new(
        http.clone(),
        config.key_config_url.clone(),
        Duration::from_secs(config.key_refresh_secs),
        served,
    ));
    keys::spawn_refresher(Arc::downgrade(&keys));
    let relay = Arc::new(Relay {
        config,
        http,
        metrics: Arc::clone(&metrics),
        forwarded,
        request_bytes,
        response_bytes,
    });
    let app = metrics.instrument(
        axum::Router::new()
            .route(&path, post(forward))
            .layer(DefaultBodyLimit::max(max))
            .with_state(relay)
            .route(OHTTP_KEYS_PATH, get(keys::serve_keys))
            .route("/healthz", get(keys::health))
            .with_state(Arc::clone(&keys)),
    );
    Ok((app, keys))
}

/// Serve the relay on `listener` until the listener fails: over HTTPS
/// with `[tls]` `cert` and `key`, else plain HTTP (loopback only).
///
/// # Errors
/// The `[tls]` files or the HTTP client are unusable, plain HTTP beyond
/// loopback, or the listener failed.
pub async fn serve(listener: TcpListener, config: RelayConfig) -> Result<(), std::io::Error> {
    let tls = config.tls.server().map_err(std::io::Error::other)?;
    let listener = Listener::new(listener, tls, "relay").map_err(std::io::Error::other)?;
    let app = app(config).map_err(std::io::Error::other)?;
    axum::serve(listener, app).await
}

async fn forward(State(relay): State<Arc<Relay>>, request: Request) -> Response {
    let deadline = Instant::now() + Duration::from_millis(relay.config.timeout_ms);
    let is_ohttp = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(media::OHTTP_REQUEST));
    if !is_ohttp {
        return relay.refuse(
            RelayFailure::BadMediaType,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        );
    }
    let body = match tokio::time::timeout_at(deadline, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => body,
        Ok(Err(rejection)) => return relay.refuse(RelayFailure::BadBody, rejection),
        Err(_) => return relay.refuse(RelayFailure::ClientTimeout, StatusCode::REQUEST_TIMEOUT),
    };
    relay.request_bytes.observe(body.len() as f64);
    match tokio::time::timeout_at(deadline, exchange(&relay, body)).await {
        Ok(Ok(response)) => {
            relay.forwarded.inc();
            response
        }
        Ok(Err(status)) => relay.refuse(RelayFailure::UpstreamFailed, status),
        Err(_) => relay.refuse(RelayFailure::UpstreamTimeout, StatusCode::GATEWAY_TIMEOUT),
    }
}

/// Send `body` to the gateway in a request with nothing but a content type
/// (and the length and host that HTTP itself needs); read the answer.
async fn exchange(relay: &Relay, body: Bytes) -> Result<Response, StatusCode> {
    let upstream = relay
        .http
        .post(&relay.config.gateway_url)
        .header(header::CONTENT_TYPE, media::OHTTP_REQUEST)
        .body(body)
        .send()
        .await
        .map_err(|error| {
            tracing::warn!(%error, "gateway unreachable");
            StatusCode::BAD_GATEWAY
        })?;
    let status = upstream.status();
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            PASSED_MEDIA_TYPES
                .iter()
                .find(|known| v.eq_ignore_ascii_case(known))
        })
        .copied();
    let mut upstream = upstream;
    let mut answer = Vec::new();
    while let Some(chunk) = upstream
        .chunk()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?
    {
        if answer.len() + chunk.len() > relay.config.max_response_bytes {
            return Err(StatusCode::BAD_GATEWAY);
        }
        answer.extend_from_slice(&chunk);
    }
    relay.response_bytes.observe(answer.len() as f64);
    let mut response = (status, answer).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The part of the gateway's configuration that says how long it waits
    /// for a host.
    #[derive(Deserialize)]
    struct GatewayExample {
        router: GatewayRouter,
    }

    #[derive(Deserialize)]
    struct GatewayRouter {
        timeout_secs: u64,
    }

    #[test]
    fn the_relay_outwaits_the_gateway_it_forwards_to() {
        // The gateway's shipped example, which the gateway's tests keep equal
        // to its defaults; read as data: parties do not depend on each other.
        const GATEWAY_WORK: Duration = Duration::from_secs(5);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/gateway.example.toml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let example: GatewayExample =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let gateway = Duration::from_secs(example.router.timeout_secs);
        let relay = Duration::from_millis(RelayConfig::default().timeout_ms);
        assert!(
            relay >= gateway + GATEWAY_WORK,
            "the relay waits {relay:?} for a gateway that waits {gateway:?} for its host"
        );
    }

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let parsed: RelayConfig =
            toml::from_str(include_str!("../relay.example.toml")).expect("parses");
        let default = RelayConfig::default();
        assert_eq!(parsed.listen, default.listen);
        assert_eq!(parsed.gateway_url, default.gateway_url);
        assert_eq!(parsed.max_request_bytes, default.max_request_bytes);
        assert_eq!(parsed.key_config_url, default.key_config_url);
        assert_eq!(parsed.key_refresh_secs, default.key_refresh_secs);
        assert_eq!(parsed.outbound_address, default.outbound_address);
        assert_eq!(parsed.timeout_ms, default.timeout_ms);
        assert!(
            toml::from_str::<RelayConfig>("gateway = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }
}
