//! What travels inside the session: a JSON call (generate or embed); the
//! pieces of a generation's text (UTF-8, one per token) or an embedding's
//! vectors (one each) as `Partial` frames; then a JSON answer.

use std::time::{Duration, Instant};

use cloister_inference::{
    EmbedRequest, GenerateRequest, Generation, InferenceError, Prompt, SamplingParams,
};
use serde::{Deserialize, Serialize};

/// One call as the feature host sends it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireCall {
    Generate(WireRequest),
    Embed(WireEmbed),
}

/// The time left before `deadline`: an `Instant` means nothing on another
/// machine.
fn time_left(deadline: Option<Instant>, now: Instant) -> Option<u64> {
    deadline.map(|deadline| {
        u64::try_from(deadline.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
    })
}

/// The deadline `ms` after `now`.
fn deadline_after(ms: Option<u64>, now: Instant) -> Option<Instant> {
    ms.and_then(|ms| now.checked_add(Duration::from_millis(ms)))
}

/// One embed call.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireEmbed {
    pub(crate) model: String,
    pub(crate) texts: Vec<String>,
    pub(crate) deadline_ms: Option<u64>,
}

impl WireEmbed {
    pub(crate) fn of(request: &EmbedRequest, now: Instant) -> Self {
        Self {
            model: request.model.clone(),
            texts: request.texts.clone(),
            deadline_ms: time_left(request.deadline, now),
        }
    }

    pub(crate) fn into_request(self, now: Instant) -> EmbedRequest {
        EmbedRequest {
            model: self.model,
            texts: self.texts,
            deadline: deadline_after(self.deadline_ms, now),
        }
    }
}

/// The answer to an embed call: how many vectors were sent, each in its
/// own `Partial` frame before it.
pub(crate) type WireEmbedAnswer = Result<usize, WireError>;

/// A vector as a `Partial` frame carries it: its values as little-endian
/// `f32`s (exact, and a quarter of the size of their JSON).
pub(crate) fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The vector in a `Partial` frame, or `None` when its length is not a
/// whole number of `f32`s.
pub(crate) fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|v| v.try_into().ok().map(f32::from_le_bytes))
        .collect()
}

/// One generate call as the feature host sends it. The deadline travels as
/// the time left, since an `Instant` means nothing on another machine.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireRequest {
    pub(crate) model: String,
    pub(crate) prompt: Prompt,
    pub(crate) params: SamplingParams,
    pub(crate) deadline_ms: Option<u64>,
}

impl WireRequest {
    pub(crate) fn of(request: &GenerateRequest, now: Instant) -> Self {
        Self {
            model: request.model.clone(),
            prompt: request.prompt.clone(),
            params: request.params.clone(),
            deadline_ms: time_left(request.deadline, now),
        }
    }

    /// The request for the engine, with `max_tokens` capped at `cap`.
    pub(crate) fn into_request(self, now: Instant, cap: u32) -> GenerateRequest {
        let mut params = self.params;
        params.max_tokens = params.max_tokens.min(cap);
        GenerateRequest {
            model: self.model,
            prompt: self.prompt,
            params,
            deadline: deadline_after(self.deadline_ms, now),
        }
    }
}

/// The final answer to a generate call.
pub(crate) type WireAnswer = Result<Generation, WireError>;

/// [`InferenceError`] as it crosses the hop.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    ModelUnavailable(String),
    InvalidRequest(String),
    Busy,
    DeadlineExceeded,
    Unsupported(String),
    Engine(String),
}

impl From<InferenceError> for WireError {
    fn from(error: InferenceError) -> Self {
        match error {
            InferenceError::ModelUnavailable(model) => Self::ModelUnavailable(model),
            InferenceError::InvalidRequest(why) => Self::InvalidRequest(why),
            InferenceError::Busy => Self::Busy,
            InferenceError::DeadlineExceeded => Self::DeadlineExceeded,
            InferenceError::Unsupported(what) => Self::Unsupported(what.to_owned()),
            InferenceError::Engine(why) => Self::Engine(why),
        }
    }
}

impl From<WireError> for InferenceError {
    fn from(error: WireError) -> Self {
        match error {
            WireError::ModelUnavailable(model) => Self::ModelUnavailable(model),
            WireError::InvalidRequest(why) => Self::InvalidRequest(why),
            WireError::Busy => Self::Busy,
            WireError::DeadlineExceeded => Self::DeadlineExceeded,
            WireError::Unsupported(what) => {
                Self::Engine(format!("the inference host does not support {what}"))
            }
            WireError::Engine(why) => Self::Engine(format!("on the inference host: {why}")),
        }
    }
}
