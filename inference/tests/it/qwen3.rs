//! Qwen3: the engine's forward pass agrees with candle-transformers'
//! reference implementation on a small synthetic model, and files the engine
//! cannot compute are refused at load.
//!
//! No Qwen3 model ships here, so the tests write a seeded random GGUF with
//! the layout llama.cpp gives Qwen3 (per-head RMSNorm on queries and keys,
//! no biases, split-half RoPE).

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, IndexOp, Tensor};
use candle_transformers::models::quantized_qwen3;

use crate::common;
use cloister_inference_candle::model::{LlamaModel, Segment};
use cloister_inference_candle::{CandleBackend, CandleConfig, LoadError, WeightFormat};

/// The shape of a synthetic model.
#[derive(Clone, Copy)]
struct Shape {
    layers: usize,
    embedding: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ffn: usize,
    vocab: usize,
    /// Whether the output layer reuses the token embeddings.
    tied: bool,
    /// Format of the embeddings and matrices (norms are always F32).
    matrices: GgmlDType,
}

/// `head_dim` equals `embedding / heads`, with a separate output layer.
const NARROW: Shape = Shape {
    layers: 3,
    embedding: 64,
    heads: 4,
    kv_heads: 2,
    head_dim: 16,
    ffn: 96,
    vocab: 50,
    tied: false,
    matrices: GgmlDType::F32,
};

/// `NARROW` in Q8_0, which the engine runs through its own kernels.
const NARROW_Q8_0: Shape = Shape {
    matrices: GgmlDType::Q8_0,
    ..NARROW
};

/// As Qwen3-0.6B: `heads * head_dim` is twice `embedding`, tied output.
const WIDE: Shape = Shape {
    layers: 2,
    embedding: 32,
    heads: 4,
    kv_heads: 2,
    head_dim: 16,
    ffn: 64,
    vocab: 48,
    tied: true,
    matrices: GgmlDType::F32,
};

const TOKENS: [u32; 9] = [3, 17, 42, 8, 8, 25, 1, 39, 12];

/// Seeded uniform values (xorshift64*), so every run builds the same model.
struct Rng {
    state: u64,
    /// Format of the matrices made.
    matrices: GgmlDType,
}

impl Rng {
    fn uniform(&mut self, low: f32, high: f32) -> f32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        low + (high - low) * (bits as f32 / (1u64 << 24) as f32)
    }

    fn tensor(&mut self, dims: &[usize], low: f32, high: f32, dtype: GgmlDType) -> QTensor {
        let count = dims.iter().product();
        let values: Vec<f32> = (0..count).map(|_| self.uniform(low, high)).collect();
        let tensor = Tensor::from_vec(values, dims, &Device::Cpu).expect("tensor");
        QTensor::quantize(&tensor, dtype).expect("quantize")
    }

    /// A matrix mapping `cols` inputs to `rows` outputs, scaled to keep
    /// activations near unit size.
    fn matrix(&mut self, rows: usize, cols: usize) -> QTensor {
        let bound = (3.0 / cols as f32).sqrt();
        self.tensor(&[rows, cols], -bound, bound, self.matrices)
    }

    /// Norm weights away from one, so that a skipped norm shows.
    fn norm(&mut self, width: usize) -> QTensor {
        self.tensor(&[width], 0.3, 1.7, GgmlDType::F32)
    }
}

/// Departures from the qwen3 layout.
#[derive(Default)]
struct Variant<'a> {
    /// Tensors whose names contain one of these are left out.
    omit: &'a [&'a str],
    /// Tensors added (small vectors).
    extra_tensors: &'a [&'a str],
    /// Metadata added, keys without the architecture prefix.
    extra_metadata: &'a [(&'a str, Value)],
}

/// Writes an `architecture` GGUF of `shape` to `path`.
fn write_model(path: &Path, architecture: &str, shape: Shape, variant: &Variant<'_>) {
    let mut rng = Rng {
        state: 0x5eed_0fc1_0157_e5e5,
        matrices: shape.matrices,
    };
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            rng.tensor(&[shape.vocab, shape.embedding], -1.0, 1.0, shape.matrices),
        ),
        ("output_norm.weight".into(), rng.norm(shape.embedding)),
    ];
    if !shape.tied {
        tensors.push((
            "output.weight".into(),
            rng.matrix(shape.vocab, shape.embedding),
        ));
    }
    let q_width = shape.heads * shape.head_dim;
    let kv_width = shape.kv_heads * shape.head_dim;
    for i in 0..shape.layers {
        let p = format!("blk.{i}");
        tensors.extend([
            (format!("{p}.attn_norm.weight"), rng.norm(shape.embedding)),
            (
                format!("{p}.attn_q.weight"),
                rng.matrix(q_width, shape.embedding),
            ),
            (
                format!("{p}.attn_k.weight"),
                rng.matrix(kv_width, shape.embedding),
            ),
            (
                format!("{p}.attn_v.weight"),
                rng.matrix(kv_width, shape.embedding),
            ),
            (
                format!("{p}.attn_output.weight"),
                rng.matrix(shape.embedding, q_width),
            ),
            (format!("{p}.attn_q_norm.weight"), rng.norm(shape.head_dim)),
            (format!("{p}.attn_k_norm.weight"), rng.norm(shape.head_dim)),
            (format!("{p}.ffn_norm.weight"), rng.norm(shape.embedding)),
            (
                format!("{p}.ffn_gate.weight"),
                rng.matrix(shape.ffn, shape.embedding),
            ),
            (
                format!("{p}.ffn_up.weight"),
                rng.matrix(shape.ffn, shape.embedding),
            ),
            (
                format!("{p}.ffn_down.weight"),
                rng.matrix(shape.embedding, shape.ffn),
            ),
        ]);
    }
    for name in variant.extra_tensors {
        tensors.push(((*name).into(), rng.norm(shape.head_dim / 2)));
    }
    tensors.retain(|(name, _)| !variant.omit.iter().any(|part| name.contains(part)));

    let key = |suffix: &str| format!("{architecture}.{suffix}");
    let count = |n: usize| Value::U32(u32::try_from(n).expect("small"));
    let mut metadata: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            Value::String(architecture.into()),
        ),
        // candle-transformers builds its RoPE tables in f16 unless told f32.
        ("general.dtype".into(), Value::U32(0)),
        (key("block_count"), count(shape.layers)),
        (key("context_length"), count(128)),
        (key("embedding_length"), count(shape.embedding)),
        (key("feed_forward_length"), count(shape.ffn)),
        (key("attention.head_count"), count(shape.heads)),
        (key("attention.head_count_kv"), count(shape.kv_heads)),
        (key("attention.key_length"), count(shape.head_dim)),
        (key("attention.value_length"), count(shape.head_dim)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        (key("rope.freq_base"), Value::F32(1_000_000.0)),
    ];
    metadata.extend(
        variant
            .extra_metadata
            .iter()
            .map(|(suffix, value)| (key(suffix), value.clone())),
    );
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = File::create(path).expect("create gguf");
    gguf_file::write(&mut file, &metadata, &tensors).expect("write gguf");
}

fn write_qwen3(dir: &Path, shape: Shape) -> PathBuf {
    let path = dir.join("qwen3.gguf");
    write_model(&path, "qwen3", shape, &Variant::default());
    path
}

fn load_ours(path: &Path) -> candle_core::Result<LlamaModel> {
    let mut file = File::open(path).expect("open gguf");
    let content = gguf_file::Content::read(&mut file).expect("read gguf");
    LlamaModel::load(&content, &mut file, &Device::Cpu, WeightFormat::default())
}

fn load_reference(path: &Path) -> quantized_qwen3::ModelWeights {
    let mut file = File::open(path).expect("open gguf");
    let content = gguf_file::Content::read(&mut file).expect("read gguf");
    quantized_qwen3::ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
        .expect("reference loads")
}

fn spread(logits: &Tensor) -> f32 {
    let max = logits.max(0).expect("max").to_scalar::<f32>().expect("max");
    let min = logits.min(0).expect("min").to_scalar::<f32>().expect("min");
    max - min
}

/// Runs the prompt then two decode steps through both implementations and
/// asserts that the next-token logits after each differ by less than
/// `tolerance`.
fn assert_matches_reference(shape: Shape, tolerance: f32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_qwen3(dir.path(), shape);
    let ours = load_ours(&path).expect("the engine loads qwen3");
    let mut reference = load_reference(&path);

    let mut cache = ours.new_cache();
    let mut fed: &[u32] = &TOKENS[..6];
    let mut offset = 0;
    for step in 0..3 {
        let logits = ours
            .forward(&mut [Segment {
                tokens: fed,
                cache: &mut cache,
                wants_logits: true,
                wants_hidden: false,
            }])
            .expect("forward")
            .expect("logits")
            .i(0)
            .expect("row");
        let input = Tensor::new(fed, &Device::Cpu)
            .expect("ids")
            .unsqueeze(0)
            .expect("batch");
        let expected = reference
            .forward(&input, offset)
            .expect("reference forward")
            .i(0)
            .expect("row");
        assert!(spread(&expected) > 1.0, "logits too flat to compare");
        let diff = common::max_difference(&logits, &expected);
        assert!(
            diff < tolerance,
            "step {step}: largest logit difference {diff} (logits span {})",
            spread(&expected)
        );
        offset += fed.len();
        fed = &TOKENS[6 + step..7 + step];
    }
    assert_eq!(cache.len(), 8);
}

#[test]
fn qwen3_logits_match_candle_transformers() {
    // Both sides run in f32: only summation order separates them (measured
    // 1e-6 on logits spanning 6).
    assert_matches_reference(NARROW, 1e-3);
}

#[test]
fn qwen3_with_heads_wider_than_the_embedding_matches_candle_transformers() {
    assert_matches_reference(WIDE, 1e-3);
}

#[test]
fn qwen3_in_q8_0_matches_candle_transformers() {
    // Both quantize activations to Q8_0 the same way (measured 2e-7); the
    // margin is for other CPUs' kernels summing in another order.
    assert_matches_reference(NARROW_Q8_0, 1e-3);
}

/// Why an `architecture` model of the `NARROW` shape with `variant` is
/// refused, through the engine's loader and through [`CandleBackend::load`]
/// (the first line: candle appends a backtrace when `RUST_BACKTRACE` is set).
fn refusal(architecture: &str, variant: &Variant<'_>) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = format!("{architecture}.gguf");
    let path = dir.path().join(&file);
    write_model(&path, architecture, NARROW, variant);
    let first_line = |message: String| message.lines().next().unwrap_or_default().to_owned();
    let message = match load_ours(&path) {
        Ok(_) => panic!("the engine loaded {file}"),
        Err(e) => first_line(e.to_string()),
    };
    let config = CandleConfig {
        model_dir: dir.path().to_path_buf(),
        model_file: file.clone(),
        threads: 1,
        ..CandleConfig::default()
    };
    match CandleBackend::load(&config) {
        Err(LoadError::Model { reason, .. }) => assert_eq!(first_line(reason), message),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the backend loaded {file}"),
    }
    message
}

const QK_NORMS_LEFT_OUT: Variant<'static> = Variant {
    omit: &["attn_q_norm", "attn_k_norm"],
    extra_tensors: &[],
    extra_metadata: &[],
};

/// Asserts that an `architecture` model with `variant` is refused with a
/// message containing each of `expected`.
fn assert_refused(architecture: &str, variant: &Variant<'_>, expected: &[&str]) {
    let message = refusal(architecture, variant);
    for part in expected {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

#[test]
fn qwen3_without_qk_norms_is_refused() {
    assert_refused(
        "qwen3",
        &QK_NORMS_LEFT_OUT,
        &["`qwen3` needs tensor `blk.0.attn_q_norm.weight`"],
    );
}

#[test]
fn unknown_architecture_is_refused() {
    assert_refused(
        "gemma3",
        &Variant::default(),
        &["unsupported architecture `gemma3`"],
    );
}

#[test]
fn tensors_the_engine_does_not_compute_are_refused() {
    // Llama 3's frequency factors for long-context RoPE, and qwen3's
    // query/key norms in a file that claims to be llama.
    assert_refused(
        "llama",
        &Variant {
            extra_tensors: &["rope_freqs.weight"],
            ..Variant::default()
        },
        &[
            "`llama` file has tensors this engine does not compute",
            "rope_freqs.weight",
            "blk.0.attn_q_norm.weight",
            "blk.2.attn_k_norm.weight",
        ],
    );
}

#[test]
fn rope_scaling_is_refused() {
    assert_refused(
        "qwen3",
        &Variant {
            extra_metadata: &[
                ("rope.scaling.type", Value::String("yarn".into())),
                ("rope.scaling.factor", Value::F32(4.0)),
            ],
            ..Variant::default()
        },
        &["`qwen3` with RoPE scaling (yarn, factor 4)"],
    );
}

#[test]
fn qwen2_without_biases_is_refused_and_llama_loads() {
    // The qwen3 layout without its norms is a complete llama model, and a
    // qwen2 model but for its query/key/value biases.
    let dir = tempfile::tempdir().expect("tempdir");
    let llama = dir.path().join("llama.gguf");
    write_model(&llama, "llama", NARROW, &QK_NORMS_LEFT_OUT);
    let model = load_ours(&llama).expect("llama loads");
    assert_eq!(model.hyperparameters().architecture, "llama");

    assert_refused(
        "qwen2",
        &QK_NORMS_LEFT_OUT,
        &["`qwen2` needs tensor `blk.0.attn_q.bias`"],
    );
}

#[test]
fn metadata_contradicting_the_weights_is_refused() {
    // Heads of 8 said, 16 stored: the load fails, not every request.
    assert_refused(
        "llama",
        &Variant {
            omit: QK_NORMS_LEFT_OUT.omit,
            extra_metadata: &[
                ("attention.key_length", Value::U32(8)),
                ("attention.value_length", Value::U32(8)),
            ],
            ..Variant::default()
        },
        &["`blk.0.attn_q.weight` is 64 x 64, not 32 x 64"],
    );
}
