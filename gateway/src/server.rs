//! The HTTP face of the gateway (axum): the OHTTP endpoint, the key
//! configuration endpoint that relays copy from, `/healthz` and `/metrics`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloister_ohttp_keys::key_config_digest;
use cloister_wire::{OHTTP_KEYS_PATH, media, unix_now};

use crate::keys::KeyService;
use crate::metrics::Metrics;
use crate::pipeline::{Gateway, GatewayResponse};
use crate::router::Router;
use crate::token::TokenRedeemer;

struct KeyEndpoint {
    keys: Arc<KeyService>,
    metrics: Arc<Metrics>,
}

async fn key_configs(State(state): State<Arc<KeyEndpoint>>) -> Response {
    state.metrics.key_config_served();
    let (body, lifetime) = state.keys.published(unix_now());
    let etag = format!("\"{}\"", hex::encode(&key_config_digest(&body)[..16]));
    let cache = format!("public, max-age={}", lifetime.as_secs());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media::OHTTP_KEYS),
    );
    for (name, value) in [(header::CACHE_CONTROL, cache), (header::ETAG, etag)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (headers, body).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

fn key_routes(keys: Arc<KeyService>, metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route(OHTTP_KEYS_PATH, get(key_configs))
        .with_state(Arc::new(KeyEndpoint { keys, metrics }))
        .route("/healthz", get(healthz))
}

async fn ohttp<R: Router, T: TokenRedeemer>(
    State(gateway): State<Arc<Gateway<R, T>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let GatewayResponse {
        status,
        content_type,
        body,
    } = gateway.handle(content_type, &body).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(content_type) = content_type {
        out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// Serve the gateway on `listener` (a [`TcpListener`](tokio::net::TcpListener), or any axum
/// listener, such as one that records its peers in a test): `POST {path}`
/// for encapsulated requests (bodies over `max_body` get 413), plus the key
/// configuration endpoint (for relays, which serve their own copy to
/// clients), `/healthz` and `/metrics`.
///
/// # Errors
/// The listener failed.
pub async fn serve<R: Router, T: TokenRedeemer, L>(
    listener: L,
    gateway: Arc<Gateway<R, T>>,
    path: &str,
    max_body: usize,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = axum::Router::new()
        .route(path, post(ohttp::<R, T>))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(Arc::clone(&gateway))
        .merge(key_routes(
            Arc::clone(gateway.keys()),
            Arc::clone(gateway.metrics()),
        ));
    let app = gateway.metrics().server().instrument(app);
    axum::serve(listener, app).await
}

/// Serve only the key configuration endpoint and `/healthz` on `listener`
/// (a [`TcpListener`](tokio::net::TcpListener) or any axum listener):
/// the stand-in for the CDN when it should be a separate origin. Its
/// requests are counted in `metrics`, which the main origin serves.
///
/// # Errors
/// The listener failed.
pub async fn serve_key_configs<L>(
    listener: L,
    keys: Arc<KeyService>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = metrics
        .server()
        .track(key_routes(keys, Arc::clone(&metrics)));
    axum::serve(listener, app).await
}
