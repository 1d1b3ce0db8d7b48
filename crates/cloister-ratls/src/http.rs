//! The host's HTTP face: what the gateway's `HttpForwardRouter` forwards.
//!
//! The gateway sends each decapsulated inner request to
//! `POST /session` with the `cloister-session` header and the client's TLS
//! records as the body; the answer body is the host's TLS records.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cloister_wire::{header as wire_header, media};

use crate::cancel::Cancellation;
use crate::frame::MAX_FRAME_LEN;
use crate::server::{SessionError, SessionTable};

/// Path of the record exchange.
pub const SESSION_PATH: &str = "/session";

/// Largest request body: one maximal frame plus TLS record overhead.
const MAX_BODY: usize = MAX_FRAME_LEN + 64 * 1024;

/// `POST /session` over `table`, to be merged into the host's router.
pub fn routes(table: Arc<SessionTable>) -> Router {
    Router::new()
        .route(SESSION_PATH, post(exchange))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(table)
}

async fn exchange(
    State(table): State<Arc<SessionTable>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(session_id) = headers
        .get(wire_header::SESSION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return (StatusCode::BAD_REQUEST, "missing cloister-session header").into_response();
    };
    // A feature request runs inside the exchange: keep it off the reactor.
    // If the gateway gives up (times out, disconnects), this future is
    // dropped, and with it the guard that cancels the request.
    let cancel = Cancellation::new();
    let _cancel_on_drop = cancel.cancel_on_drop();
    let outcome = tokio::task::spawn_blocking(move || {
        table.exchange_cancellable(&session_id, &body, &cancel)
    })
    .await;
    match outcome {
        Ok(Ok(records)) => {
            ([(header::CONTENT_TYPE, media::RATLS_RECORDS)], records).into_response()
        }
        Ok(Err(error)) => (status_for(&error), error.to_string()).into_response(),
        Err(join) => {
            tracing::error!(%join, "session exchange panicked or was cancelled");
            (StatusCode::INTERNAL_SERVER_ERROR, "session exchange failed").into_response()
        }
    }
}

/// The HTTP status that reports `error`.
pub fn status_for(error: &SessionError) -> StatusCode {
    match error {
        SessionError::UnknownSession => StatusCode::NOT_FOUND,
        SessionError::TableFull => StatusCode::SERVICE_UNAVAILABLE,
        SessionError::Busy => StatusCode::CONFLICT,
        SessionError::Cancelled => StatusCode::REQUEST_TIMEOUT,
        SessionError::InvalidSessionId
        | SessionError::ExchangeOverLimit { .. }
        | SessionError::Tls(_)
        | SessionError::Records(_)
        | SessionError::Frame(_)
        | SessionError::UnexpectedMessage(_) => StatusCode::BAD_REQUEST,
    }
}
