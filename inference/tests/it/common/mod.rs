//! Shared set-up for the tests that run the real model.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::Tensor;

use cloister_inference::{ChatMessage, GenerateRequest, Prompt, Role, SamplingParams};
use cloister_inference_candle::{CandleBackend, CandleConfig};

/// The model directory: `$CLOISTER_MODEL_DIR`, or `<repo>/target/models`.
pub fn model_dir() -> PathBuf {
    std::env::var_os("CLOISTER_MODEL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/models"),
        PathBuf::from,
    )
}

/// A configuration for the shipped model, one thread, panicking with the
/// install command when the model is missing (these tests never skip).
pub fn config() -> CandleConfig {
    let dir = model_dir();
    let file = dir.join(CandleConfig::DEFAULT_MODEL_FILE);
    assert!(
        file.is_file(),
        "model file {} is missing: run `inference/fetch-model.sh` (or set CLOISTER_MODEL_DIR)",
        file.display()
    );
    CandleConfig {
        model_dir: dir,
        threads: 1,
        ..CandleConfig::default()
    }
}

/// The backend with `tweak` applied to the test configuration.
pub fn backend_with(tweak: impl FnOnce(&mut CandleConfig)) -> CandleBackend {
    let mut config = config();
    tweak(&mut config);
    CandleBackend::load(&config).expect("load the model")
}

/// A one-question chat.
pub fn chat(question: &str) -> Prompt {
    Prompt::Chat(vec![ChatMessage {
        role: Role::User,
        content: question.into(),
    }])
}

/// A greedy request for `prompt` with at most `max_tokens` tokens.
pub fn request(prompt: Prompt, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: CandleConfig::DEFAULT_MODEL_NAME.into(),
        prompt,
        params: SamplingParams {
            max_tokens,
            ..SamplingParams::default()
        },
        deadline: None,
    }
}

/// The largest absolute difference between two vectors of the same length.
pub fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .expect("sub")
        .abs()
        .expect("abs")
        .max(0)
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar")
}
