//! The `cloister:feature/inference` capability: budgeted access to the
//! host's native inference engine.
//!
//! The engine runs outside the sandbox; a plugin only ever sees text. Every
//! call is checked against the manifest's grant before the engine sees it:
//! model allow-list, prompt size, tokens per call, tokens per request and
//! calls per request. Tokens are reserved when a call starts and the unused
//! part is returned when it ends, so concurrent streams cannot overspend.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Instant;

use cloister_inference::{
    ChatMessage, FinishReason, GenerateRequest, Generation as EngineGeneration, InferenceBackend,
    InferenceError, Prompt as EnginePrompt, Role as EngineRole, SamplingParams,
};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use super::{Capability, InstanceContext, InstanceState};
use crate::bindings::inference::{
    self as wit, Budget, Error, Generation, Params, Prompt, Remaining, Usage,
};
use crate::manifest::{InferenceGrant, PluginManifest};

/// The interface name manifests grant.
pub const INTERFACE: &str = "cloister:feature/inference@0.1.0";

/// Most stop sequences in one call.
const MAX_STOP_SEQUENCES: usize = 8;
/// Most bytes of one stop sequence.
const MAX_STOP_BYTES: usize = 64;
/// Pieces buffered between the engine and a slow plugin.
const STREAM_BUFFER: usize = 64;

/// Per-host state: the shared engine.
pub struct InferenceCapability {
    backend: Arc<dyn InferenceBackend>,
}

impl InferenceCapability {
    /// Serves plugins from `backend`.
    pub fn new(backend: Arc<dyn InferenceBackend>) -> Self {
        Self { backend }
    }

    /// The engine behind this capability.
    pub fn backend(&self) -> &Arc<dyn InferenceBackend> {
        &self.backend
    }
}

impl Capability for InferenceCapability {
    const INTERFACES: &'static [&'static str] = &[INTERFACE];
    type Instance = InferenceInstance;

    fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
        wit::add_to_linker::<_, HasSelf<InferenceInstance>>(linker, |state| &mut state.inference)
    }

    fn instance(&self, context: InstanceContext<'_>) -> InferenceInstance {
        InferenceInstance {
            backend: self.backend.clone(),
            manifest: context.manifest.clone(),
            deadline: context.deadline,
            tokens_used: 0,
            calls_used: 0,
            streams: ResourceTable::new(),
        }
    }
}

/// Per-instance state: the request's budget and its open streams.
pub struct InferenceInstance {
    backend: Arc<dyn InferenceBackend>,
    /// Holds the grant: `manifest.inference`.
    manifest: Arc<PluginManifest>,
    deadline: Instant,
    /// Tokens generated plus tokens reserved by calls in flight.
    tokens_used: u32,
    calls_used: u32,
    streams: ResourceTable,
}

/// A generation in progress, fed by an engine thread.
pub struct TokenStream {
    pieces: Receiver<StreamItem>,
    reserved: u32,
    outcome: Option<Result<EngineGeneration, InferenceError>>,
}

enum StreamItem {
    Piece(String),
    Done(Result<EngineGeneration, InferenceError>),
}

impl InferenceInstance {
    /// Tokens generated so far in this request.
    pub fn tokens_used(&self) -> u32 {
        self.tokens_used
    }

    fn grant(&self) -> Option<&InferenceGrant> {
        self.manifest.inference.as_ref()
    }

    /// Checks a call against the grant and reserves its budget.
    fn admit(
        &mut self,
        model: String,
        prompt: Prompt,
        params: Params,
    ) -> Result<GenerateRequest, Error> {
        let Some(grant) = self.grant() else {
            return Err(Error::ModelUnavailable(model));
        };
        if !grant.models.contains(&model) {
            return Err(Error::ModelUnavailable(model));
        }
        if self.calls_used >= grant.max_calls_per_request {
            return Err(Error::BudgetExceeded(Budget::CallsPerRequest));
        }
        if params.max_tokens > grant.max_tokens_per_call {
            return Err(Error::BudgetExceeded(Budget::TokensPerCall));
        }
        if params.max_tokens
            > grant
                .max_tokens_per_request
                .saturating_sub(self.tokens_used)
        {
            return Err(Error::BudgetExceeded(Budget::TokensPerRequest));
        }
        let prompt = engine_prompt(prompt);
        let prompt_bytes = match &prompt {
            EnginePrompt::Text(text) => text.len(),
            EnginePrompt::Chat(messages) => messages.iter().map(|m| m.content.len()).sum(),
        };
        if u64::try_from(prompt_bytes).unwrap_or(u64::MAX) > grant.max_prompt_bytes {
            return Err(Error::BudgetExceeded(Budget::PromptBytes));
        }
        let params = sampling_params(params)?;
        if Instant::now() >= self.deadline {
            return Err(Error::BudgetExceeded(Budget::WallTime));
        }
        self.calls_used += 1;
        self.tokens_used += params.max_tokens;
        Ok(GenerateRequest {
            model,
            prompt,
            params,
            deadline: Some(self.deadline),
        })
    }

    /// Returns the unused part of a reservation.
    fn settle(&mut self, reserved: u32, outcome: &Result<EngineGeneration, InferenceError>) {
        let generated = outcome
            .as_ref()
            .map_or(0, |g| g.usage.generated_tokens.min(reserved));
        self.tokens_used -= reserved - generated;
    }
}

fn engine_prompt(prompt: Prompt) -> EnginePrompt {
    match prompt {
        Prompt::Text(text) => EnginePrompt::Text(text),
        Prompt::Chat(messages) => EnginePrompt::Chat(
            messages
                .into_iter()
                .map(|m| ChatMessage {
                    role: match m.role {
                        wit::Role::System => EngineRole::System,
                        wit::Role::User => EngineRole::User,
                        wit::Role::Assistant => EngineRole::Assistant,
                    },
                    content: m.content,
                })
                .collect(),
        ),
    }
}

fn sampling_params(params: Params) -> Result<SamplingParams, Error> {
    let invalid = |what: &str| Err(Error::InvalidRequest(what.to_owned()));
    if !(params.temperature.is_finite() && params.temperature >= 0.0) {
        return invalid("temperature must be a finite number >= 0");
    }
    if !(params.top_p > 0.0 && params.top_p <= 1.0) {
        return invalid("top-p must be in (0, 1]");
    }
    if !(params.repeat_penalty.is_finite() && params.repeat_penalty > 0.0) {
        return invalid("repeat-penalty must be a finite number > 0");
    }
    if params.stop.len() > MAX_STOP_SEQUENCES
        || params
            .stop
            .iter()
            .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
    {
        return invalid("at most 8 stop sequences of 1 to 64 bytes");
    }
    Ok(SamplingParams {
        max_tokens: params.max_tokens,
        temperature: params.temperature,
        top_k: params.top_k,
        top_p: params.top_p,
        repeat_penalty: params.repeat_penalty,
        repeat_penalty_last_n: params.repeat_penalty_last_n,
        seed: params.seed,
        stop: params.stop,
    })
}

fn wit_error(error: InferenceError) -> Error {
    match error {
        InferenceError::ModelUnavailable(model) => Error::ModelUnavailable(model),
        InferenceError::InvalidRequest(why) => Error::InvalidRequest(why),
        InferenceError::Unsupported(what) => Error::InvalidRequest(format!("{what} not supported")),
        InferenceError::Busy => Error::Busy,
        InferenceError::DeadlineExceeded => Error::BudgetExceeded(Budget::WallTime),
        InferenceError::Engine(_) => Error::EngineFailure,
    }
}

fn wit_generation(generation: EngineGeneration) -> Generation {
    Generation {
        text: generation.text,
        usage: Usage {
            prompt_tokens: generation.usage.prompt_tokens,
            generated_tokens: generation.usage.generated_tokens,
        },
        finish: match generation.finish {
            FinishReason::EndOfSequence => wit::FinishReason::EndOfSequence,
            FinishReason::StopSequence => wit::FinishReason::StopSequence,
            FinishReason::Length => wit::FinishReason::Length,
            FinishReason::Cancelled => wit::FinishReason::Cancelled,
        },
    }
}

/// Runs one generation on its own thread, sending pieces as they come.
fn spawn_generation(
    backend: Arc<dyn InferenceBackend>,
    request: GenerateRequest,
    pieces: SyncSender<StreamItem>,
) {
    std::thread::spawn(move || {
        let outcome = backend.generate(&request, &mut |piece| {
            // A dropped receiver means the plugin dropped the stream: stop.
            match pieces.send(StreamItem::Piece(piece.to_owned())) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        });
        let _ = pieces.send(StreamItem::Done(outcome));
    });
}

impl wit::Host for InferenceInstance {
    fn generate(
        &mut self,
        model: String,
        prompt: Prompt,
        params: Params,
    ) -> wasmtime::Result<Result<Generation, Error>> {
        let request = match self.admit(model, prompt, params) {
            Ok(request) => request,
            Err(error) => return Ok(Err(error)),
        };
        let outcome = self
            .backend
            .generate(&request, &mut |_| ControlFlow::Continue(()));
        self.settle(request.params.max_tokens, &outcome);
        Ok(outcome.map(wit_generation).map_err(wit_error))
    }

    fn generate_stream(
        &mut self,
        model: String,
        prompt: Prompt,
        params: Params,
    ) -> wasmtime::Result<Result<Resource<TokenStream>, Error>> {
        let request = match self.admit(model, prompt, params) {
            Ok(request) => request,
            Err(error) => return Ok(Err(error)),
        };
        let (sender, pieces) = sync_channel(STREAM_BUFFER);
        let reserved = request.params.max_tokens;
        spawn_generation(self.backend.clone(), request, sender);
        Ok(Ok(self.streams.push(TokenStream {
            pieces,
            reserved,
            outcome: None,
        })?))
    }

    fn embed(
        &mut self,
        model: String,
        texts: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Vec<f32>>, Error>> {
        let Some(grant) = self.grant().filter(|g| g.models.contains(&model)) else {
            return Ok(Err(Error::ModelUnavailable(model)));
        };
        if self.calls_used >= grant.max_calls_per_request {
            return Ok(Err(Error::BudgetExceeded(Budget::CallsPerRequest)));
        }
        let bytes: usize = texts.iter().map(String::len).sum();
        if u64::try_from(bytes).unwrap_or(u64::MAX) > grant.max_prompt_bytes {
            return Ok(Err(Error::BudgetExceeded(Budget::PromptBytes)));
        }
        self.calls_used += 1;
        Ok(self.backend.embed(&model, &texts).map_err(wit_error))
    }

    fn remaining_budget(&mut self) -> wasmtime::Result<Remaining> {
        Ok(match self.grant() {
            Some(grant) => Remaining {
                tokens: grant
                    .max_tokens_per_request
                    .saturating_sub(self.tokens_used),
                calls: grant.max_calls_per_request.saturating_sub(self.calls_used),
            },
            None => Remaining {
                tokens: 0,
                calls: 0,
            },
        })
    }
}

impl wit::HostTokenStream for InferenceInstance {
    fn next(
        &mut self,
        stream: Resource<TokenStream>,
    ) -> wasmtime::Result<Result<Option<String>, Error>> {
        let deadline = self.deadline;
        let stream = self.streams.get_mut(&stream)?;
        if let Some(outcome) = &stream.outcome {
            return Ok(outcome
                .as_ref()
                .map(|_| None)
                .map_err(|e| wit_error(e.clone())));
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        let item = match stream.pieces.recv_timeout(timeout) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) => {
                StreamItem::Done(Err(InferenceError::DeadlineExceeded))
            }
            Err(RecvTimeoutError::Disconnected) => StreamItem::Done(Err(InferenceError::Engine(
                "generation thread ended".into(),
            ))),
        };
        Ok(match item {
            StreamItem::Piece(piece) => Ok(Some(piece)),
            StreamItem::Done(outcome) => {
                let result = outcome
                    .as_ref()
                    .map(|_| None)
                    .map_err(|e| wit_error(e.clone()));
                let reserved = stream.reserved;
                stream.outcome = Some(outcome.clone());
                stream.reserved = 0;
                self.settle(reserved, &outcome);
                result
            }
        })
    }

    fn finish(
        &mut self,
        stream: Resource<TokenStream>,
    ) -> wasmtime::Result<Result<Generation, Error>> {
        let stream = self.streams.get(&stream)?;
        Ok(match &stream.outcome {
            Some(outcome) => outcome.clone().map(wit_generation).map_err(wit_error),
            None => Err(Error::InvalidRequest(
                "finish called before next returned none".into(),
            )),
        })
    }

    fn drop(&mut self, stream: Resource<TokenStream>) -> wasmtime::Result<()> {
        let stream = self.streams.delete(stream)?;
        // Dropping the receiver stops the engine thread at its next piece. The
        // reservation stays spent: what the engine generates until then counts.
        drop(stream);
        Ok(())
    }
}

/// The `[inference]` table of the host configuration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Which engine serves the models.
    pub backend: BackendKind,
    /// The real engine's settings (model directory and file, threads, batching).
    pub candle: cloister_inference_candle::CandleConfig,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Candle,
            candle: cloister_inference_candle::CandleConfig::default(),
        }
    }
}

/// The engines this host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// The real engine: a GGUF model on candle, CPU or CUDA.
    #[default]
    Candle,
    /// The simulated development backend of `cloister-inference`: no weights,
    /// replays the prompt. Must be chosen explicitly and is announced loudly.
    Deterministic,
}

impl InferenceConfig {
    /// Builds the configured engine (loading the model, for candle).
    pub fn backend(
        &self,
    ) -> Result<Arc<dyn InferenceBackend>, cloister_inference_candle::LoadError> {
        Ok(match self.backend {
            BackendKind::Candle => Arc::new(cloister_inference_candle::CandleBackend::load(
                &self.candle,
            )?),
            BackendKind::Deterministic => Arc::new(
                cloister_inference::DeterministicBackend::serving(self.candle.model_name.clone()),
            ),
        })
    }
}
