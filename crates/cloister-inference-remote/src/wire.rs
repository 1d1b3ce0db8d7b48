//! What travels inside the session: a JSON generate request, the pieces of
//! text as `Partial` frames (UTF-8, one per token), then a JSON answer.

use std::time::{Duration, Instant};

use cloister_inference::{GenerateRequest, Generation, InferenceError, Prompt, SamplingParams};
use serde::{Deserialize, Serialize};

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
            deadline_ms: request.deadline.map(|deadline| {
                u64::try_from(deadline.saturating_duration_since(now).as_millis())
                    .unwrap_or(u64::MAX)
            }),
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
            deadline: self
                .deadline_ms
                .and_then(|ms| now.checked_add(Duration::from_millis(ms))),
        }
    }
}

/// The final answer.
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
