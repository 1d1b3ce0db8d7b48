//! The `cloister:feature/inference` capability: budgeted access to the
//! host's native inference engine.
//!
//! The engine runs outside the sandbox; a plugin only ever sees text. Every
//! call is checked against the manifest's grant (the `[inference]` section,
//! [`InferenceGrant`]) before the engine sees it: model allow-list, then the
//! request's [`Budget`] (prompt size, tokens per call, tokens per request,
//! calls per request) and its wall time. An `embed` call is one call of the
//! request whose texts, at most [`MAX_EMBED_TEXTS`], count together against
//! `max-prompt-bytes` (a byte-level tokenizer makes at most one input token
//! per byte, so this bounds the tokens the engine runs too); it generates no
//! tokens.

mod budget;

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Instant;

use cloister_api::BudgetKind;
use cloister_inference::{
    ChatMessage, EmbedRequest, FinishReason, GenerateRequest, Generation as EngineGeneration,
    InferenceBackend, InferenceError, Prompt as EnginePrompt, Role as EngineRole, SamplingParams,
};
use cloister_ratls::Cancellation;
use serde::{Deserialize, Serialize};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

pub use self::budget::{Budget, Exceeded, Reservation};
use super::{Capability, Get, GrantError, Grants, InstanceContext};
use crate::bindings::inference::{
    self as wit, Error, Generation, Params, Prompt, Remaining, Usage,
};

/// The interface name manifests grant.
pub const INTERFACE: &str = "cloister:feature/inference@0.1.0";

/// Most stop sequences in one call.
const MAX_STOP_SEQUENCES: usize = 8;
/// Most bytes of one stop sequence.
const MAX_STOP_BYTES: usize = 64;
/// Most texts in one embed call (their bytes together count against the
/// grant's `max-prompt-bytes`).
pub const MAX_EMBED_TEXTS: usize = 64;
/// Pieces buffered between the engine and a slow plugin.
const STREAM_BUFFER: usize = 64;

/// What one request may ask of the inference engine: the `[inference]`
/// section of a plugin manifest, required when the interface is granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InferenceGrant {
    /// Models the plugin may name.
    pub models: BTreeSet<String>,
    /// Most tokens one call may generate.
    pub max_tokens_per_call: u32,
    /// Most tokens all calls of one request may generate together.
    pub max_tokens_per_request: u32,
    /// Most calls in one request.
    pub max_calls_per_request: u32,
    /// Most bytes of prompt text in one call.
    pub max_prompt_bytes: u64,
}

/// Per-host state: the shared engine.
pub struct InferenceCapability {
    backend: Arc<dyn InferenceBackend>,
}

impl InferenceCapability {
    /// Serves plugins from `backend`.
    pub fn new(backend: Arc<dyn InferenceBackend>) -> Self {
        Self { backend }
    }
}

impl Capability for InferenceCapability {
    const INTERFACES: &'static [&'static str] = &[INTERFACE];
    type Grant = Option<InferenceGrant>;
    type Instance = InferenceInstance;

    fn check_grant(
        grant: &Option<InferenceGrant>,
        imports: &BTreeSet<String>,
    ) -> Result<(), GrantError> {
        if !imports.contains(INTERFACE) {
            return Ok(());
        }
        let grant = grant.as_ref().ok_or(GrantError::MissingSection {
            interface: INTERFACE,
            section: "inference",
        })?;
        if grant.max_tokens_per_call == 0
            || grant.max_tokens_per_call > grant.max_tokens_per_request
        {
            return Err(GrantError::BadLimit("max-tokens-per-call"));
        }
        if grant.max_calls_per_request == 0 {
            return Err(GrantError::BadLimit("max-calls-per-request"));
        }
        Ok(())
    }

    fn add_to_linker<T, G>(linker: &mut Linker<T>) -> wasmtime::Result<()>
    where
        T: Send + 'static,
        G: Get<T, Instance = InferenceInstance>,
    {
        wit::add_to_linker::<T, HasSelf<InferenceInstance>>(linker, G::get)
    }

    fn instance(&self, context: InstanceContext<'_>) -> InferenceInstance {
        let time_limit = context.deadline.saturating_duration_since(context.started);
        InferenceInstance {
            backend: self.backend.clone(),
            budget: Budget::new(
                context.grants.inference.as_ref(),
                u64::try_from(time_limit.as_millis()).unwrap_or(u64::MAX),
            ),
            grants: context.grants.clone(),
            started: context.started,
            deadline: context.deadline,
            cancel: context.cancel.clone(),
            streams: ResourceTable::new(),
        }
    }
}

/// Per-instance state: the request's budget and its open streams.
pub struct InferenceInstance {
    backend: Arc<dyn InferenceBackend>,
    /// Holds the grant: `grants.inference`.
    grants: Arc<Grants>,
    budget: Budget,
    started: Instant,
    deadline: Instant,
    /// Set once the request's caller gave up: no more calls start.
    cancel: Cancellation,
    streams: ResourceTable,
}

/// A generation in progress, fed by an engine thread.
pub struct TokenStream {
    pieces: Receiver<StreamItem>,
    /// Until the generation settles.
    reserved: Option<Reservation>,
    outcome: Option<Result<EngineGeneration, InferenceError>>,
}

enum StreamItem {
    Piece(String),
    Done(Result<EngineGeneration, InferenceError>),
}

impl InferenceInstance {
    /// The request's budget as it stands.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Whether the grant names `model`.
    fn model_granted(&self, model: &str) -> bool {
        self.grants
            .inference
            .as_ref()
            .is_some_and(|g| g.models.contains(model))
    }

    /// Refuses a call once the request's wall time is over, or its caller
    /// gave up (the epoch check then stops the guest).
    fn check_time(&mut self) -> Result<(), Error> {
        let now = Instant::now();
        if now >= self.deadline || self.cancel.is_cancelled() {
            let elapsed = now.saturating_duration_since(self.started).as_millis();
            self.budget
                .out_of_time(u64::try_from(elapsed).unwrap_or(u64::MAX));
            return Err(Error::BudgetExceeded(wit::Budget::WallTime));
        }
        Ok(())
    }

    /// Checks a call against the grant and reserves its budget.
    fn admit(
        &mut self,
        model: String,
        prompt: Prompt,
        params: Params,
    ) -> Result<(GenerateRequest, Reservation), Error> {
        if !self.model_granted(&model) {
            return Err(Error::ModelUnavailable(model));
        }
        let prompt = engine_prompt(prompt);
        let prompt_bytes = match &prompt {
            EnginePrompt::Text(text) => text.len(),
            EnginePrompt::Chat(messages) => messages.iter().map(|m| m.content.len()).sum(),
        };
        let params = sampling_params(params)?;
        self.check_time()?;
        let reservation = self
            .budget
            .admit(params.max_tokens, byte_count(prompt_bytes))
            .map_err(|e| Error::BudgetExceeded(wit_budget(e.budget)))?;
        let request = GenerateRequest {
            model,
            prompt,
            params,
            deadline: Some(self.deadline),
        };
        Ok((request, reservation))
    }

    /// Returns the unused part of a reservation.
    fn settle(
        &mut self,
        reservation: Reservation,
        outcome: &Result<EngineGeneration, InferenceError>,
    ) {
        let generated = outcome.as_ref().map_or(0, |g| g.usage.generated_tokens);
        self.budget.settle(reservation, generated);
    }

    /// The plugin-facing error of an engine failure; running out of time
    /// is recorded against the budget.
    fn engine_error(&mut self, error: InferenceError) -> Error {
        if matches!(error, InferenceError::DeadlineExceeded) {
            let elapsed = self.started.elapsed().as_millis();
            self.budget
                .out_of_time(u64::try_from(elapsed).unwrap_or(u64::MAX));
        }
        wit_error(error)
    }
}

fn byte_count(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// The WIT name of a budget.
fn wit_budget(budget: BudgetKind) -> wit::Budget {
    match budget {
        BudgetKind::TokensPerCall => wit::Budget::TokensPerCall,
        BudgetKind::TokensPerRequest => wit::Budget::TokensPerRequest,
        BudgetKind::CallsPerRequest => wit::Budget::CallsPerRequest,
        BudgetKind::PromptBytes => wit::Budget::PromptBytes,
        BudgetKind::WallTime => wit::Budget::WallTime,
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
        InferenceError::DeadlineExceeded => Error::BudgetExceeded(wit::Budget::WallTime),
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
        let (request, reservation) = match self.admit(model, prompt, params) {
            Ok(admitted) => admitted,
            Err(error) => return Ok(Err(error)),
        };
        let outcome = self
            .backend
            .generate(&request, &mut |_| ControlFlow::Continue(()));
        self.settle(reservation, &outcome);
        Ok(outcome
            .map(wit_generation)
            .map_err(|e| self.engine_error(e)))
    }

    fn generate_stream(
        &mut self,
        model: String,
        prompt: Prompt,
        params: Params,
    ) -> wasmtime::Result<Result<Resource<TokenStream>, Error>> {
        let (request, reservation) = match self.admit(model, prompt, params) {
            Ok(admitted) => admitted,
            Err(error) => return Ok(Err(error)),
        };
        let (sender, pieces) = sync_channel(STREAM_BUFFER);
        spawn_generation(self.backend.clone(), request, sender);
        Ok(Ok(self.streams.push(TokenStream {
            pieces,
            reserved: Some(reservation),
            outcome: None,
        })?))
    }

    fn embed(
        &mut self,
        model: String,
        texts: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Vec<f32>>, Error>> {
        if !self.model_granted(&model) {
            return Ok(Err(Error::ModelUnavailable(model)));
        }
        if texts.len() > MAX_EMBED_TEXTS {
            return Ok(Err(Error::InvalidRequest(format!(
                "{} texts in one embed call; at most {MAX_EMBED_TEXTS}",
                texts.len()
            ))));
        }
        let bytes: usize = texts.iter().map(String::len).sum();
        if let Err(error) = self.check_time() {
            return Ok(Err(error));
        }
        if let Err(exceeded) = self.budget.admit_untokened(byte_count(bytes)) {
            return Ok(Err(Error::BudgetExceeded(wit_budget(exceeded.budget))));
        }
        let request = EmbedRequest {
            model,
            texts,
            deadline: Some(self.deadline),
        };
        Ok(self
            .backend
            .embed(&request)
            .map_err(|e| self.engine_error(e)))
    }

    fn remaining_budget(&mut self) -> wasmtime::Result<Remaining> {
        Ok(Remaining {
            tokens: self.budget.remaining_tokens(),
            calls: self.budget.remaining_calls(),
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
                let reserved = stream.reserved.take();
                stream.outcome = Some(outcome.clone());
                if let Some(reservation) = reserved {
                    self.settle(reservation, &outcome);
                }
                outcome.map(|_| None).map_err(|e| self.engine_error(e))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cloister_inference::DeterministicBackend;

    use super::*;
    use crate::bindings::inference::{Budget as WitBudget, Host as _};

    const MODEL: &str = "m";

    fn grant() -> InferenceGrant {
        InferenceGrant {
            models: BTreeSet::from([MODEL.to_owned()]),
            max_tokens_per_call: 8,
            max_tokens_per_request: 12,
            max_calls_per_request: 2,
            max_prompt_bytes: 64,
        }
    }

    fn params(max_tokens: u32) -> Params {
        Params {
            max_tokens,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repeat_penalty: 1.0,
            repeat_penalty_last_n: 0,
            seed: 0,
            stop: Vec::new(),
        }
    }

    /// An instance under `grant` with `time` left, served by the deterministic engine.
    fn instance(grant: Option<InferenceGrant>, time: Duration) -> InferenceInstance {
        let capability = InferenceCapability::new(Arc::new(DeterministicBackend::serving(MODEL)));
        let started = Instant::now();
        capability.instance(InstanceContext {
            plugin: &Arc::from("p"),
            grants: &Arc::new(Grants {
                inference: grant,
                ..Grants::default()
            }),
            started,
            deadline: started + time,
            cancel: &Cancellation::new(),
        })
    }

    fn generate(
        instance: &mut InferenceInstance,
        model: &str,
        max_tokens: u32,
    ) -> Result<Generation, Error> {
        instance
            .generate(
                model.into(),
                Prompt::Text("hello there".into()),
                params(max_tokens),
            )
            .expect("no trap")
    }

    #[test]
    fn the_grant_must_budget_what_it_grants() {
        let granted = BTreeSet::from([INTERFACE.to_owned()]);
        let check =
            |grant: Option<InferenceGrant>| InferenceCapability::check_grant(&grant, &granted);
        assert_eq!(check(Some(grant())), Ok(()));
        assert!(matches!(
            check(None),
            Err(GrantError::MissingSection { .. })
        ));
        let mut wide = grant();
        wide.max_tokens_per_call = 13;
        assert_eq!(
            check(Some(wide)),
            Err(GrantError::BadLimit("max-tokens-per-call"))
        );
        let mut no_calls = grant();
        no_calls.max_calls_per_request = 0;
        assert_eq!(
            check(Some(no_calls)),
            Err(GrantError::BadLimit("max-calls-per-request"))
        );
        // Not imported: the section is not needed.
        assert_eq!(
            InferenceCapability::check_grant(&None, &BTreeSet::new()),
            Ok(())
        );
    }

    #[test]
    fn calls_are_checked_against_the_grant_before_the_engine_runs() {
        let mut inference = instance(Some(grant()), Duration::from_secs(10));
        assert!(matches!(
            generate(&mut inference, "other", 4),
            Err(Error::ModelUnavailable(model)) if model == "other"
        ));
        assert!(matches!(
            generate(&mut inference, MODEL, 9),
            Err(Error::BudgetExceeded(WitBudget::TokensPerCall))
        ));
        let first = generate(&mut inference, MODEL, 8).expect("within budget");
        assert!(first.usage.generated_tokens <= 8);
        let remaining = inference.remaining_budget().expect("no trap");
        assert_eq!(remaining.calls, 1);
        assert_eq!(
            remaining.tokens,
            12 - first.usage.generated_tokens,
            "the unused reservation is returned"
        );
        generate(&mut inference, MODEL, 1).expect("second call");
        assert!(matches!(
            generate(&mut inference, MODEL, 1),
            Err(Error::BudgetExceeded(WitBudget::CallsPerRequest))
        ));
        assert_eq!(
            inference.budget().exceeded(BudgetKind::TokensPerCall),
            Exceeded {
                budget: BudgetKind::TokensPerCall,
                limit: 8,
                used: 9,
            }
        );
    }

    #[test]
    fn without_a_grant_or_time_nothing_runs() {
        let mut ungranted = instance(None, Duration::from_secs(10));
        assert!(matches!(
            generate(&mut ungranted, MODEL, 1),
            Err(Error::ModelUnavailable(_))
        ));
        let mut late = instance(Some(grant()), Duration::ZERO);
        assert!(matches!(
            generate(&mut late, MODEL, 1),
            Err(Error::BudgetExceeded(WitBudget::WallTime))
        ));
        assert_eq!(late.budget().exceeded(BudgetKind::WallTime).limit, 0);
    }

    /// The deterministic engine, counting the embed calls that reach it.
    struct CountingEmbeds {
        inner: DeterministicBackend,
        embeds: std::sync::atomic::AtomicUsize,
    }

    impl InferenceBackend for CountingEmbeds {
        fn name(&self) -> &str {
            self.inner.name()
        }

        fn models(&self) -> Vec<cloister_inference::ModelInfo> {
            self.inner.models()
        }

        fn identity(&self) -> cloister_inference::EngineIdentity {
            self.inner.identity()
        }

        fn generate(
            &self,
            request: &GenerateRequest,
            on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
        ) -> Result<EngineGeneration, InferenceError> {
            self.inner.generate(request, on_token)
        }

        fn embed(&self, request: &EmbedRequest) -> Result<Vec<Vec<f32>>, InferenceError> {
            self.embeds
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(request.texts.iter().map(|_| vec![1.0]).collect())
        }
    }

    #[test]
    fn an_embed_call_over_budget_is_refused_and_computes_nothing() {
        let engine = Arc::new(CountingEmbeds {
            inner: DeterministicBackend::serving(MODEL),
            embeds: std::sync::atomic::AtomicUsize::new(0),
        });
        let computed = || engine.embeds.load(std::sync::atomic::Ordering::Relaxed);
        let instance = |time: Duration| {
            let started = Instant::now();
            InferenceCapability::new(engine.clone()).instance(InstanceContext {
                plugin: &Arc::from("p"),
                grants: &Arc::new(Grants {
                    inference: Some(grant()),
                    ..Grants::default()
                }),
                started,
                deadline: started + time,
                cancel: &Cancellation::new(),
            })
        };
        let embed = |inference: &mut InferenceInstance, texts: Vec<String>| {
            inference.embed(MODEL.into(), texts).expect("no trap")
        };
        let mut inference = instance(Duration::from_secs(10));
        // 65 bytes of text where the grant allows 64 per call.
        assert!(matches!(
            embed(&mut inference, vec!["a".repeat(40), "b".repeat(25)]),
            Err(Error::BudgetExceeded(WitBudget::PromptBytes))
        ));
        // More texts than one call may carry, each of them tiny.
        assert!(matches!(
            embed(&mut inference, vec![String::new(); MAX_EMBED_TEXTS + 1]),
            Err(Error::InvalidRequest(_))
        ));
        assert_eq!(computed(), 0);
        assert_eq!(
            inference.remaining_budget().expect("no trap").calls,
            2,
            "refused calls are not counted"
        );
        // Two calls are granted: embedding spends them as generation does.
        embed(&mut inference, vec!["hello".into()]).expect("first call");
        generate(&mut inference, MODEL, 1).expect("second call");
        assert!(matches!(
            embed(&mut inference, vec!["hello".into()]),
            Err(Error::BudgetExceeded(WitBudget::CallsPerRequest))
        ));
        assert_eq!(computed(), 1);
        // Out of wall time: refused before the engine sees it.
        let mut late = instance(Duration::ZERO);
        assert!(matches!(
            embed(&mut late, vec!["hello".into()]),
            Err(Error::BudgetExceeded(WitBudget::WallTime))
        ));
        assert_eq!(computed(), 1, "no refused call reached the engine");
    }

    #[test]
    fn sampling_parameters_out_of_range_are_refused() {
        let mut inference = instance(Some(grant()), Duration::from_secs(10));
        for bad in [
            Params {
                temperature: f32::NAN,
                ..params(1)
            },
            Params {
                top_p: 0.0,
                ..params(1)
            },
            Params {
                stop: vec![String::new()],
                ..params(1)
            },
        ] {
            let refused = inference
                .generate(MODEL.into(), Prompt::Text("hi".into()), bad)
                .expect("no trap");
            assert!(matches!(refused, Err(Error::InvalidRequest(_))));
        }
        assert_eq!(inference.remaining_budget().expect("no trap").calls, 2);
    }
}
