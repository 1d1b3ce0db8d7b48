//! A llama-family decoder over quantized GGUF weights, with one KV cache per
//! sequence so that many sequences at different positions share each forward
//! pass.
//!
//! candle-transformers' `quantized_llama::ModelWeights` keeps a single KV
//! cache inside the model and one position for the whole batch, which forces
//! requests to take turns. Here the weights are immutable and shared, every
//! sequence owns a [`SequenceCache`], and one [`LlamaModel::forward`] runs the
//! matrix products for all tokens of all sequences at once (prompt chunks and
//! single decode tokens mixed), while attention runs per sequence against its
//! own cache: continuous batching.

use std::collections::HashSet;
use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;

use crate::config::WeightFormat;
use crate::qgemm;

/// KV cache slots allocated at a time for a sequence.
const KV_CACHE_CHUNK: usize = 256;

/// Shape of the network, read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyperparameters {
    /// `general.architecture`: llama, qwen2 or qwen3.
    pub architecture: String,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Width of the residual stream.
    pub embedding: usize,
    /// Width of one head (`heads * head_dim` may differ from `embedding`,
    /// as in Qwen3-0.6B).
    pub head_dim: usize,
    /// Context the model was trained for.
    pub context_length: usize,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// NEOX-style (split halves) rather than interleaved rotary embedding.
    pub rope_neox: bool,
    /// Biases on the query, key and value projections are part of the
    /// architecture (qwen2).
    pub qkv_bias: bool,
    /// Queries and keys go through a per-head RMSNorm before RoPE (qwen3).
    pub qk_norm: bool,
}

impl Hyperparameters {
    /// Reads the shape and refuses any architecture, or any variant of one
    /// (RoPE scaling, partial rotary, unequal key and value widths), that
    /// [`LlamaModel::forward`] does not compute exactly.
    fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let get = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata lacks `{key}`")))
        };
        let architecture = get("general.architecture")?.to_string()?.clone();
        // As llama.cpp's llama_model_rope_type and llm_build_* for each family.
        let (rope_neox, qkv_bias, qk_norm) = match architecture.as_str() {
            "llama" => (false, false, false),
            "qwen2" => (true, true, false),
            "qwen3" => (true, false, true),
            _ => candle_core::bail!(
                "unsupported architecture `{architecture}`: this engine computes llama, qwen2 and qwen3"
            ),
        };
        let arch_key = |suffix: &str| format!("{architecture}.{suffix}");
        let optional_u32 = |suffix: &str| {
            content
                .metadata
                .get(&arch_key(suffix))
                .map(|v| v.to_u32().map(|n| n as usize))
                .transpose()
        };
        let heads = get(&arch_key("attention.head_count"))?.to_u32()? as usize;
        let embedding = get(&arch_key("embedding_length"))?.to_u32()? as usize;
        if heads == 0 {
            candle_core::bail!("`{architecture}` model without attention heads");
        }
        let head_dim = match optional_u32("attention.key_length")? {
            Some(width) => width,
            None if embedding.is_multiple_of(heads) => embedding / heads,
            None => {
                candle_core::bail!("embedding width {embedding} is not a multiple of {heads} heads")
            }
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            candle_core::bail!("head width {head_dim} cannot be rotated");
        }
        if let Some(width) = optional_u32("attention.value_length")?
            && width != head_dim
        {
            candle_core::bail!(
                "`{architecture}` with values {width} wide and keys {head_dim} wide is not supported"
            );
        }
        if let Some(dims) = optional_u32("rope.dimension_count")?
            && dims != head_dim
        {
            candle_core::bail!(
                "`{architecture}` rotating {dims} of {head_dim} head dimensions is not supported"
            );
        }
        let scaling = content
            .metadata
            .get(&arch_key("rope.scaling.type"))
            .map(|v| v.to_string().cloned())
            .transpose()?;
        let factor = content
            .metadata
            .get(&arch_key("rope.scaling.factor"))
            .map(|v| v.to_f32())
            .transpose()?;
        let unscaled = matches!(factor, None | Some(0.0) | Some(1.0));
        match scaling.as_deref() {
            Some("none") | None if unscaled => {}
            Some("linear") if unscaled => {}
            _ => candle_core::bail!(
                "`{architecture}` with RoPE scaling ({}, factor {}) is not supported",
                scaling.as_deref().unwrap_or("unnamed"),
                factor.unwrap_or(1.0)
            ),
        }
        let kv_heads = get(&arch_key("attention.head_count_kv"))?.to_u32()? as usize;
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            candle_core::bail!("{heads} heads cannot be grouped over {kv_heads} key/value heads");
        }
        Ok(Self {
            layers: get(&arch_key("block_count"))?.to_u32()? as usize,
            heads,
            kv_heads,
            embedding,
            head_dim,
            context_length: get(&arch_key("context_length"))?.to_u32()? as usize,
            rms_eps: f64::from(get(&arch_key("attention.layer_norm_rms_epsilon"))?.to_f32()?),
            rope_base: get(&arch_key("rope.freq_base"))
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
            rope_neox,
            qkv_bias,
            qk_norm,
            architecture,
        })
    }
}

/// A quantized weight matrix and the code that multiplies by it.
#[derive(Debug)]
enum Weights {
    /// Q8_0 or Q4_1 on the CPU, repacked for [`qgemm`]'s kernels (the only
    /// copy).
    Packed(Arc<qgemm::PackedMatrix>),
    /// Anything else (other formats, GPU), through candle.
    Candle(QMatMul),
}

impl Weights {
    fn new(tensor: Arc<QTensor>) -> Result<Self> {
        let format = match tensor.dtype() {
            GgmlDType::Q8_0 => Some(qgemm::BlockFormat::Q8_0),
            GgmlDType::Q4_1 => Some(qgemm::BlockFormat::Q4_1),
            _ => None,
        };
        match format {
            Some(format) if tensor.device().is_cpu() => {
                let (n, k) = tensor.shape().dims2()?;
                let packed = qgemm::PackedMatrix::pack(&tensor.data()?, n, k, format)
                    .map_err(shape_error)?;
                Ok(Self::Packed(Arc::new(packed)))
            }
            _ => Ok(Self::Candle(QMatMul::from_arc(tensor)?)),
        }
    }

    /// `(n, k)`: outputs by inputs.
    fn shape(&self) -> Result<(usize, usize)> {
        match self {
            Self::Packed(matrix) => Ok((matrix.rows(), matrix.cols())),
            Self::Candle(QMatMul::QTensor(tensor)) => tensor.shape().dims2(),
            Self::Candle(QMatMul::Tensor(tensor) | QMatMul::TensorF16(tensor)) => tensor.dims2(),
        }
    }

    /// `xs` (m x k) times the transpose of the weights (n x k).
    fn product(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::Packed(matrix) => {
                let values = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let rows = qgemm::Q8Rows::quantize(&values, matrix.cols()).map_err(shape_error)?;
                let ys = matrix.matmul(&rows).map_err(shape_error)?;
                Tensor::from_vec(ys, (rows.rows(), matrix.rows()), xs.device())
            }
            Self::Candle(matmul) => matmul.forward(xs),
        }
    }
}

fn shape_error(e: qgemm::ShapeError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// A quantized linear map, optionally with a bias (qwen2 has biases on q/k/v).
#[derive(Debug)]
struct Linear {
    weights: Weights,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ys = self.weights.product(xs)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }
}

/// Token embeddings, kept quantized: rows are expanded only for the tokens
/// looked up (an f32 copy of SmolLM2's would take 113 MB).
#[derive(Debug)]
enum Embeddings {
    /// Read back from a packed matrix (shared with a tied output layer).
    Packed(Arc<qgemm::PackedMatrix>),
    /// candle's quantized tensor.
    Quantized(Arc<QTensor>),
}

impl Embeddings {
    fn lookup(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        match self {
            Self::Packed(matrix) => {
                let mut values = Vec::with_capacity(ids.len() * matrix.cols());
                for &id in ids {
                    matrix
                        .dequantize_row(id as usize, &mut values)
                        .map_err(shape_error)?;
                }
                Tensor::from_vec(values, (ids.len(), matrix.cols()), device)
            }
            Self::Quantized(table) => table.embedding(&Tensor::new(ids, device)?),
        }
    }
}

/// An RMSNorm whose weights were stored quantized (dequantized at load).
#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(xs, &self.weight, self.eps)
    }
}

/// The per-head RMSNorms qwen3 applies to queries and keys before RoPE.
#[derive(Debug)]
struct QkNorm {
    q: RmsNorm,
    k: RmsNorm,
}

/// Normalises each `head_dim` slice of every row of `xs` on its own.
fn per_head(norm: &RmsNorm, xs: &Tensor, head_dim: usize) -> Result<Tensor> {
    let (rows, width) = xs.dims2()?;
    norm.forward(&xs.reshape((rows * width / head_dim, head_dim))?)?
        .reshape((rows, width))
}

#[derive(Debug)]
struct Block {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    qk_norm: Option<QkNorm>,
    o: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// The KV cache of one sequence: its whole memory of the conversation.
#[derive(Debug)]
pub struct SequenceCache {
    layers: Vec<KvCache>,
    len: usize,
}

impl SequenceCache {
    /// Tokens already processed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token has been processed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Tokens of one sequence fed to one forward pass.
pub struct Segment<'a> {
    /// New tokens, continuing the sequence at `cache.len()`.
    pub tokens: &'a [u32],
    /// The sequence's cache, extended by `tokens`.
    pub cache: &'a mut SequenceCache,
    /// Whether the caller needs the next-token logits after the last token.
    pub wants_logits: bool,
    /// Whether the caller needs the final-normed hidden state of every
    /// token (an embedding pools them).
    pub wants_hidden: bool,
}

/// What one forward pass returns.
#[derive(Debug)]
pub struct Outputs {
    /// `(n, vocab)` next-token logits, one row per segment that wants
    /// logits, in segment order.
    pub logits: Option<Tensor>,
    /// `(m, embedding)` final-normed hidden states, one row per token of the
    /// segments that want them, in segment and token order.
    pub hidden: Option<Tensor>,
}

/// Immutable model weights, shared by every sequence.
#[derive(Debug)]
pub struct LlamaModel {
    hyper: Hyperparameters,
    embeddings: Embeddings,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: Linear,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

struct Loader<'a, R> {
    content: &'a gguf_file::Content,
    reader: &'a mut R,
    device: &'a Device,
    format: WeightFormat,
    hyper: &'a Hyperparameters,
    /// Names of the tensors read so far.
    used: HashSet<String>,
}

impl<R: Read + Seek> Loader<'_, R> {
    fn qtensor(&mut self, name: &str) -> Result<QTensor> {
        if !self.content.tensor_infos.contains_key(name) {
            candle_core::bail!(
                "`{}` needs tensor `{name}`, which the file lacks",
                self.hyper.architecture
            );
        }
        self.used.insert(name.to_owned());
        self.content.tensor(self.reader, name, self.device)
    }

    fn matrix(&mut self, name: &str) -> Result<Weights> {
        let tensor = self.qtensor(name)?;
        let tensor = match (self.format, tensor.dtype()) {
            (
                WeightFormat::Q8_0,
                GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1,
            ) => QTensor::quantize(&tensor.dequantize(self.device)?, GgmlDType::Q8_0)?,
            _ => tensor,
        };
        Weights::new(Arc::new(tensor))
    }

    /// `name.weight`, plus `name.bias` when the file has one or
    /// `bias_required` (the architecture has one there).
    fn linear(&mut self, name: &str, bias_required: bool) -> Result<Linear> {
        let weights = self.matrix(&format!("{name}.weight"))?;
        let bias_name = format!("{name}.bias");
        let bias = if bias_required || self.content.tensor_infos.contains_key(&bias_name) {
            Some(self.qtensor(&bias_name)?.dequantize(self.device)?)
        } else {
            None
        };
        Ok(Linear { weights, bias })
    }

    fn norm(&mut self, name: &str, width: usize) -> Result<RmsNorm> {
        let weights = self.qtensor(name)?;
        if weights.shape().dims() != [width] {
            candle_core::bail!("`{name}` is not a vector of {width}");
        }
        Ok(RmsNorm {
            weight: weights.dequantize(self.device)?,
            eps: self.hyper.rms_eps as f32,
        })
    }

    fn block(&mut self, i: usize) -> Result<Block> {
        let Hyperparameters {
            embedding,
            heads,
            kv_heads,
            head_dim,
            qkv_bias,
            qk_norm,
            ..
        } = *self.hyper;
        let p = format!("blk.{i}");
        let qk_norm = if qk_norm {
            Some(QkNorm {
                q: self.norm(&format!("{p}.attn_q_norm.weight"), head_dim)?,
                k: self.norm(&format!("{p}.attn_k_norm.weight"), head_dim)?,
            })
        } else {
            None
        };
        let block = Block {
            attn_norm: self.norm(&format!("{p}.attn_norm.weight"), embedding)?,
            q: self.linear(&format!("{p}.attn_q"), qkv_bias)?,
            k: self.linear(&format!("{p}.attn_k"), qkv_bias)?,
            v: self.linear(&format!("{p}.attn_v"), qkv_bias)?,
            qk_norm,
            o: self.linear(&format!("{p}.attn_output"), false)?,
            ffn_norm: self.norm(&format!("{p}.ffn_norm.weight"), embedding)?,
            gate: self.linear(&format!("{p}.ffn_gate"), false)?,
            up: self.linear(&format!("{p}.ffn_up"), false)?,
            down: self.linear(&format!("{p}.ffn_down"), false)?,
        };
        // Checked here so that metadata contradicting the weights (a wrong
        // `key_length`) fails the load rather than every request.
        let (ffn, _) = block.gate.weights.shape()?;
        for (name, linear, rows, cols) in [
            ("attn_q", &block.q, heads * head_dim, embedding),
            ("attn_k", &block.k, kv_heads * head_dim, embedding),
            ("attn_v", &block.v, kv_heads * head_dim, embedding),
            ("attn_output", &block.o, embedding, heads * head_dim),
            ("ffn_gate", &block.gate, ffn, embedding),
            ("ffn_up", &block.up, ffn, embedding),
            ("ffn_down", &block.down, embedding, ffn),
        ] {
            let shape = linear.weights.shape()?;
            if shape != (rows, cols) {
                candle_core::bail!(
                    "`{p}.{name}.weight` is {} x {}, not {rows} x {cols}",
                    shape.0,
                    shape.1
                );
            }
        }
        Ok(block)
    }

    /// Refuses a file with tensors the forward pass would ignore: they mean
    /// a variant of the architecture (Llama 3's RoPE frequency factors,
    /// another family's extra norms) that this engine would compute wrongly.
    fn check_all_used(&self) -> Result<()> {
        let mut unused: Vec<&str> = self
            .content
            .tensor_infos
            .keys()
            .map(String::as_str)
            .filter(|name| !self.used.contains(*name))
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        unused.sort_unstable();
        const SHOWN: usize = 8;
        let more = unused.len().saturating_sub(SHOWN);
        unused.truncate(SHOWN);
        candle_core::bail!(
            "`{}` file has tensors this engine does not compute: {}{}",
            self.hyper.architecture,
            unused.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    }
}

impl LlamaModel {
    /// Loads the weights named in `content`, reading tensor data from `reader`.
    pub fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        format: WeightFormat,
    ) -> Result<Self> {
        let hyper = Hyperparameters::from_gguf(content)?;
        let mut loader = Loader {
            content,
            reader,
            device,
            format,
            hyper: &hyper,
            used: HashSet::new(),
        };
        let table = loader.qtensor("token_embd.weight")?;
        if table.shape().dims2()?.1 != hyper.embedding {
            candle_core::bail!("token embeddings are not {} wide", hyper.embedding);
        }
        // Models with tied embeddings have no `output.weight`: the output
        // layer then multiplies by the embedding table, which stays one copy.
        let (embeddings, output) = if content.tensor_infos.contains_key("output.weight") {
            (
                Embeddings::Quantized(Arc::new(table)),
                loader.linear("output", false)?,
            )
        } else {
            let table = Arc::new(table);
            let weights = Weights::new(Arc::clone(&table))?;
            let embeddings = match &weights {
                Weights::Packed(matrix) => Embeddings::Packed(Arc::clone(matrix)),
                Weights::Candle(_) => Embeddings::Quantized(table),
            };
            (
                embeddings,
                Linear {
                    weights,
                    bias: None,
                },
            )
        };
        let norm = loader.norm("output_norm.weight", hyper.embedding)?;
        let blocks = (0..hyper.layers)
            .map(|i| loader.block(i))
            .collect::<Result<Vec<_>>>()?;
        loader.check_all_used()?;
        let (cos, sin) = rope_tables(&hyper, device)?;
        Ok(Self {
            hyper,
            embeddings,
            blocks,
            norm,
            output,
            cos,
            sin,
            device: device.clone(),
        })
    }

    /// The network's shape.
    pub fn hyperparameters(&self) -> &Hyperparameters {
        &self.hyper
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> SequenceCache {
        SequenceCache {
            layers: (0..self.hyper.layers)
                .map(|_| KvCache::new(2, KV_CACHE_CHUNK))
                .collect(),
            len: 0,
        }
    }

    /// Runs every segment's tokens through the network in one pass and
    /// returns `(n, vocab)` logits, one row per segment that wants logits, in
    /// segment order (or `None` when no segment does).
    pub fn forward(&self, segments: &mut [Segment<'_>]) -> Result<Option<Tensor>> {
        Ok(self.forward_outputs(segments)?.logits)
    }

    /// Runs every segment's tokens through the network in one pass and
    /// returns the logits and hidden states the segments ask for.
    pub fn forward_outputs(&self, segments: &mut [Segment<'_>]) -> Result<Outputs> {
        let ids: Vec<u32> = segments
            .iter()
            .flat_map(|s| s.tokens.iter().copied())
            .collect();
        if ids.is_empty() {
            return Ok(Outputs {
                logits: None,
                hidden: None,
            });
        }
        for segment in segments.iter() {
            if segment.tokens.is_empty() {
                candle_core::bail!("a segment without tokens");
            }
            if segment.cache.len + segment.tokens.len() > self.hyper.context_length {
                candle_core::bail!("sequence exceeds the model context");
            }
        }
        let mut xs = self.embeddings.lookup(&ids, &self.device)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let h = block.attn_norm.forward(&xs)?;
            let attn = self.attention(block, layer, &h, segments)?;
            xs = (xs + block.o.forward(&attn)?)?;
            let h = block.ffn_norm.forward(&xs)?;
            let gated =
                (candle_nn::ops::silu(&block.gate.forward(&h)?)? * block.up.forward(&h)?)?;
            xs = (xs + block.down.forward(&gated)?)?;
        }
        let mut last_rows = Vec::new();
        let mut hidden_rows = Vec::new();
        let mut start = 0u32;
        for segment in segments.iter_mut() {
            let len = segment.tokens.len() as u32;
            segment.cache.len += segment.tokens.len();
            if segment.wants_logits {
                last_rows.push(start + len - 1);
            }
            if segment.wants_hidden {
                hidden_rows.extend(start..start + len);
            }
            start += len;
        }
        let normed = |rows: &[u32]| -> Result<Option<Tensor>> {
            if rows.is_empty() {
                return Ok(None);
            }
            let rows = Tensor::new(rows, &self.device)?;
            self.norm.forward(&xs.index_select(&rows, 0)?).map(Some)
        };
        let logits = match normed(&last_rows)? {
            Some(last) => Some(self.output.forward(&last)?.to_dtype(DType::F32)?),
            None => None,
        };
        let hidden = match normed(&hidden_rows)? {
            Some(hidden) => Some(hidden.to_dtype(DType::F32)?),
            None => None,
        };
        Ok(Outputs { logits, hidden })
    }

    /// Self-attention of every segment against its own cache; `h` holds the
    /// normalised hidden states of all segments' tokens, one row each.
    fn attention(
        &self,
        block: &Block,
        layer: usize,
        h: &Tensor,
        segments: &mut [Segment<'_>],
    ) -> Result<Tensor> {
        let Hyperparameters {
            heads,
            kv_heads,
            head_dim,
            ..
        } = self.hyper;
        let mut q = block.q.forward(h)?;
        let mut k = block.k.forward(h)?;
        if let Some(norm) = &block.qk_norm {
            q = per_head(&norm.q, &q, head_dim)?;
            k = per_head(&norm.k, &k, head_dim)?;
        }
        let v = block.v.forward(h)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut outputs = Vec::with_capacity(segments.len());
        let mut offset = 0;
        for segment in segments.iter_mut() {
            let len = segment.tokens.len();
            let pos = segment.cache.len;
            let split = |t: &Tensor, n_heads: usize| -> Result<Tensor> {
                t.narrow(0, offset, len)?
                    .reshape((1, len, n_heads, head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = self.rope(&split(&q, heads)?, pos)?;
            let k = self.rope(&split(&k, kv_heads)?, pos)?;
            let v = split(&v, kv_heads)?;
            // Views into the cache: nothing is copied for attention.
            let (k, v) = segment.cache.layers[layer].append(&k, &v)?;
            let total = k.dim(2)?;
            // Grouped-query attention without repeating keys and values: the
            // query heads that share a key/value head (heads are grouped
            // `kv * group + g`) become `group * len` rows against it.
            let group = heads / kv_heads;
            let q = q.reshape((1, kv_heads, group * len, head_dim))?;
            let mut scores = (q.matmul(&k.t()?)? * scale)?;
            if len > 1 {
                let mask = causal_mask(len, pos, &self.device)?.to_dtype(scores.dtype())?;
                scores = scores
                    .reshape((1, kv_heads, group, len, total))?
                    .broadcast_add(&mask)?
                    .reshape((1, kv_heads, group * len, total))?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let attended = probs.matmul(&v)?.reshape((1, heads, len, head_dim))?;
            outputs.push(attended.transpose(1, 2)?.reshape((len, heads * head_dim))?);
            offset += len;
        }
        Tensor::cat(&outputs, 0)
    }

    fn rope(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let len = x.dim(2)?;
        let cos = self.cos.narrow(0, pos, len)?;
        let sin = self.sin.narrow(0, pos, len)?;
        if self.hyper.rope_neox {
            candle_nn::rotary_emb::rope(x, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope_i(x, &cos, &sin)
        }
    }
}

/// Cosine and sine tables for every position of the context.
fn rope_tables(hyper: &Hyperparameters, device: &Device) -> Result<(Tensor, Tensor)> {
    let dim = hyper.head_dim;
    let inv_freq: Vec<f32> = (0..dim)
        .step_by(2)
        .map(|i| 1.0 / hyper.rope_base.powf(i as f32 / dim as f32))
        .collect();
    let inv_freq = Tensor::new(inv_freq.as_slice(), device)?.reshape((1, dim / 2))?;
    let positions = Tensor::arange(0u32, hyper.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((hyper.context_length, 1))?;
    let angles = positions.matmul(&inv_freq)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The additive mask of `len` new tokens that follow `past` cached ones:
/// token `i` sees every cached token and the new ones up to itself, and
/// `-inf` hides the rest. Shaped `(1, 1, len, past + len)` to broadcast
/// over the batch and the heads.
fn causal_mask(len: usize, past: usize, device: &Device) -> Result<Tensor> {
    let width = past + len;
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| {
            (0..width).map(move |j| {
                if j <= past + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (1, 1, len, width), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_causal_mask_hides_only_later_new_tokens() {
        let mask = causal_mask(2, 3, &Device::Cpu)
            .and_then(|m| m.reshape((2, 5)))
            .and_then(|m| m.to_vec2::<f32>())
            .expect("mask");
        let hidden = f32::NEG_INFINITY;
        assert_eq!(
            mask,
            [[0.0, 0.0, 0.0, 0.0, hidden], [0.0, 0.0, 0.0, 0.0, 0.0]]
        );
    }
}
