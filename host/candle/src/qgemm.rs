//! Q8_0 matrix products for several activation rows at once (batched
//! decoding and prompt chunks).
//!
//! candle's CPU quantized matmul computes every (row, column) dot product on
//! its own: each one reloads the weight block, recomputes its absolute value
//! and converts both f16 scales, so eight rows cost eight times one row and
//! continuous batching saved almost nothing. Here each weight block is loaded
//! and prepared once and then applied to up to [`ROW_TILE`] activation rows,
//! whose quantized values and scales were prepared once for the whole matrix;
//! the per-(row, block) work is one load, one sign, one multiply-add pair,
//! one conversion and one fused multiply-add.
//!
//! The arithmetic is candle's (activations quantized to Q8_0 with an f16
//! scale, exact 32-bit integer block sums, f32 accumulation per lane), so
//! results differ from candle's only in the order of the final sums.
//! An AVX2 kernel is chosen at run time when the CPU has AVX2 and FMA; the
//! portable kernel computes the same sums everywhere else.

use half::f16;
use rayon::prelude::*;

/// Values per Q8_0 block.
pub const BLOCK: usize = 32;
/// Bytes per Q8_0 block: an f16 scale, then 32 signed quants.
const BLOCK_BYTES: usize = 2 + BLOCK;
/// Activation rows that share one pass over a weight row.
pub const ROW_TILE: usize = 8;
/// Weight rows per parallel work item.
const WEIGHT_ROWS_PER_TASK: usize = 32;

/// Shapes that do not fit together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    /// The inner dimension is not a whole number of Q8_0 blocks.
    #[error("{0} columns are not a multiple of the Q8_0 block of {BLOCK}")]
    PartialBlock(usize),
    /// The weight bytes do not hold `rows` x `cols` Q8_0 values.
    #[error("{bytes} bytes cannot be a {rows}x{cols} Q8_0 matrix")]
    WeightSize {
        /// Bytes given.
        bytes: usize,
        /// Rows expected.
        rows: usize,
        /// Columns expected.
        cols: usize,
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

/// A borrowed Q8_0 matrix in GGML's layout: `rows` rows of `cols / 32`
/// blocks (candle's `QTensor::data` on the CPU).
#[derive(Debug, Clone, Copy)]
pub struct Q8_0Matrix<'a> {
    bytes: &'a [u8],
    rows: usize,
    cols: usize,
}

impl<'a> Q8_0Matrix<'a> {
    /// Views `bytes` as a `rows` x `cols` matrix, checking the size.
    pub fn new(bytes: &'a [u8], rows: usize, cols: usize) -> Result<Self, ShapeError> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(ShapeError::PartialBlock(cols));
        }
        if rows.checked_mul(cols / BLOCK * BLOCK_BYTES) != Some(bytes.len()) {
            return Err(ShapeError::WeightSize { bytes: bytes.len(), rows, cols });
        }
        Ok(Self { bytes, rows, cols })
    }

    fn row(&self, index: usize) -> &'a [u8] {
        let len = self.cols / BLOCK * BLOCK_BYTES;
        &self.bytes[index * len..(index + 1) * len]
    }
}

/// Activation rows quantized to Q8_0 exactly as candle quantizes them
/// (scale = max |x| / 127 rounded to f16, quants = round(x / scale)), kept
/// as separate quants and f32 scales so that every weight row reuses them.
#[derive(Debug, Clone)]
pub struct Q8_0Rows {
    quants: Vec<i8>,
    scales: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Q8_0Rows {
    /// Quantizes `xs`, row-major rows of `cols` values.
    pub fn quantize(xs: &[f32], cols: usize) -> Result<Self, ShapeError> {
        if cols == 0 || !cols.is_multiple_of(BLOCK) || !xs.len().is_multiple_of(cols) {
            return Err(ShapeError::PartialBlock(cols));
        }
        let mut quants = Vec::with_capacity(xs.len());
        let mut scales = Vec::with_capacity(xs.len() / BLOCK);
        for block in xs.chunks_exact(BLOCK) {
            let max = block.iter().fold(0f32, |max, x| max.max(x.abs()));
            let scale = max / 127.0;
            let inverse = if scale == 0.0 { 0.0 } else { 1.0 / scale };
            scales.push(f16::from_f32(scale).to_f32());
            // In [-127, 127] by construction: the cast cannot saturate.
            quants.extend(block.iter().map(|x| (x * inverse).round() as i8));
        }
        Ok(Self { quants, scales, rows: xs.len() / cols, cols })
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// `xs` (m x k) times the transpose of `weights` (n x k): m x n, row-major.
pub fn matmul(weights: &Q8_0Matrix<'_>, xs: &Q8_0Rows) -> Result<Vec<f32>, ShapeError> {
    if weights.cols != xs.cols {
        return Err(ShapeError::Inner { activations: xs.cols, weights: weights.cols });
    }
    let (m, n) = (xs.rows, weights.rows);
    let kernel = Kernel::detect();
    // Column-major while computing, so that each task owns a contiguous slice.
    let mut by_column = vec![0f32; m * n];
    if m > 0 {
        by_column.par_chunks_mut(m * WEIGHT_ROWS_PER_TASK).enumerate().for_each(|(task, out)| {
            for (offset, column) in out.chunks_exact_mut(m).enumerate() {
                let weight_row = weights.row(task * WEIGHT_ROWS_PER_TASK + offset);
                for (tile, out) in column.chunks_mut(ROW_TILE).enumerate() {
                    kernel.dot_tile(weight_row, xs, tile * ROW_TILE, out);
                }
            }
        });
    }
    let mut out = vec![0f32; m * n];
    for (j, column) in by_column.chunks_exact(m.max(1)).enumerate() {
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
    /// Plain Rust, for every CPU.
    Portable,
    /// AVX2 + FMA intrinsics (x86-64, detected at run time).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Self::Avx2;
        }
        Self::Portable
    }

    /// Dot products of one weight row with activation rows
    /// `first..first + out.len()` (at most [`ROW_TILE`]), into `out`.
    fn dot_tile(self, weight_row: &[u8], xs: &Q8_0Rows, first: usize, out: &mut [f32]) {
        macro_rules! tile {
            ($($rows:literal)*) => {
                match out.len() {
                    $($rows => out.copy_from_slice(&self.dot_rows::<$rows>(weight_row, xs, first)),)*
                    other => unreachable!("tile of {other} rows"),
                }
            };
        }
        tile!(1 2 3 4 5 6 7 8);
    }

    fn dot_rows<const R: usize>(self, weight_row: &[u8], xs: &Q8_0Rows, first: usize) -> [f32; R] {
        let blocks = xs.cols / BLOCK;
        let quants: [&[i8]; R] =
            std::array::from_fn(|r| &xs.quants[(first + r) * xs.cols..(first + r + 1) * xs.cols]);
        let scales: [&[f32]; R] =
            std::array::from_fn(|r| &xs.scales[(first + r) * blocks..(first + r + 1) * blocks]);
        match self {
            Self::Portable => portable::dot_rows(weight_row, quants, scales),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2` is only ever returned by `detect` after the CPU
            // reported AVX2 and FMA.
            #[allow(unsafe_code)]
            Self::Avx2 => unsafe { avx2::dot_rows(weight_row, quants, scales) },
        }
    }
}

mod portable {
    use super::{BLOCK_BYTES, f16};

    pub(super) fn dot_rows<const R: usize>(
        weight_row: &[u8],
        quants: [&[i8]; R],
        scales: [&[f32]; R],
    ) -> [f32; R] {
        let mut sums = [0f32; R];
        for (b, block) in weight_row.chunks_exact(BLOCK_BYTES).enumerate() {
            let scale = f16::from_le_bytes([block[0], block[1]]).to_f32();
            let weights = &block[2..];
            for r in 0..R {
                let xs = &quants[r][b * weights.len()..(b + 1) * weights.len()];
                let dot: i32 =
                    weights.iter().zip(xs).map(|(&w, &x)| i32::from(w as i8) * i32::from(x)).sum();
                sums[r] += scale * scales[r][b] * dot as f32;
            }
        }
        sums
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, BLOCK_BYTES, f16};

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows<const R: usize>(
        weight_row: &[u8],
        quants: [&[i8]; R],
        scales: [&[f32]; R],
    ) -> [f32; R] {
        let ones = _mm256_set1_epi16(1);
        let mut sums = [_mm256_setzero_ps(); R];
        for (b, block) in weight_row.chunks_exact(BLOCK_BYTES).enumerate() {
            let scale = f16::from_le_bytes([block[0], block[1]]).to_f32();
            let weights: &[u8; BLOCK] = block[2..].try_into().unwrap_or_else(|_| unreachable!());
            // SAFETY: `weights` is exactly 32 readable bytes; unaligned load.
            let w = unsafe { _mm256_loadu_si256(weights.as_ptr().cast()) };
            // |w| as unsigned bytes, for maddubs (which wants one unsigned side).
            let w_abs = _mm256_sign_epi8(w, w);
            for r in 0..R {
                let xs = &quants[r][b * BLOCK..(b + 1) * BLOCK];
                // SAFETY: `xs` is exactly 32 readable bytes; unaligned load.
                let x = unsafe { _mm256_loadu_si256(xs.as_ptr().cast()) };
                // x carrying w's sign, so |w| * that = w * x (|products| <= 127 * 127,
                // and two of them fit an i16).
                let products = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(x, w));
                let dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(products, ones));
                sums[r] = _mm256_fmadd_ps(_mm256_set1_ps(scale * scales[r][b]), dot, sums[r]);
            }
        }
        let mut out = [0f32; R];
        for (out, lanes) in out.iter_mut().zip(sums) {
            *out = horizontal_sum(lanes);
        }
        out
    }

    /// The sum of the eight lanes, in candle's order.
    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(lanes: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_extractf128_ps(lanes, 1), _mm256_castps256_ps128(lanes));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)))
    }
}

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

    fn candle_product(weights: &Arc<QTensor>, xs: &[f32], m: usize, k: usize) -> Vec<f32> {
        let xs = Tensor::from_slice(xs, (m, k), &Device::Cpu).expect("tensor");
        let ys = QMatMul::from_arc(Arc::clone(weights)).expect("qmatmul").forward(&xs).expect("mm");
        ys.flatten_all().and_then(|t| t.to_vec1()).expect("vec")
    }

    fn check(kernel: Kernel, m: usize, n: usize, k: usize) {
        let w = Tensor::from_vec(values(n * k, 1), (n, k), &Device::Cpu).expect("tensor");
        let weights = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).expect("quantize"));
        let bytes = weights.data().expect("data");
        let matrix = Q8_0Matrix::new(&bytes, n, k).expect("matrix");
        let xs = values(m * k, 2);
        let rows = Q8_0Rows::quantize(&xs, k).expect("rows");
        let expected = candle_product(&weights, &xs, m, k);
        let got = {
            let mut by_column = vec![0f32; m * n];
            for (j, column) in by_column.chunks_exact_mut(m).enumerate() {
                for (tile, out) in column.chunks_mut(ROW_TILE).enumerate() {
                    kernel.dot_tile(matrix.row(j), &rows, tile * ROW_TILE, out);
                }
            }
            (0..m * n).map(|i| by_column[(i % n) * m + i / n]).collect::<Vec<_>>()
        };
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{kernel:?} {m}x{n}x{k} [{i}]: {g} vs {e}");
        }
        if kernel == Kernel::detect() {
            assert_eq!(matmul(&matrix, &rows).expect("matmul"), got);
        }
    }

    #[test]
    fn every_kernel_matches_candle_for_every_tile_size() {
        let mut kernels = vec![Kernel::Portable];
        if Kernel::detect() != Kernel::Portable {
            kernels.push(Kernel::detect());
        }
        for kernel in kernels {
            for m in [1, 2, 3, 7, 8, 9, 16, 21] {
                check(kernel, m, 70, 96);
            }
            check(kernel, 8, 33, 576);
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert_eq!(Q8_0Matrix::new(&[0; 34], 1, 30).err(), Some(ShapeError::PartialBlock(30)));
        assert!(matches!(Q8_0Matrix::new(&[0; 33], 1, 32), Err(ShapeError::WeightSize { .. })));
        assert!(Q8_0Rows::quantize(&[0.0; 40], 20).is_err());
        let matrix = Q8_0Matrix::new(&[0; 68], 1, 64).expect("matrix");
        let rows = Q8_0Rows::quantize(&[0.0; 32], 32).expect("rows");
        assert_eq!(
            matmul(&matrix, &rows).err(),
            Some(ShapeError::Inner { activations: 32, weights: 64 })
        );
    }
}
