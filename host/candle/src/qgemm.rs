//! Quantized matrix products for one or many activation rows: single-stream
//! decoding, batched decoding and prompt chunks.
//!
//! candle's CPU quantized matmul computes every (row, column) dot product on
//! its own: each one reloads the weight block, recomputes its absolute value
//! and converts both f16 scales, so eight rows cost eight times one row and
//! continuous batching saved almost nothing. It also has only scalar code
//! for Q4_1, the format SmolLM2 ships in. Here each weight block is loaded
//! and prepared once and then applied to up to [`ROW_TILE`] activation rows,
//! whose quantized values, scales and sums were prepared once for the whole
//! matrix.
//!
//! Two GGML weight formats are read in place ([`BlockFormat`]): Q8_0 and
//! Q4_1, whose 4-bit weights move 40% fewer bytes per token than Q8_0, which
//! is what bounds single-stream decoding. Activations are quantized as
//! candle quantizes them (8-bit, f16 scale per 32 values, plus the scaled
//! block sum that Q4_1's minimum needs, as GGML's Q8_1), so results differ
//! from candle's only in the order of the final sums.
//!
//! Every kernel adds the same integer lane sums in the same order with fused
//! multiply-adds, so the portable, AVX2 and AVX-512 VNNI kernels return
//! bit-identical results, and a row's result never depends on how many rows
//! share the product: batching cannot change a greedy output.

use half::f16;
use rayon::prelude::*;

/// Values per block, in both formats.
pub const BLOCK: usize = 32;
/// Activation rows that share one pass over a weight row.
pub const ROW_TILE: usize = 8;
/// Weight rows per parallel work item.
const WEIGHT_ROWS_PER_TASK: usize = 32;
/// Integer partial sums per block: lane `l` sums the products of values
/// `4l..4l + 4`, as one AVX2 register holds them.
const LANES: usize = 8;

/// A GGML block format the kernels read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    /// An f16 scale `d`, then 32 signed bytes `q`: value = `d * q`.
    Q8_0,
    /// An f16 scale `d`, an f16 minimum `m`, then 16 bytes of 4-bit `q`
    /// (value `j` in the low nibble of byte `j`, value `j + 16` in its high
    /// nibble): value = `d * q + m`.
    Q4_1,
}

impl BlockFormat {
    /// Bytes per block of [`BLOCK`] values.
    pub const fn block_bytes(self) -> usize {
        match self {
            Self::Q8_0 => 2 + BLOCK,
            Self::Q4_1 => 4 + BLOCK / 2,
        }
    }
}

/// Shapes that do not fit together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    /// The inner dimension is not a whole number of blocks.
    #[error("{0} columns are not a multiple of the quantization block of {BLOCK}")]
    PartialBlock(usize),
    /// The weight bytes do not hold `rows` x `cols` values.
    #[error("{bytes} bytes cannot be a {rows}x{cols} {format:?} matrix")]
    WeightSize {
        /// Bytes given.
        bytes: usize,
        /// Rows expected.
        rows: usize,
        /// Columns expected.
        cols: usize,
        /// Block format expected.
        format: BlockFormat,
    },
    /// Activations and weights disagree on the inner dimension.
    #[error("activations of width {activations} cannot multiply weights of width {weights}")]
    Inner {
        /// Activation row width.
        activations: usize,
        /// Weight row width.
        weights: usize,
    },
}

/// A borrowed quantized matrix in GGML's layout: `rows` rows of `cols / 32`
/// blocks (candle's `QTensor::data` on the CPU).
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    bytes: &'a [u8],
    rows: usize,
    cols: usize,
    format: BlockFormat,
}

impl<'a> QMatrix<'a> {
    /// Views `bytes` as a `rows` x `cols` matrix of `format` blocks, checking
    /// the size.
    pub fn new(
        bytes: &'a [u8],
        rows: usize,
        cols: usize,
        format: BlockFormat,
    ) -> Result<Self, ShapeError> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(ShapeError::PartialBlock(cols));
        }
        if rows.checked_mul(cols / BLOCK * format.block_bytes()) != Some(bytes.len()) {
            return Err(ShapeError::WeightSize { bytes: bytes.len(), rows, cols, format });
        }
        Ok(Self { bytes, rows, cols, format })
    }

    fn row(&self, index: usize) -> &'a [u8] {
        let len = self.cols / BLOCK * self.format.block_bytes();
        &self.bytes[index * len..(index + 1) * len]
    }
}

/// Activation rows quantized to 8 bits exactly as candle quantizes them for
/// Q8_0 and Q8_1 (scale = max |x| / 127 rounded to f16, quants =
/// round(x / scale), sum = f16(Σ quants) * scale in f16), kept apart so that
/// every weight row reuses them.
#[derive(Debug, Clone)]
pub struct Q8Rows {
    quants: Vec<i8>,
    scales: Vec<f32>,
    /// Per block: scale times the sum of its quants (Q4_1's minimum term).
    sums: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Q8Rows {
    /// Quantizes `xs`, row-major rows of `cols` values.
    pub fn quantize(xs: &[f32], cols: usize) -> Result<Self, ShapeError> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) || !xs.len().is_multiple_of(cols) {
            return Err(ShapeError::PartialBlock(cols));
        }
        let mut quants = Vec::with_capacity(xs.len());
        let mut scales = Vec::with_capacity(xs.len() / BLOCK);
        let mut sums = Vec::with_capacity(xs.len() / BLOCK);
        for block in xs.chunks_exact(BLOCK) {
            let max = block.iter().fold(0f32, |max, x| max.max(x.abs()));
            let scale = max / 127.0;
            let inverse = if scale == 0.0 { 0.0 } else { 1.0 / scale };
            let scale = f16::from_f32(scale);
            // In [-127, 127] by construction: the cast cannot saturate.
            let start = quants.len();
            quants.extend(block.iter().map(|x| (x * inverse).round() as i8));
            let total: i32 = quants[start..].iter().map(|&q| i32::from(q)).sum();
            scales.push(scale.to_f32());
            sums.push((f16::from_f32(total as f32) * scale).to_f32());
        }
        Ok(Self { quants, scales, sums, rows: xs.len() / cols, cols })
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// `xs` (m x k) times the transpose of `weights` (n x k): m x n, row-major.
pub fn matmul(weights: &QMatrix<'_>, xs: &Q8Rows) -> Result<Vec<f32>, ShapeError> {
    matmul_with(Kernel::detect(), weights, xs)
}

fn matmul_with(kernel: Kernel, weights: &QMatrix<'_>, xs: &Q8Rows) -> Result<Vec<f32>, ShapeError> {
    if weights.cols != xs.cols {
        return Err(ShapeError::Inner { activations: xs.cols, weights: weights.cols });
    }
    let (m, n) = (xs.rows, weights.rows);
    // Column-major while computing, so that each task owns a contiguous slice.
    let mut by_column = vec![0f32; m * n];
    if m > 0 {
        by_column.par_chunks_mut(m * WEIGHT_ROWS_PER_TASK).enumerate().for_each(|(task, out)| {
            for (offset, column) in out.chunks_exact_mut(m).enumerate() {
                let weight_row = weights.row(task * WEIGHT_ROWS_PER_TASK + offset);
                for (tile, out) in column.chunks_mut(ROW_TILE).enumerate() {
                    kernel.dot_tile(weights.format, weight_row, xs, tile * ROW_TILE, out);
                }
            }
        });
    }
    if m <= 1 {
        return Ok(by_column);
    }
    let mut out = vec![0f32; m * n];
    for (j, column) in by_column.chunks_exact(m).enumerate() {
        for (i, &value) in column.iter().enumerate() {
            out[i * n + j] = value;
        }
    }
    Ok(out)
}

/// Whether candle 0.11 runs an `n` x `k` Q8_0 product through its own
/// repacked AVX-VNNI kernels on this CPU (`n` a multiple of 16, `k` of 256).
/// Those are already fast for any number of rows, and they quantize
/// activations in blocks of 256 rather than 32: mixing them for one row with
/// this kernel for several would make a sequence's greedy output depend on
/// whether it was batched. Such matrices stay with candle.
pub fn candle_uses_vnni(n: usize, k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let vnni = (has!("avx512f") && has!("avx512vnni")) || (has!("avxvnni") && has!("avx2"));
        vnni && n.is_multiple_of(16) && k > 0 && k.is_multiple_of(256)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (n, k);
        false
    }
}

/// Which implementation computes the block dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, for every CPU; the reference the others must equal.
    Portable,
    /// AVX2 + FMA intrinsics (x86-64, detected at run time).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2 with AVX-512 VNNI byte dot products (x86-64, detected at run
    /// time): one instruction where AVX2 needs two.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                return if has!("avx512vnni") && has!("avx512vl") {
                    Self::Avx512Vnni
                } else {
                    Self::Avx2
                };
            }
        }
        Self::Portable
    }

    /// Every kernel this CPU runs, the portable one first.
    pub fn available() -> Vec<Self> {
        let mut kernels = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        match Self::detect() {
            Self::Avx512Vnni => kernels.extend([Self::Avx2, Self::Avx512Vnni]),
            Self::Avx2 => kernels.push(Self::Avx2),
            Self::Portable => {}
        }
        kernels
    }

    /// Dot products of one weight row with activation rows
    /// `first..first + out.len()` (at most [`ROW_TILE`]), into `out`.
    fn dot_tile(
        self,
        format: BlockFormat,
        weight_row: &[u8],
        xs: &Q8Rows,
        first: usize,
        out: &mut [f32],
    ) {
        macro_rules! tile {
            ($($rows:literal)*) => {
                match out.len() {
                    $($rows => out.copy_from_slice(
                        &self.dot_rows(format, weight_row, &TileRows::<$rows>::new(xs, first)),
                    ),)*
                    other => unreachable!("tile of {other} rows"),
                }
            };
        }
        tile!(1 2 3 4 5 6 7 8);
    }

    #[allow(unsafe_code)]
    fn dot_rows<const R: usize>(
        self,
        format: BlockFormat,
        weight_row: &[u8],
        rows: &TileRows<'_, R>,
    ) -> [f32; R] {
        match (self, format) {
            (Self::Portable, BlockFormat::Q8_0) => portable::q8_0(weight_row, rows),
            (Self::Portable, BlockFormat::Q4_1) => portable::q4_1(weight_row, rows),
            // SAFETY (all four): `Avx2` and `Avx512Vnni` are only ever
            // returned by `detect` after the CPU reported their features.
            #[cfg(target_arch = "x86_64")]
            (Self::Avx2, BlockFormat::Q8_0) => unsafe { avx2::q8_0(weight_row, rows) },
            #[cfg(target_arch = "x86_64")]
            (Self::Avx2, BlockFormat::Q4_1) => unsafe { avx2::q4_1(weight_row, rows) },
            #[cfg(target_arch = "x86_64")]
            (Self::Avx512Vnni, BlockFormat::Q8_0) => unsafe { avx512_vnni::q8_0(weight_row, rows) },
            #[cfg(target_arch = "x86_64")]
            (Self::Avx512Vnni, BlockFormat::Q4_1) => unsafe { avx512_vnni::q4_1(weight_row, rows) },
        }
    }
}

/// The quantized activation rows one kernel call reads.
struct TileRows<'a, const R: usize> {
    quants: [&'a [i8]; R],
    scales: [&'a [f32]; R],
    sums: [&'a [f32]; R],
}

impl<'a, const R: usize> TileRows<'a, R> {
    fn new(xs: &'a Q8Rows, first: usize) -> Self {
        let blocks = xs.cols / BLOCK;
        let row = |r: usize| first + r;
        Self {
            quants: std::array::from_fn(|r| &xs.quants[row(r) * xs.cols..(row(r) + 1) * xs.cols]),
            scales: std::array::from_fn(|r| &xs.scales[row(r) * blocks..(row(r) + 1) * blocks]),
            sums: std::array::from_fn(|r| &xs.sums[row(r) * blocks..(row(r) + 1) * blocks]),
        }
    }
}

/// A block's f16 field at `offset`.
fn half_at(block: &[u8], offset: usize) -> f32 {
    f16::from_le_bytes([block[offset], block[offset + 1]]).to_f32()
}

/// The sum of eight lanes in the order the x86 kernels add them.
fn horizontal_sum(l: [f32; LANES]) -> f32 {
    let half = [l[4] + l[0], l[5] + l[1], l[6] + l[2], l[7] + l[3]];
    (half[0] + half[2]) + (half[1] + half[3])
}

/// The reference kernels: each block's products are summed four at a time
/// into [`LANES`] integers and scaled into f32 lanes with fused
/// multiply-adds, exactly as the SIMD kernels do.
mod portable {
    use super::{BLOCK, BlockFormat, LANES, TileRows, half_at, horizontal_sum};

    fn accumulate(lanes: &mut [f32; LANES], scale: f32, weight: impl Fn(usize) -> i32, xs: &[i8]) {
        for (l, lane) in lanes.iter_mut().enumerate() {
            let dot: i32 = (4 * l..4 * l + 4).map(|j| weight(j) * i32::from(xs[j])).sum();
            *lane = scale.mul_add(dot as f32, *lane);
        }
    }

    pub(super) fn q8_0<const R: usize>(weight_row: &[u8], rows: &TileRows<'_, R>) -> [f32; R] {
        let mut lanes = [[0f32; LANES]; R];
        for (b, block) in weight_row.chunks_exact(BlockFormat::Q8_0.block_bytes()).enumerate() {
            let d = half_at(block, 0);
            let weight = |j: usize| i32::from(block[2 + j] as i8);
            for (r, lanes) in lanes.iter_mut().enumerate() {
                let xs = &rows.quants[r][b * BLOCK..(b + 1) * BLOCK];
                accumulate(lanes, d * rows.scales[r][b], weight, xs);
            }
        }
        lanes.map(horizontal_sum)
    }

    pub(super) fn q4_1<const R: usize>(weight_row: &[u8], rows: &TileRows<'_, R>) -> [f32; R] {
        let mut lanes = [[0f32; LANES]; R];
        let mut mins = [0f32; R];
        for (b, block) in weight_row.chunks_exact(BlockFormat::Q4_1.block_bytes()).enumerate() {
            let (d, m) = (half_at(block, 0), half_at(block, 2));
            let weight = |j: usize| i32::from((block[4 + j % 16] >> (j / 16 * 4)) & 0x0F);
            for (r, lanes) in lanes.iter_mut().enumerate() {
                let xs = &rows.quants[r][b * BLOCK..(b + 1) * BLOCK];
                accumulate(lanes, d * rows.scales[r][b], weight, xs);
                mins[r] = m.mul_add(rows.sums[r][b], mins[r]);
            }
        }
        std::array::from_fn(|r| horizontal_sum(lanes[r]) + mins[r])
    }
}

/// Stamps out the x86 kernels for one set of target features; only the
/// byte dot product (`|u, s| ...`: sums of four adjacent products of
/// unsigned `u` and signed `s` bytes, in eight i32 lanes) differs.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_kernels {
    ($(#[$doc:meta])* $module:ident, $features:literal, |$u:ident, $s:ident| $byte_dot:expr) => {
        $(#[$doc])*
        #[allow(unsafe_code)]
        mod $module {
            use std::arch::x86_64::*;

            use super::{BLOCK, BlockFormat, LANES, TileRows, half_at, horizontal_sum};

            #[target_feature(enable = $features)]
            fn byte_dot($u: __m256i, $s: __m256i) -> __m256i {
                $byte_dot
            }

            #[target_feature(enable = $features)]
            fn activations(quants: &[i8], block: usize) -> __m256i {
                let xs: &[i8; BLOCK] = quants[block * BLOCK..(block + 1) * BLOCK]
                    .try_into()
                    .unwrap_or_else(|_| unreachable!());
                // SAFETY: `xs` is exactly 32 readable bytes; unaligned load.
                unsafe { _mm256_loadu_si256(xs.as_ptr().cast()) }
            }

            #[target_feature(enable = $features)]
            fn lanes_sum(lanes: __m256) -> f32 {
                let mut out = [0f32; LANES];
                // SAFETY: `out` is 8 writable f32; unaligned store.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), lanes) };
                horizontal_sum(out)
            }

            /// # Safety
            /// The CPU must support the module's target features.
            #[target_feature(enable = $features)]
            pub(in super::super) unsafe fn q8_0<const R: usize>(
                weight_row: &[u8],
                rows: &TileRows<'_, R>,
            ) -> [f32; R] {
                let mut lanes = [_mm256_setzero_ps(); R];
                for (b, block) in weight_row.chunks_exact(BlockFormat::Q8_0.block_bytes()).enumerate() {
                    let d = half_at(block, 0);
                    let weights: &[u8; BLOCK] =
                        block[2..].try_into().unwrap_or_else(|_| unreachable!());
                    // SAFETY: `weights` is exactly 32 readable bytes; unaligned load.
                    let w = unsafe { _mm256_loadu_si256(weights.as_ptr().cast()) };
                    // |w| as the unsigned side; x takes w's sign, so |w| * that = w * x.
                    let w_abs = _mm256_sign_epi8(w, w);
                    for (r, lanes) in lanes.iter_mut().enumerate() {
                        let x = _mm256_sign_epi8(activations(rows.quants[r], b), w);
                        let dot = _mm256_cvtepi32_ps(byte_dot(w_abs, x));
                        *lanes = _mm256_fmadd_ps(_mm256_set1_ps(d * rows.scales[r][b]), dot, *lanes);
                    }
                }
                lanes.map(|lanes| lanes_sum(lanes))
            }

            /// # Safety
            /// The CPU must support the module's target features.
            #[target_feature(enable = $features)]
            pub(in super::super) unsafe fn q4_1<const R: usize>(
                weight_row: &[u8],
                rows: &TileRows<'_, R>,
            ) -> [f32; R] {
                let mut lanes = [_mm256_setzero_ps(); R];
                let mut mins = [0f32; R];
                let nibble = _mm256_set1_epi8(0x0F);
                for (b, block) in weight_row.chunks_exact(BlockFormat::Q4_1.block_bytes()).enumerate() {
                    let (d, m) = (half_at(block, 0), half_at(block, 2));
                    let packed: &[u8; BLOCK / 2] =
                        block[4..].try_into().unwrap_or_else(|_| unreachable!());
                    // SAFETY: `packed` is exactly 16 readable bytes; unaligned load.
                    let packed = unsafe { _mm_loadu_si128(packed.as_ptr().cast()) };
                    // Values 0..16 from the low nibbles, 16..32 from the high ones.
                    let w = _mm256_and_si256(
                        _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
                        nibble,
                    );
                    for (r, lanes) in lanes.iter_mut().enumerate() {
                        let dot = _mm256_cvtepi32_ps(byte_dot(w, activations(rows.quants[r], b)));
                        *lanes = _mm256_fmadd_ps(_mm256_set1_ps(d * rows.scales[r][b]), dot, *lanes);
                        mins[r] = m.mul_add(rows.sums[r][b], mins[r]);
                    }
                }
                std::array::from_fn(|r| lanes_sum(lanes[r]) + mins[r])
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    /// AVX2: the byte dot product is a multiply-add of byte pairs into i16
    /// (cannot saturate: |products| <= 127 * 127, two per i16) and of i16
    /// pairs into i32.
    avx2,
    "avx2,fma",
    |u, s| _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
);

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    /// AVX-512 VNNI (256-bit forms): the byte dot product is one `vpdpbusd`.
    avx512_vnni,
    "avx2,fma,avx512vnni,avx512vl",
    |u, s| _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;

    /// Deterministic values with a spread of magnitudes (and some zeros).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).rotate_left(7);
                if h.is_multiple_of(17) { 0.0 } else { (h % 2001) as f32 / 1000.0 - 1.0 }
            })
            .collect()
    }

    struct Case {
        weights: Arc<QTensor>,
        bytes: Vec<u8>,
        format: BlockFormat,
        xs: Vec<f32>,
        m: usize,
        n: usize,
        k: usize,
    }

    impl Case {
        fn new(format: BlockFormat, m: usize, n: usize, k: usize) -> Self {
            let dtype = match format {
                BlockFormat::Q8_0 => GgmlDType::Q8_0,
                BlockFormat::Q4_1 => GgmlDType::Q4_1,
            };
            let w = Tensor::from_vec(values(n * k, 1), (n, k), &Device::Cpu).expect("tensor");
            let weights = Arc::new(QTensor::quantize(&w, dtype).expect("quantize"));
            let bytes = weights.data().expect("data").into_owned();
            Self { weights, bytes, format, xs: values(m * k, 2), m, n, k }
        }

        fn product(&self, kernel: Kernel) -> Vec<f32> {
            let matrix = QMatrix::new(&self.bytes, self.n, self.k, self.format).expect("matrix");
            let rows = Q8Rows::quantize(&self.xs, self.k).expect("rows");
            matmul_with(kernel, &matrix, &rows).expect("matmul")
        }

        fn candle(&self) -> Vec<f32> {
            let xs = Tensor::from_slice(&self.xs, (self.m, self.k), &Device::Cpu).expect("tensor");
            let product = QMatMul::from_arc(Arc::clone(&self.weights)).expect("qmatmul");
            let ys = product.forward(&xs).expect("candle matmul");
            ys.flatten_all().and_then(|t| t.to_vec1()).expect("vec")
        }
    }

    const FORMATS: [BlockFormat; 2] = [BlockFormat::Q8_0, BlockFormat::Q4_1];

    #[test]
    fn every_kernel_matches_candle_for_every_tile_size() {
        for format in FORMATS {
            // Candle's scalar Q4_1 dot product wants an even number of blocks.
            for (m, n, k) in [(1, 70, 128), (2, 70, 128), (7, 33, 64), (8, 70, 576), (9, 5, 128), (21, 40, 64)]
            {
                let case = Case::new(format, m, n, k);
                let expected = case.candle();
                for kernel in Kernel::available() {
                    let got = case.product(kernel);
                    assert_eq!(got.len(), expected.len());
                    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                        assert!(
                            (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                            "{kernel:?} {format:?} {m}x{n}x{k} [{i}]: {g} vs {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn simd_kernels_equal_the_portable_reference_bit_for_bit() {
        for format in FORMATS {
            for m in [1, 3, 8, 11] {
                let case = Case::new(format, m, 37, 576);
                let reference = case.product(Kernel::Portable);
                for kernel in Kernel::available() {
                    assert_eq!(case.product(kernel), reference, "{kernel:?} {format:?} m = {m}");
                }
            }
        }
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_batched_with_it() {
        for format in FORMATS {
            let batch = Case::new(format, 11, 45, 192);
            let together = batch.product(Kernel::detect());
            for i in 0..batch.m {
                let alone = Case { xs: batch.xs[i * 192..(i + 1) * 192].to_vec(), m: 1, ..Case::new(format, 0, 45, 192) };
                assert_eq!(alone.product(Kernel::detect()), together[i * 45..(i + 1) * 45], "{format:?} row {i}");
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let q8_0 = BlockFormat::Q8_0;
        assert_eq!(QMatrix::new(&[0; 34], 1, 30, q8_0).err(), Some(ShapeError::PartialBlock(30)));
        assert!(matches!(QMatrix::new(&[0; 33], 1, 32, q8_0), Err(ShapeError::WeightSize { .. })));
        assert!(matches!(
            QMatrix::new(&[0; 34], 1, 32, BlockFormat::Q4_1),
            Err(ShapeError::WeightSize { .. })
        ));
        assert!(Q8Rows::quantize(&[0.0; 40], 20).is_err());
        let matrix = QMatrix::new(&[0; 68], 1, 64, q8_0).expect("matrix");
        let rows = Q8Rows::quantize(&[0.0; 32], 32).expect("rows");
        assert_eq!(
            matmul(&matrix, &rows).err(),
            Some(ShapeError::Inner { activations: 32, weights: 64 })
        );
    }
}
