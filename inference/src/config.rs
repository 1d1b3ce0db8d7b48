//! Engine configuration, read from the host's TOML file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when the crate is built with the `cuda` feature and a GPU answers, else CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// CUDA; falls back to the CPU with a warning when it is unavailable.
    Cuda,
}

/// How the quantized matrices are kept in memory once loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// In the file's own format. Q8_0 and Q4_1 matrices are repacked for the
    /// engine's kernels ([`crate::qgemm`]) in as many bytes; other formats
    /// run through candle's kernels.
    #[default]
    AsStored,
    /// Q4_0/Q4_1/Q5_x matrices re-encoded as Q8_0 at load time: for files
    /// in formats the engine has no kernel for (Q4_0, Q5_x), at about 1.7x
    /// the weight memory of Q4_1. Q8_0 represents every 4/5-bit value to
    /// within half a step of 1/127 of the block's range, far below the
    /// quantisation error already in the file.
    Q8_0,
}

/// Configuration of a [`crate::CandleBackend`].
///
/// Every field has a default, so an empty `[inference]` table works with the
/// model fetched by `inference/fetch-model.sh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CandleConfig {
    /// Directory holding the model; opened read-only through `cap-std`, and
    /// nothing outside it can be reached.
    pub model_dir: PathBuf,
    /// GGUF file name inside `model_dir` (a plain name: no `/`, no `..`).
    pub model_file: String,
    /// Name plugins use to ask for this model (must match their manifests).
    pub model_name: String,
    /// CPU threads for the engine's own thread pool; 0 means one per core.
    pub threads: usize,
    /// Sequences decoded together in one batch; more wait in the queue.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a batch slot; past it callers get `Busy`.
    pub queue_depth: usize,
    /// Longest prompt plus generation, in tokens (capped at the model's own context).
    pub context_tokens: u32,
    /// Prompt tokens processed per engine step, so that a long prompt delays
    /// the streams already decoding by one chunk at a time, not all at once.
    pub prefill_chunk: usize,
    /// Device selection.
    pub device: DeviceChoice,
    /// In-memory weight format.
    pub weights: WeightFormat,
}

impl CandleConfig {
    /// The model the project ships with (see `inference/fetch-model.sh`).
    pub const DEFAULT_MODEL_FILE: &'static str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    /// The name plugin manifests use for it.
    pub const DEFAULT_MODEL_NAME: &'static str = "smollm2-135m-instruct";
}

impl Default for CandleConfig {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::from("target/models"),
            model_file: Self::DEFAULT_MODEL_FILE.to_owned(),
            model_name: Self::DEFAULT_MODEL_NAME.to_owned(),
            threads: 0,
            max_concurrent: 8,
            queue_depth: 32,
            context_tokens: 2048,
            prefill_chunk: 128,
            device: DeviceChoice::Auto,
            weights: WeightFormat::AsStored,
        }
    }
}
