//! Cloister's inference engine: quantized GGUF language models on
//! [candle](https://github.com/huggingface/candle), served to many plugins at
//! once through [`cloister_inference::InferenceBackend`].
//!
//! It is a separate crate, outside the host, because the host library only
//! knows the trait: the `cloister-host` binary links this engine, tests that
//! want the real model link it, and the separate inference CVM will run it
//! on its own. Everything else builds and tests without candle.
//!
//! # Main types
//!
//! * [`CandleBackend`]: the engine; [`CandleConfig`] its configuration (the
//!   host's `[inference]` table, every field defaulted); [`LoadError`] why it
//!   could not start.
//! * [`model`] and [`scheduler`]: the forward pass and continuous batching
//!   (a private `sampling` module picks each next token);
//!   [`qgemm`] the packed Q8_0 / Q4_1 matrix kernels; [`text`] the
//!   tokenizer and chat template; [`stop`] stop-sequence matching.
//!
//! # How it works
//!
//! * **One copy of the weights.** [`CandleBackend`] loads the model once, from
//!   a directory opened read-only through `cap-std` (nothing outside it is
//!   reachable), and every request shares it.
//! * **Continuous batching.** Requests join a running batch at the next step
//!   and leave it as soon as they finish; each forward pass carries a chunk of
//!   every new prompt plus the next token of every decoding sequence, so
//!   throughput grows with load.
//! * **Bounded.** At most `max_concurrent` sequences decode together and
//!   `queue_depth` wait; past that, callers get [`InferenceError::Busy`] at once.
//! * **The contract.** `max_tokens`, stop sequences (never streamed, not even in
//!   part), deadlines, cancellation from the token callback, and exact token
//!   counts, as [`cloister_inference`] specifies. Budgets across calls are the
//!   host's business.
//! * **Faithful tokenisation.** The tokenizer is rebuilt from the GGUF metadata
//!   with llama.cpp's pre-tokenizer for the model, and the chat template is
//!   applied natively with message contents tokenised literally, so a user
//!   cannot forge a turn by typing `<|im_end|>`.
//!
//! CPU speed depends on building with AVX2/FMA/F16C: see `inference/README.md`.
//!
//! # Cargo features
//!
//! * `cuda`: use candle's CUDA device when a GPU answers, falling back to the
//!   CPU with a warning (`device = "cpu"` never tries). Building it needs
//!   `nvcc`; it is off by default.
//! * `reference`: the tests also run candle-transformers' Qwen3 on the
//!   synthetic models of `tests/it/qwen3.rs` and check (or, with
//!   `CLOISTER_RECORD_REFERENCE=1`, rewrite) the logits recorded from it,
//!   which the engine is compared with in every run. Off by default: the
//!   engine needs nothing of candle-transformers.
//!
//! # Example
//!
//! The configuration, and the typed error when the model is not there:
//!
//! ```rust
//! use cloister_inference_candle::{CandleBackend, CandleConfig, LoadError};
//!
//! let config: CandleConfig = toml::from_str(
//!     r#"
//!     model_dir = "/nonexistent/models"
//!     max_concurrent = 4
//!     "#,
//! )?;
//! assert_eq!(config.model_name, CandleConfig::DEFAULT_MODEL_NAME);
//! assert!(matches!(CandleBackend::load(&config), Err(LoadError::ModelDir { .. })));
//! # Ok::<(), toml::de::Error>(())
//! ```
//!
//! Generation with the shipped model (fetched by `inference/fetch-model.sh`
//! into `target/models`; not run as a doc test because it needs the model):
//!
//! ```rust,no_run
//! use std::ops::ControlFlow;
//!
//! use cloister_inference::{ChatMessage, GenerateRequest, InferenceBackend, Prompt, Role, SamplingParams};
//! use cloister_inference_candle::{CandleBackend, CandleConfig};
//!
//! let engine = CandleBackend::load(&CandleConfig::default())?;
//! let request = GenerateRequest {
//!     model: CandleConfig::DEFAULT_MODEL_NAME.into(),
//!     prompt: Prompt::Chat(vec![ChatMessage { role: Role::User, content: "Say hello.".into() }]),
//!     params: SamplingParams { max_tokens: 16, ..SamplingParams::default() },
//!     deadline: None,
//! };
//! let generation = engine.generate(&request, &mut |piece| {
//!     print!("{piece}");
//!     ControlFlow::Continue(())
//! })?;
//! println!("\n{} tokens", generation.usage.generated_tokens);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod model;
pub mod qgemm;
mod sampling;
pub mod scheduler;
pub mod stop;
pub mod text;

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::gguf_file;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use cloister_inference::{
    EmbedRequest, EngineIdentity, FinishReason, GenerateRequest, Generation, InferenceBackend,
    InferenceError, ModelInfo, Prompt, Usage,
};
use sha2::{Digest as _, Sha256};

pub use config::{CandleConfig, DeviceChoice, WeightFormat};
pub use scheduler::SchedulerStats;

use model::LlamaModel;
use scheduler::{Event, Job, Limits, Scheduler, Task};
use stop::{Scan, StopMatcher};
use text::{Detokenizer, TextCodec};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration is unusable.
    #[error("invalid inference configuration: {0}")]
    Config(String),
    /// The model directory could not be opened.
    #[error("cannot open model directory {path}: {source}")]
    ModelDir {
        /// The configured directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model file could not be opened inside the model directory.
    #[error("cannot open model file `{name}` in the model directory: {source}")]
    ModelFile {
        /// The configured file name.
        name: String,
        /// The cause (a name escaping the directory is refused here too).
        source: std::io::Error,
    },
    /// The file is not a GGUF model this engine can run.
    #[error("cannot load model `{name}`: {reason}")]
    Model {
        /// The configured file name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// The tokenizer or chat template could not be built from the metadata.
    #[error(transparent)]
    Text(#[from] text::TextError),
    /// Threads could not be started.
    #[error("cannot start engine threads: {0}")]
    Threads(String),
}

/// The candle inference engine. Cheap to share behind an `Arc`; dropping it
/// stops the engine thread and frees the weights.
pub struct CandleBackend {
    name: String,
    model_name: String,
    identity: EngineIdentity,
    context_tokens: u32,
    codec: Arc<TextCodec>,
    scheduler: Scheduler,
}

impl std::fmt::Debug for CandleBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleBackend")
            .field("name", &self.name)
            .field("model_name", &self.model_name)
            .field("context_tokens", &self.context_tokens)
            .finish_non_exhaustive()
    }
}

impl CandleBackend {
    /// The identity an engine loaded with `config` has, computed from the
    /// model file without loading it (what `cloister-host measure` prints).
    pub fn identity_of(config: &CandleConfig) -> Result<EngineIdentity, LoadError> {
        validate(config)?;
        let dir = open_model_dir(config)?;
        let bytes = read_model(&dir, &config.model_file)?;
        Ok(identity(config, &bytes))
    }

    /// Opens `config.model_dir` read-only and loads the model from it.
    pub fn load(config: &CandleConfig) -> Result<Self, LoadError> {
        Self::load_from_dir(&open_model_dir(config)?, config)
    }

    /// Loads `config.model_file` from `dir`, a handle the host opened (and
    /// which confines every read); `config.model_dir` is not used.
    ///
    /// The file is read into memory once and the weights are taken from
    /// those bytes, so [`InferenceBackend::identity`] names exactly the
    /// weights in use even if the file changes meanwhile (at the cost of the
    /// file's size in memory while loading).
    pub fn load_from_dir(dir: &Dir, config: &CandleConfig) -> Result<Self, LoadError> {
        validate(config)?;
        warn_if_cpu_features_unused();
        let name = config.model_file.clone();
        // candle appends a backtrace to its message when RUST_BACKTRACE is
        // set; the operator needs the message, which is its first line.
        let model_error = |e: candle_core::Error| LoadError::Model {
            name: name.clone(),
            reason: e.to_string().lines().next().unwrap_or_default().to_owned(),
        };
        let started = Instant::now();
        let bytes = read_model(dir, &name)?;
        let identity = identity(config, &bytes);
        let size = bytes.len() as u64;
        tracing::info!(file = %name, bytes = size, "loading model");
        let mut reader = Progress::new(Cursor::new(bytes), size);
        let content = gguf_file::Content::read(&mut reader).map_err(model_error)?;
        let (device, device_name) = select_device(config.device);
        // The architecture first: a model the engine cannot compute is
        // refused as such whatever its tokenizer.
        let model = LlamaModel::load(&content, &mut reader, &device, config.weights)
            .map_err(model_error)?;
        let codec = Arc::new(TextCodec::from_gguf(&content)?);
        let hyper = model.hyperparameters();
        let context_tokens = config
            .context_tokens
            .min(u32::try_from(hyper.context_length).unwrap_or(u32::MAX));
        tracing::info!(
            file = %name,
            architecture = %hyper.architecture,
            layers = hyper.layers,
            device = device_name,
            weights = ?config.weights,
            context_tokens,
            seconds = started.elapsed().as_secs_f32(),
            "model loaded"
        );
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            config.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("candle-{i}"))
            .build()
            .map_err(|e| LoadError::Threads(e.to_string()))?;
        let limits = Limits {
            max_concurrent: config.max_concurrent,
            queue_depth: config.queue_depth,
            prefill_chunk: config.prefill_chunk,
        };
        let scheduler = Scheduler::start(Arc::new(model), Arc::clone(&codec), limits, pool)
            .map_err(|e| LoadError::Threads(e.to_string()))?;
        Ok(Self {
            name: format!("candle-{device_name}"),
            model_name: config.model_name.clone(),
            identity,
            context_tokens,
            codec,
            scheduler,
        })
    }

    /// Scheduler counters (batching, queueing, tokens) since start.
    pub fn stats(&self) -> SchedulerStats {
        self.scheduler.stats()
    }

    /// The tokenizer and chat format, for diagnostics and parity tests.
    pub fn codec(&self) -> &TextCodec {
        &self.codec
    }

    fn prompt_tokens(&self, prompt: &Prompt) -> Result<Vec<u32>, InferenceError> {
        let tokens = match prompt {
            Prompt::Text(text) => self.codec.encode_literal(text),
            Prompt::Chat(messages) => self.codec.encode_chat(messages),
        }
        .map_err(|e| InferenceError::Engine(e.to_string()))?;
        let empty = match prompt {
            Prompt::Text(text) => text.trim().is_empty(),
            Prompt::Chat(messages) => messages.iter().all(|m| m.content.trim().is_empty()),
        };
        if empty {
            return Err(InferenceError::InvalidRequest("prompt has no text".into()));
        }
        if tokens.len() >= self.context_tokens as usize {
            return Err(InferenceError::InvalidRequest(format!(
                "prompt of {} tokens does not fit the context of {} tokens",
                tokens.len(),
                self.context_tokens
            )));
        }
        Ok(tokens)
    }

    /// Queues `task` and returns the channel of its events, and the flag
    /// that withdraws it once dropped.
    fn submit(
        &self,
        task: Task,
        deadline: Option<Instant>,
    ) -> Result<(mpsc::Receiver<Event>, Withdraw), InferenceError> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(InferenceError::DeadlineExceeded);
        }
        let (events, receiver) = mpsc::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        self.scheduler.submit(Job {
            task,
            deadline,
            cancelled: Arc::clone(&cancelled),
            events,
        })?;
        Ok((receiver, Withdraw(cancelled)))
    }
}

/// The next event of a job, waiting until `deadline` at most.
fn next_event(
    receiver: &mpsc::Receiver<Event>,
    deadline: Option<Instant>,
) -> Result<Event, InferenceError> {
    let event = match deadline {
        Some(deadline) => receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())),
        None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    match event {
        Ok(Event::Failed(reason)) => Err(InferenceError::Engine(reason)),
        Ok(event) => Ok(event),
        Err(RecvTimeoutError::Timeout) => Err(InferenceError::DeadlineExceeded),
        // The engine drops a job whose deadline passed, which can close the
        // channel before the wait above times out.
        Err(RecvTimeoutError::Disconnected) if deadline.is_some_and(|d| Instant::now() >= d) => {
            Err(InferenceError::DeadlineExceeded)
        }
        Err(RecvTimeoutError::Disconnected) => {
            Err(InferenceError::Engine("the engine stopped".into()))
        }
    }
}

fn validate(config: &CandleConfig) -> Result<(), LoadError> {
    let problem = if config.max_concurrent == 0 {
        "max_concurrent must be at least 1"
    } else if config.prefill_chunk == 0 {
        "prefill_chunk must be at least 1"
    } else if config.context_tokens < 2 {
        "context_tokens must be at least 2"
    } else {
        return Ok(());
    };
    Err(LoadError::Config(problem.into()))
}

fn validate_params(request: &GenerateRequest) -> Result<(), InferenceError> {
    let p = &request.params;
    let problem = if !(p.temperature.is_finite() && p.temperature >= 0.0) {
        "temperature must be a finite number >= 0"
    } else if !(p.top_p > 0.0 && p.top_p <= 1.0) {
        "top_p must be in (0, 1]"
    } else if !(p.repeat_penalty.is_finite() && p.repeat_penalty > 0.0) {
        "repeat_penalty must be a finite number > 0"
    } else {
        return Ok(());
    };
    Err(InferenceError::InvalidRequest(problem.into()))
}

/// `config.model_dir`, opened read-only.
fn open_model_dir(config: &CandleConfig) -> Result<Dir, LoadError> {
    Dir::open_ambient_dir(&config.model_dir, ambient_authority()).map_err(|source| {
        LoadError::ModelDir {
            path: config.model_dir.clone(),
            source,
        }
    })
}

/// The whole model file `name` inside `dir`.
fn read_model(dir: &Dir, name: &str) -> Result<Vec<u8>, LoadError> {
    let model_file = |source| LoadError::ModelFile {
        name: name.to_owned(),
        source,
    };
    let mut file = dir.open(name).map_err(model_file)?.into_std();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(model_file)?;
    Ok(bytes)
}

/// The identity of an engine running `model` under `config`: every setting
/// but the paths, and the model's SHA-256.
fn identity(config: &CandleConfig, model: &[u8]) -> EngineIdentity {
    let CandleConfig {
        model_dir: _,
        model_file: _,
        model_name,
        threads,
        max_concurrent,
        queue_depth,
        context_tokens,
        prefill_chunk,
        device,
        weights,
    } = config;
    let settings = serde_json::json!({
        "backend": "candle",
        "model_name": model_name,
        "threads": threads,
        "max_concurrent": max_concurrent,
        "queue_depth": queue_depth,
        "context_tokens": context_tokens,
        "prefill_chunk": prefill_chunk,
        "device": device,
        "weights": weights,
    });
    EngineIdentity {
        weights: Some(Sha256::digest(model).into()),
        settings: settings.to_string(),
    }
}

impl InferenceBackend for CandleBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> EngineIdentity {
        self.identity.clone()
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![ModelInfo {
            name: self.model_name.clone(),
            context_tokens: self.context_tokens,
            embeddings: true,
        }]
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, InferenceError> {
        if request.model != self.model_name {
            return Err(InferenceError::ModelUnavailable(request.model.clone()));
        }
        validate_params(request)?;
        let prompt = self.prompt_tokens(&request.prompt)?;
        let usage = Usage {
            prompt_tokens: prompt.len() as u32,
            generated_tokens: 0,
        };
        let room = self.context_tokens - usage.prompt_tokens;
        let mut params = request.params.clone();
        params.max_tokens = params.max_tokens.min(room);
        if params.max_tokens == 0 {
            return Ok(Generation {
                text: String::new(),
                usage,
                finish: FinishReason::Length,
            });
        }
        let mut stops = StopMatcher::new(&params.stop);
        // Whatever way this call ends, dropping `_withdraw` makes the engine
        // drop the sequence.
        let (receiver, _withdraw) =
            self.submit(Task::Generate { prompt, params }, request.deadline)?;
        let mut stream = Stream {
            usage,
            text: String::new(),
            detokenizer: Detokenizer::default(),
        };
        loop {
            let finish = match next_event(&receiver, request.deadline)? {
                Event::Token(id) => {
                    stream.usage.generated_tokens += 1;
                    let piece = stream
                        .detokenizer
                        .push(&self.codec, id)
                        .map_err(|e| InferenceError::Engine(e.to_string()))?;
                    match stops.push(&piece) {
                        Scan::Emit(piece) => stream
                            .emit(&piece, on_token)
                            .is_break()
                            .then_some(FinishReason::Cancelled),
                        Scan::Stop(piece) => {
                            // Generation ends here whatever the callback says.
                            let _ = stream.emit(&piece, on_token);
                            Some(FinishReason::StopSequence)
                        }
                    }
                }
                end @ (Event::EndOfSequence | Event::Length) => {
                    let _ = stream.emit(
                        &std::mem::replace(&mut stops, StopMatcher::new(&[])).finish(),
                        on_token,
                    );
                    Some(if end == Event::Length {
                        FinishReason::Length
                    } else {
                        FinishReason::EndOfSequence
                    })
                }
                Event::Embeddings(_) | Event::Failed(_) => {
                    return Err(InferenceError::Engine(
                        "the engine answered a generation with embeddings".into(),
                    ));
                }
            };
            if let Some(finish) = finish {
                return Ok(Generation {
                    text: stream.text,
                    usage: stream.usage,
                    finish,
                });
            }
        }
    }

    /// Each text tokenised literally (no chat template, no special
    /// tokens) and run through the model as a prompt; its final-normed
    /// hidden states are averaged over its tokens and scaled to unit length.
    fn embed(&self, request: &EmbedRequest) -> Result<Vec<Vec<f32>>, InferenceError> {
        if request.model != self.model_name {
            return Err(InferenceError::ModelUnavailable(request.model.clone()));
        }
        let texts = request
            .texts
            .iter()
            .map(|text| self.prompt_tokens(&Prompt::Text(text.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (receiver, _withdraw) = self.submit(Task::Embed { texts }, request.deadline)?;
        match next_event(&receiver, request.deadline)? {
            Event::Embeddings(vectors) => Ok(vectors),
            _ => Err(InferenceError::Engine(
                "the engine answered an embedding with tokens".into(),
            )),
        }
    }
}

/// The caller's side of one generation.
struct Stream {
    usage: Usage,
    text: String,
    detokenizer: Detokenizer,
}

impl Stream {
    fn emit(
        &mut self,
        piece: &str,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if piece.is_empty() {
            return ControlFlow::Continue(());
        }
        self.text.push_str(piece);
        on_token(piece)
    }
}

/// Withdraws a job from the engine when dropped.
struct Withdraw(Arc<AtomicBool>);

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Logs loading progress at every quarter of the file.
struct Progress<R> {
    inner: R,
    size: u64,
    position: u64,
    next_report: u64,
}

impl<R> Progress<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            size,
            position: 0,
            next_report: size / 4,
        }
    }

    fn advance(&mut self, position: u64) {
        self.position = position;
        if self.size > 0 && position >= self.next_report && self.next_report < self.size {
            tracing::info!(percent = position * 100 / self.size, "loading model");
            self.next_report = (position / (self.size / 4).max(1) + 1) * (self.size / 4).max(1);
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.advance(self.position + n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Progress<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let position = self.inner.seek(pos)?;
        self.position = position;
        Ok(position)
    }
}

/// The device for `choice`, and its short name.
fn select_device(choice: DeviceChoice) -> (Device, &'static str) {
    #[cfg(feature = "cuda")]
    if choice != DeviceChoice::Cpu {
        match Device::new_cuda(0) {
            Ok(device) => return (device, "cuda"),
            Err(e) => tracing::warn!(error = %e, "no usable CUDA device; running on the CPU"),
        }
    }
    #[cfg(not(feature = "cuda"))]
    if choice == DeviceChoice::Cuda {
        tracing::warn!("built without the `cuda` feature; running on the CPU");
    }
    (Device::Cpu, "cpu")
}

/// candle's fast CPU kernels are chosen at compile time; say so when this
/// build leaves the CPU's AVX2/FMA/F16C unused (about 4x slower).
fn warn_if_cpu_features_unused() {
    #[cfg(target_arch = "x86_64")]
    if !cfg!(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )) && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        tracing::warn!(
            "this build does not use the CPU's AVX2/FMA/F16C: inference runs several times \
             slower (the repository's .cargo/config.toml enables them; was RUSTFLAGS overridden?)"
        );
    }
}
