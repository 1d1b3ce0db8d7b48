//! The inference host's end: the engine behind a mutual RA-TLS table, and
//! the HTTP route whose answers stream.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cloister_inference::InferenceBackend;
use cloister_ratls::{
    Cancellation, MAX_FRAME_LEN, PayloadService, SESSION_PATH, SessionError, SessionTable,
    status_for,
};
use cloister_wire::{header as wire_header, media};
use futures_util::StreamExt as _;
use zeroize::Zeroizing;

use crate::wire::{WireAnswer, WireError, WireRequest};

/// Serves generate calls of attested callers with an engine, streaming each
/// piece of text as it is decoded. Concurrent calls (one per session) reach
/// the engine together, so a batching engine batches them.
pub struct InferenceService {
    engine: Arc<dyn InferenceBackend>,
    max_tokens: u32,
}

impl InferenceService {
    /// Serves `engine`, generating at most `max_tokens` per call whatever a
    /// caller asks (its own budgets are the caller's business; this is the
    /// inference host's own cap).
    pub fn new(engine: Arc<dyn InferenceBackend>, max_tokens: u32) -> Self {
        Self { engine, max_tokens }
    }
}

impl std::fmt::Debug for InferenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceService")
            .field("engine", &self.engine.name())
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl PayloadService for InferenceService {
    fn serve(
        &self,
        request: &[u8],
        cancel: &Cancellation,
        partial: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let answer: WireAnswer = match serde_json::from_slice::<WireRequest>(request) {
            Ok(wire) => {
                let request = wire.into_request(Instant::now(), self.max_tokens);
                self.engine
                    .generate(&request, &mut |piece| {
                        if cancel.is_cancelled() {
                            ControlFlow::Break(())
                        } else {
                            partial(piece.as_bytes())
                        }
                    })
                    .map_err(WireError::from)
            }
            Err(error) => Err(WireError::InvalidRequest(error.to_string())),
        };
        serde_json::to_vec(&answer)
            .map(Zeroizing::new)
            .map_err(|_| SessionError::UnexpectedMessage("unencodable answer"))
    }
}

/// Largest request body: one maximal frame plus TLS record overhead.
const MAX_BODY: usize = MAX_FRAME_LEN + 64 * 1024;

/// `POST /session` over `table`, answering with a body that streams: the
/// records of each token are sent as soon as the engine decodes it. A
/// caller that hangs up cancels its generation at the next token.
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
    let (sender, mut records) = tokio::sync::mpsc::unbounded_channel();
    tokio::task::spawn_blocking(move || {
        let cancel = Cancellation::new();
        let outcome = table.exchange_streaming(&session_id, &body, &cancel, &mut |chunk| {
            if sender.send(Ok(chunk)).is_err() {
                cancel.cancel();
            }
        });
        if let Err(error) = outcome {
            let _ = sender.send(Err(error));
        }
    });
    // The status is decided by the first piece: an exchange refused before
    // it answered anything gets the status of its error.
    let first = match records.recv().await {
        None => Vec::new(),
        Some(Ok(chunk)) => chunk,
        Some(Err(error)) => return (status_for(&error), error.to_string()).into_response(),
    };
    let rest = futures_util::stream::unfold(records, |mut records| async move {
        records.recv().await.map(|piece| {
            let piece = piece.map_err(|error| std::io::Error::other(error.to_string()));
            (piece, records)
        })
    });
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    (
        [(header::CONTENT_TYPE, media::RATLS_RECORDS)],
        Body::from_stream(stream),
    )
        .into_response()
}
