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

use crate::wire::{WireAnswer, WireCall, WireEmbedAnswer, WireError, encode_vector};

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
        let answer = match serde_json::from_slice::<WireCall>(request) {
            Ok(WireCall::Generate(wire)) => {
                let request = wire.into_request(Instant::now(), self.max_tokens);
                let answer: WireAnswer = self
                    .engine
                    .generate(&request, &mut |piece| {
                        if cancel.is_cancelled() {
                            ControlFlow::Break(())
                        } else {
                            partial(piece.as_bytes())
                        }
                    })
                    .map_err(WireError::from);
                serde_json::to_vec(&answer)
            }
            Ok(WireCall::Embed(wire)) => {
                let answer: WireEmbedAnswer = self
                    .engine
                    .embed(&wire.into_request(Instant::now()))
                    .map_err(WireError::from)
                    .and_then(|vectors| {
                        // One `Partial` frame per vector: a frame is small
                        // whatever the number of texts.
                        for vector in &vectors {
                            if partial(&encode_vector(vector)).is_break() {
                                return Err(WireError::Engine("the caller went away".into()));
                            }
                        }
                        Ok(vectors.len())
                    });
                serde_json::to_vec(&answer)
            }
            Err(error) => serde_json::to_vec(&WireAnswer::Err(WireError::InvalidRequest(
                error.to_string(),
            ))),
        };
        answer
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

#[cfg(test)]
mod tests {
    use cloister_inference::{
        DeterministicBackend, EmbedRequest, EngineIdentity, GenerateRequest, Generation,
        InferenceError, ModelInfo,
    };

    use super::*;
    use crate::wire::{WireEmbed, decode_vector};

    /// Embeds a text as its length and one half; generates nothing.
    struct Lengths;

    impl InferenceBackend for Lengths {
        fn name(&self) -> &str {
            "lengths"
        }

        fn models(&self) -> Vec<ModelInfo> {
            Vec::new()
        }

        fn identity(&self) -> EngineIdentity {
            EngineIdentity {
                weights: None,
                settings: String::new(),
            }
        }

        fn generate(
            &self,
            _: &GenerateRequest,
            _: &mut dyn FnMut(&str) -> ControlFlow<()>,
        ) -> Result<Generation, InferenceError> {
            Err(InferenceError::Unsupported("generation"))
        }

        fn embed(&self, request: &EmbedRequest) -> Result<Vec<Vec<f32>>, InferenceError> {
            Ok(request
                .texts
                .iter()
                .map(|text| vec![text.len() as f32, 0.5])
                .collect())
        }
    }

    /// Serves an embed call of `texts` with `engine`: the answer and the pieces.
    fn embed(engine: Arc<dyn InferenceBackend>, texts: &[&str]) -> (WireEmbedAnswer, Vec<Vec<u8>>) {
        let call = serde_json::to_vec(&WireCall::Embed(WireEmbed {
            model: "m".into(),
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            deadline_ms: Some(10_000),
        }))
        .expect("encode");
        let mut pieces = Vec::new();
        let answer = InferenceService::new(engine, 16)
            .serve(&call, &Cancellation::new(), &mut |piece| {
                pieces.push(piece.to_vec());
                ControlFlow::Continue(())
            })
            .expect("served");
        (serde_json::from_slice(&answer).expect("decode"), pieces)
    }

    #[test]
    fn embed_vectors_cross_one_partial_frame_each() {
        let (answer, pieces) = embed(Arc::new(Lengths), &["ab", "cde"]);
        assert!(matches!(answer, Ok(2)));
        let vectors: Vec<_> = pieces
            .iter()
            .map(|piece| decode_vector(piece).expect("whole f32s"))
            .collect();
        assert_eq!(vectors, [[2.0, 0.5], [3.0, 0.5]]);
        assert_eq!(decode_vector(&[0, 0, 128]), None);
    }

    #[test]
    fn an_engine_without_embeddings_says_so_across_the_hop() {
        let (answer, pieces) = embed(Arc::new(DeterministicBackend::serving("m")), &["ab"]);
        assert!(matches!(answer, Err(WireError::Unsupported(what)) if what == "embeddings"));
        assert!(pieces.is_empty());
    }
}
