//! Qwen3: the engine's forward pass agrees with candle-transformers'
//! reference implementation on small synthetic models, and files the engine
//! cannot compute are refused at load.
//!
//! No Qwen3 model ships here, so the tests write seeded random GGUFs with
//! the layout llama.cpp gives Qwen3 (per-head RMSNorm on queries and keys,
//! no biases, split-half RoPE). What candle-transformers computes on them is
//! recorded in `tests/data/qwen3-reference.json`, so that the suite does not
//! compile it; with the crate's `reference` feature,
//! `qwen3_reference_logits_are_as_recorded` runs it and checks the record
//! (`CLOISTER_RECORD_REFERENCE=1` rewrites it instead):
//!
//! ```text
//! cargo test -p cloister-inference-candle --features reference --test it qwen3
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, IndexOp, Tensor};

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

/// The synthetic models compared, by their names in the record.
const SHAPES: [(&str, Shape); 3] = [
    ("narrow", NARROW),
    ("wide", WIDE),
    ("narrow-q8_0", NARROW_Q8_0),
];

/// Next-token logits after each step: the prompt, then two decode steps.
type Steps = Vec<Vec<f32>>;

fn record_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qwen3-reference.json")
}

fn recorded() -> BTreeMap<String, Steps> {
    let path = record_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fed tokens of each step: the first six, then one at a time.
fn steps() -> impl Iterator<Item = (usize, &'static [u32])> {
    [(0, &TOKENS[..6]), (6, &TOKENS[6..7]), (7, &TOKENS[7..8])].into_iter()
}

fn our_logits(path: &Path) -> Steps {
    let ours = load_ours(path).expect("the engine loads qwen3");
    let mut cache = ours.new_cache();
    let steps = steps()
        .map(|(_, fed)| {
            ours.forward(&mut [Segment {
                tokens: fed,
                cache: &mut cache,
                wants_logits: true,
                wants_hidden: false,
            }])
            .expect("forward")
            .expect("logits")
            .i(0)
            .and_then(|row| row.to_vec1::<f32>())
            .expect("row")
        })
        .collect();
    assert_eq!(cache.len(), 8);
    steps
}

fn spread(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min = logits.iter().copied().fold(f32::INFINITY, f32::min);
    max - min
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "logits of another vocabulary");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the engine on the synthetic model `name` and asserts that its
/// logits after each step differ from the reference's recorded ones by less
/// than `tolerance`.
fn assert_matches_reference(name: &str, tolerance: f32) {
    let (_, shape) = SHAPES
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a known shape");
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = our_logits(&write_qwen3(dir.path(), shape));
    let expected = recorded()
        .remove(name)
        .unwrap_or_else(|| panic!("no `{name}` in {}", record_path().display()));
    assert_eq!(ours.len(), expected.len(), "steps");
    for (step, (logits, expected)) in ours.iter().zip(&expected).enumerate() {
        assert!(spread(expected) > 1.0, "logits too flat to compare");
        let diff = max_difference(logits, expected);
        assert!(
            diff < tolerance,
            "step {step}: largest logit difference {diff} (logits span {})",
            spread(expected)
        );
    }
}

#[test]
fn qwen3_logits_match_candle_transformers() {
    // Both sides run in f32: only summation order separates them (measured
    // 1e-6 on logits spanning 6).
    assert_matches_reference("narrow", 1e-3);
}

#[test]
fn qwen3_with_heads_wider_than_the_embedding_matches_candle_transformers() {
    assert_matches_reference("wide", 1e-3);
}

#[test]
fn qwen3_in_q8_0_matches_candle_transformers() {
    // Both quantize activations to Q8_0 the same way (measured 2e-7); the
    // margin is for other CPUs' kernels summing in another order.
    assert_matches_reference("narrow-q8_0", 1e-3);
}

/// candle-transformers' own logits on the model at `path`.
#[cfg(feature = "reference")]
fn reference_logits(path: &Path) -> Steps {
    use candle_transformers::models::quantized_qwen3::ModelWeights;
    let mut file = File::open(path).expect("open gguf");
    let content = gguf_file::Content::read(&mut file).expect("read gguf");
    let mut reference =
        ModelWeights::from_gguf(content, &mut file, &Device::Cpu).expect("reference loads");
    steps()
        .map(|(offset, fed)| {
            let input = Tensor::new(fed, &Device::Cpu)
                .and_then(|ids| ids.unsqueeze(0))
                .expect("ids");
            reference
                .forward(&input, offset)
                .and_then(|logits| logits.i(0))
                .and_then(|row| row.to_vec1::<f32>())
                .expect("reference forward")
        })
        .collect()
}

#[cfg(feature = "reference")]
#[test]
fn qwen3_reference_logits_are_as_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live: BTreeMap<String, Steps> = SHAPES
        .into_iter()
        .map(|(name, shape)| {
            let path = dir.path().join(format!("{name}.gguf"));
            write_model(&path, "qwen3", shape, &Variant::default());
            (name.to_owned(), reference_logits(&path))
        })
        .collect();
    if std::env::var_os("CLOISTER_RECORD_REFERENCE").is_some() {
        let text = serde_json::to_string_pretty(&live).expect("json");
        std::fs::write(record_path(), text + "\n").expect("write the record");
        return;
    }
    let recorded = recorded();
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        live.keys().collect::<Vec<_>>()
    );
    for (name, steps) in &live {
        for (step, (live, kept)) in steps.iter().zip(&recorded[name]).enumerate() {
            // The same computation on another CPU may sum in another order.
            let diff = max_difference(live, kept);
            assert!(
                diff < 1e-4,
                "{name} step {step}: recorded logits differ by {diff}"
            );
        }
    }
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
