//! The contract between the Cloister host and an inference engine.
//!
//! Plugins never run a model themselves: they ask the host through the WIT
//! `cloister:feature/inference` interface, and the host forwards the request to
//! an [`InferenceBackend`]. This crate holds only that seam, so that the
//! wasmtime host, the candle engine (`cloister-inference-candle`) and the
//! plugin test kit each depend on it without depending on one another, and
//! the host binary alone decides which engine runs.
//!
//! # Main types
//!
//! * [`InferenceBackend`] is the trait an engine implements. Calls are
//!   blocking and may come from many threads at once; an engine that batches
//!   requests does so behind this trait. Tokens stream through a callback
//!   that can stop generation.
//! * [`GenerateRequest`] ([`Prompt`], [`SamplingParams`], a deadline) in,
//!   [`Generation`] ([`Usage`], [`FinishReason`]) or [`InferenceError`] out.
//! * [`DeterministicBackend`] is a **development stand-in, not a model**: it
//!   answers with text extracted from the prompt, so the host, the plugins and
//!   CI can run without model weights. Binaries announce loudly when they use it.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! ```rust
//! use std::ops::ControlFlow;
//!
//! use cloister_inference::{
//!     ChatMessage, DeterministicBackend, FinishReason, GenerateRequest, InferenceBackend, Prompt,
//!     Role, SamplingParams,
//! };
//!
//! let backend = DeterministicBackend::new();
//! assert!(backend.is_simulated());
//!
//! let request = GenerateRequest {
//!     model: DeterministicBackend::MODEL.into(),
//!     prompt: Prompt::Chat(vec![ChatMessage {
//!         role: Role::User,
//!         content: "lunch moves to Friday at noon".into(),
//!     }]),
//!     params: SamplingParams { max_tokens: 3, ..SamplingParams::default() },
//!     deadline: None,
//! };
//! let mut streamed = String::new();
//! let generation = backend.generate(&request, &mut |piece| {
//!     streamed.push_str(piece);
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!(generation.text, "lunch moves to");
//! assert_eq!(generation.text, streamed);
//! assert_eq!(generation.usage.generated_tokens, 3);
//! assert_eq!(generation.finish, FinishReason::Length);
//! # Ok::<(), cloister_inference::InferenceError>(())
//! ```

mod deterministic;

use std::ops::ControlFlow;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use deterministic::DeterministicBackend;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the feature, trusted.
    System,
    /// Input on whose behalf the feature runs; may carry untrusted data.
    User,
    /// Earlier model output.
    Assistant,
}

/// One message of a chat prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The author of the message.
    pub role: Role,
    /// The message text.
    pub content: String,
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Raw text, fed to the model as is.
    Text(String),
    /// Chat messages, formatted with the model's own chat template.
    Chat(Vec<ChatMessage>),
}

/// Sampling parameters, named as in Spin's `llm` interface and llama.cpp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Upper bound on generated tokens (the host clamps it to the budget).
    pub max_tokens: u32,
    /// 0 means greedy decoding.
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 disables.
    pub top_k: u32,
    /// Nucleus sampling threshold; 1.0 disables.
    pub top_p: f32,
    /// Penalty applied to tokens seen in the last `repeat_penalty_last_n`; 1.0 disables.
    pub repeat_penalty: f32,
    /// Window for the repeat penalty.
    pub repeat_penalty_last_n: u32,
    /// Seed for the sampler, so that a request can be reproduced.
    pub seed: u64,
    /// Generation ends before the first occurrence of any of these.
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repeat_penalty: 1.1,
            repeat_penalty_last_n: 64,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// One generation request as the host hands it to a backend.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// Model name, as listed by [`InferenceBackend::models`].
    pub model: String,
    /// What to continue.
    pub prompt: Prompt,
    /// How to sample.
    pub params: SamplingParams,
    /// The backend stops with [`InferenceError::DeadlineExceeded`] past this instant.
    pub deadline: Option<Instant>,
}

/// One embedding request as the host hands it to a backend.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// Model name, as listed by [`InferenceBackend::models`].
    pub model: String,
    /// The texts to embed, each on its own (never concatenated).
    pub texts: Vec<String>,
    /// The backend stops with [`InferenceError::DeadlineExceeded`] past this instant.
    pub deadline: Option<Instant>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    /// The model emitted its end-of-sequence token.
    EndOfSequence,
    /// A stop sequence was reached (and is not part of the text).
    StopSequence,
    /// `max_tokens` was reached.
    Length,
    /// The token callback asked to stop.
    Cancelled,
}

/// Token counts of one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the formatted prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub generated_tokens: u32,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Generated text, without any stop sequence.
    pub text: String,
    /// Token counts.
    pub usage: Usage,
    /// Why generation ended.
    pub finish: FinishReason,
}

/// What a backend can serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Name plugins use to ask for it.
    pub name: String,
    /// Context window in tokens.
    pub context_tokens: u32,
    /// Whether it serves [`InferenceBackend::embed`].
    pub embeddings: bool,
}

/// Why a backend could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferenceError {
    /// The model is not loaded by this backend.
    #[error("model `{0}` is not available")]
    ModelUnavailable(String),
    /// The request cannot be served as asked (empty prompt, prompt longer than the context...).
    #[error("invalid inference request: {0}")]
    InvalidRequest(String),
    /// The backend's queue is full; try again later.
    #[error("inference backend is busy")]
    Busy,
    /// The request's deadline passed.
    #[error("inference deadline exceeded")]
    DeadlineExceeded,
    /// This backend has no such operation (for example embeddings).
    #[error("operation not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The engine failed.
    #[error("inference engine failure: {0}")]
    Engine(String),
}

/// What an engine computes with, named so that a host launch can attest to
/// it: a host whose model or engine settings differ from the released ones
/// must report another HOST_DATA, which no client accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineIdentity {
    /// SHA-256 of the model file exactly as the engine loaded it; `None` for
    /// a backend without weights (a simulated stand-in).
    pub weights: Option<[u8; 32]>,
    /// Every engine setting that can change what it produces (backend,
    /// served model name, batching, context, device, number format, threads),
    /// as canonical text. Paths are left out: the weights digest names the
    /// file's contents.
    pub settings: String,
}

/// A text-generation engine shared by every request of a host.
///
/// Implementations are called from many threads at once and must not keep any
/// request data after a call returns: the host promises users that it keeps no copy.
pub trait InferenceBackend: Send + Sync {
    /// A short name for logs and health output (for example `candle-cpu`).
    fn name(&self) -> &str;

    /// Whether this is a development stand-in rather than a real model.
    fn is_simulated(&self) -> bool {
        false
    }

    /// The models this backend serves.
    fn models(&self) -> Vec<ModelInfo>;

    /// The weights and settings this backend computes with.
    fn identity(&self) -> EngineIdentity;

    /// Generates text, calling `on_token` with each decoded piece as it is
    /// produced. `on_token` returning [`ControlFlow::Break`] stops generation
    /// with [`FinishReason::Cancelled`]. The returned text is the concatenation
    /// of all pieces passed to `on_token`.
    fn generate(
        &self,
        request: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, InferenceError>;

    /// Embeds each text into one vector, in order. A backend that serves
    /// embeddings (see [`ModelInfo::embeddings`]) returns vectors of one
    /// width with unit L2 norm, and the same vector for the same text
    /// whatever else the request holds.
    fn embed(&self, request: &EmbedRequest) -> Result<Vec<Vec<f32>>, InferenceError> {
        let _ = request;
        Err(InferenceError::Unsupported("embeddings"))
    }
}
