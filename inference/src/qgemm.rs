//! Quantized matrix products on the CPU for one or many activation rows:
//! single-stream decoding, batched decoding and prompt chunks.
//!
//! candle's CPU quantized matmul computes every (row, column) dot product on
//! its own: each one reloads the weight block and converts its scales, so
//! eight rows cost eight times one row, and it has only scalar code for Q4_1,
//! the format SmolLM2 ships in. Here a matrix is repacked once, at load time,
//! into groups of [`GROUP`] weight rows interleaved four bytes at a time
//! ([`PackedMatrix`]): one 32-byte register then holds four values of each
//! of eight rows, a single broadcast activation word multiplies all eight,
//! and each block's scales for the eight rows convert in one instruction.
//! The packed matrix is the only copy of the weights (embedding rows are
//! read back from it), in the same number of bytes as GGML's layout.
//!
//! Two GGML block formats are read ([`BlockFormat`]): Q8_0 and Q4_1, whose
//! 4-bit weights move 40% fewer bytes per token than Q8_0; single-stream
//! decoding is bounded by that traffic. Activations are quantized as candle
//! quantizes them (8 bits with an f16 scale per 32 values, plus the scaled
//! block sum that Q4_1's minimum needs, as GGML's Q8_1), so results differ
//! from candle's only in the order of the float sums.
//!
//! Each output accumulates its blocks in order with fused multiply-adds of
//! exact integer block sums, so the portable, AVX2 and AVX-512 VNNI kernels
//! return bit-identical results, and a row's result never depends on which
//! rows share the product: batching cannot change a greedy output.

use half::f16;
use rayon::prelude::*;

/// Values per quantization block, in both formats.
pub const BLOCK: usize = 32;
/// Weight rows interleaved in one packed group (one f32 lane each).
pub const GROUP: usize = 8;
/// Activation rows that share one pass over a weight group.
pub const ROW_TILE: usize = 8;
/// Weight groups per parallel work item.
const GROUPS_PER_TASK: usize = 4;
/// f32 lanes of one 256-bit register.
const LANES: usize = 8;
/// Bytes of one row's four values that share a 32-bit lane.
const WORD: usize = 4;
/// How far ahead of the block being multiplied the x86 kernels ask for
/// weight bytes: single-row products stream the weights once per token and
/// otherwise wait on memory.
const PREFETCH_DISTANCE: usize = 1024;

/// A GGML block format.
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
    /// Bytes per block of [`BLOCK`] values in GGML's layout.
    pub const fn block_bytes(self) -> usize {
        self.header_bytes() + self.quant_bytes()
    }

    /// The f16 fields before the quants.
    const fn header_bytes(self) -> usize {
        match self {
            Self::Q8_0 => 2,
            Self::Q4_1 => 4,
        }
    }

    const fn quant_bytes(self) -> usize {
        match self {
            Self::Q8_0 => BLOCK,
            Self::Q4_1 => BLOCK / 2,
        }
    }

    /// Bytes of one packed block of [`GROUP`] rows: each header field for
    /// the eight rows, then their quants.
    const fn group_block_bytes(self) -> usize {
        GROUP * self.block_bytes()
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
    /// A row index past the matrix.
    #[error("row {row} of a matrix of {rows} rows")]
    Row {
        /// Index asked for.
        row: usize,
        /// Rows held.
        rows: usize,
    },
}

/// A quantized matrix repacked for the kernels: `rows` x `cols` values in
/// groups of [`GROUP`] rows (the last group padded with zero rows).
///
/// Within a group, block `b` holds each header field of the eight rows (f16
/// each), then the quants of the eight rows interleaved [`WORD`] bytes at a
/// time: word `w` of every row, for `w` in order. For Q8_0, word `w` holds
/// values `4w..4w + 4`; for Q4_1 its low nibbles hold values `4w..4w + 4`
/// and its high nibbles values `16 + 4w..16 + 4w + 4`.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    bytes: Vec<u8>,
    rows: usize,
    cols: usize,
    format: BlockFormat,
}

impl PackedMatrix {
    /// Repacks `bytes`, a `rows` x `cols` matrix of `format` blocks in
    /// GGML's layout (candle's `QTensor::data` on the CPU).
    pub fn pack(
        bytes: &[u8],
        rows: usize,
        cols: usize,
        format: BlockFormat,
    ) -> Result<Self, ShapeError> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(ShapeError::PartialBlock(cols));
        }
        let row_bytes = cols / BLOCK * format.block_bytes();
        if rows.checked_mul(row_bytes) != Some(bytes.len()) {
            return Err(ShapeError::WeightSize {
                bytes: bytes.len(),
                rows,
                cols,
                format,
            });
        }
        let header = format.header_bytes();
        let mut packed = vec![0u8; rows.div_ceil(GROUP) * GROUP * row_bytes];
        let group_block = format.group_block_bytes();
        for (row, source) in bytes.chunks_exact(row_bytes).enumerate() {
            let (group, lane) = (row / GROUP, row % GROUP);
            let group_start = group * GROUP * row_bytes;
            for (b, block) in source.chunks_exact(format.block_bytes()).enumerate() {
                let target = &mut packed[group_start + b * group_block..][..group_block];
                for field in 0..header / 2 {
                    let at = field * 2 * GROUP + lane * 2;
                    target[at..at + 2].copy_from_slice(&block[field * 2..field * 2 + 2]);
                }
                let quants = &mut target[header * GROUP..];
                for (w, word) in block[header..].chunks_exact(WORD).enumerate() {
                    let at = (w * GROUP + lane) * WORD;
                    quants[at..at + WORD].copy_from_slice(word);
                }
            }
        }
        Ok(Self {
            bytes: packed,
            rows,
            cols,
            format,
        })
    }

    /// Rows (output width of a product).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (input width of a product).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The block format.
    pub fn format(&self) -> BlockFormat {
        self.format
    }

    fn group(&self, group: usize) -> &[u8] {
        let len = GROUP * self.cols / BLOCK * self.format.block_bytes();
        &self.bytes[group * len..(group + 1) * len]
    }

    /// Row `row` expanded to f32 (an embedding lookup), computed as candle
    /// dequantizes it.
    pub fn dequantize_row(&self, row: usize, out: &mut Vec<f32>) -> Result<(), ShapeError> {
        if row >= self.rows {
            return Err(ShapeError::Row {
                row,
                rows: self.rows,
            });
        }
        let lane = row % GROUP;
        let group_block = self.format.group_block_bytes();
        for block in self.group(row / GROUP).chunks_exact(group_block) {
            let d = half_at(block, lane * 2);
            let quant = |v: usize| packed_quant(self.format, block, lane, v) as f32;
            match self.format {
                BlockFormat::Q8_0 => out.extend((0..BLOCK).map(|v| quant(v) * d)),
                BlockFormat::Q4_1 => {
                    let m = half_at(block, 2 * GROUP + lane * 2);
                    out.extend((0..BLOCK).map(|v| quant(v) * d + m));
                }
            }
        }
        Ok(())
    }

    /// `xs` (m x k) times the transpose of this matrix (n x k): m x n,
    /// row-major.
    pub fn matmul(&self, xs: &Q8Rows) -> Result<Vec<f32>, ShapeError> {
        self.matmul_with(Kernel::detect(), xs)
    }

    fn matmul_with(&self, kernel: Kernel, xs: &Q8Rows) -> Result<Vec<f32>, ShapeError> {
        if self.cols != xs.cols {
            return Err(ShapeError::Inner {
                activations: xs.cols,
                weights: self.cols,
            });
        }
        let (m, n, groups) = (xs.rows, self.rows, self.rows.div_ceil(GROUP));
        // By group while computing, so that each task owns a contiguous slice:
        // group g, activation row r, lane l at (g * m + r) * GROUP + l.
        let mut by_group = vec![0f32; groups * m * GROUP];
        if m == 0 {
            return Ok(by_group);
        }
        by_group
            .par_chunks_mut(GROUPS_PER_TASK * m * GROUP)
            .enumerate()
            .for_each(|(task, out)| {
                for (offset, out) in out.chunks_exact_mut(m * GROUP).enumerate() {
                    let group = self.group(task * GROUPS_PER_TASK + offset);
                    for (tile, out) in out.chunks_mut(ROW_TILE * GROUP).enumerate() {
                        kernel.dot_tile(self.format, group, xs, tile * ROW_TILE, out);
                    }
                }
            });
        if m == 1 {
            by_group.truncate(n);
            return Ok(by_group);
        }
        let mut out = Vec::with_capacity(m * n);
        for r in 0..m {
            for g in 0..groups {
                let lanes = &by_group[(g * m + r) * GROUP..][..GROUP];
                out.extend_from_slice(&lanes[..GROUP.min(n - g * GROUP)]);
            }
        }
        Ok(out)
    }
}

/// Activation rows quantized to 8 bits exactly as candle quantizes them for
/// Q8_0 and Q8_1 (scale = max |x| / 127 rounded to f16, quants =
/// round(x / scale), sum = f16(Σ quants) * scale in f16), kept apart so that
/// every weight group reuses them.
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
        let mut quants = vec![0i8; xs.len()];
        let mut scales = Vec::with_capacity(xs.len() / BLOCK);
        let mut sums = Vec::with_capacity(xs.len() / BLOCK);
        for (block, quants) in xs.chunks_exact(BLOCK).zip(quants.chunks_exact_mut(BLOCK)) {
            // Eight running maxima, then theirs: the same value as one
            // running maximum (max is exact in any order) without a chain of
            // 32 dependent steps.
            let lanes = block
                .chunks_exact(LANES)
                .fold([0f32; LANES], |mut lanes, xs| {
                    for (lane, x) in lanes.iter_mut().zip(xs) {
                        *lane = lane.max(x.abs());
                    }
                    lanes
                });
            let max = lanes.into_iter().fold(0f32, f32::max);
            let scale = max / 127.0;
            let inverse = if scale == 0.0 { 0.0 } else { 1.0 / scale };
            let mut total = 0i32;
            for (q, x) in quants.iter_mut().zip(block) {
                // In [-127, 127] by construction: the cast cannot saturate.
                *q = (x * inverse).round() as i8;
                total += i32::from(*q);
            }
            let scale = f16::from_f32(scale);
            scales.push(scale.to_f32());
            sums.push((f16::from_f32(total as f32) * scale).to_f32());
        }
        Ok(Self {
            quants,
            scales,
            sums,
            rows: xs.len() / cols,
            cols,
        })
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Which implementation computes the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, for every CPU; the reference the others must equal.
    Portable,
    /// AVX2 + FMA + F16C intrinsics (x86-64, detected at run time).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The AVX2 kernel with AVX-512 VNNI byte dot products (x86-64,
    /// detected at run time): one instruction where AVX2 needs three.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") && has!("f16c") {
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

    /// Products of one packed weight group with activation rows
    /// `first..first + out.len() / GROUP` (at most [`ROW_TILE`]), into
    /// `out` (row after row, [`GROUP`] lanes each).
    fn dot_tile(
        self,
        format: BlockFormat,
        group: &[u8],
        xs: &Q8Rows,
        first: usize,
        out: &mut [f32],
    ) {
        macro_rules! tile {
            ($($rows:literal)*) => {
                match out.len() / GROUP {
                    $($rows => {
                        let sums = self.dot(format, group, &TileRows::<$rows>::new(xs, first));
                        out.copy_from_slice(sums.as_flattened());
                    })*
                    other => unreachable!("tile of {other} rows"),
                }
            };
        }
        tile!(1 2 3 4 5 6 7 8);
    }

    #[allow(unsafe_code)]
    fn dot<const R: usize>(
        self,
        format: BlockFormat,
        group: &[u8],
        rows: &TileRows<'_, R>,
    ) -> [[f32; GROUP]; R] {
        match (self, format) {
            (Self::Portable, _) => portable::dot(format, group, rows),
            // SAFETY (all four): `Avx2` and `Avx512Vnni` are only ever
            // returned by `detect` after the CPU reported their features.
            #[cfg(target_arch = "x86_64")]
            (Self::Avx2, BlockFormat::Q8_0) => unsafe { avx2::q8_0(group, rows) },
            #[cfg(target_arch = "x86_64")]
            (Self::Avx2, BlockFormat::Q4_1) => unsafe { avx2::q4_1(group, rows) },
            #[cfg(target_arch = "x86_64")]
            (Self::Avx512Vnni, BlockFormat::Q8_0) => unsafe { avx512_vnni::q8_0(group, rows) },
            #[cfg(target_arch = "x86_64")]
            (Self::Avx512Vnni, BlockFormat::Q4_1) => unsafe { avx512_vnni::q4_1(group, rows) },
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

    /// Row `r`'s four quants that multiply word `w` of a block, as the
    /// little-endian word a broadcast loads.
    fn word(&self, r: usize, block: usize, w: usize) -> i32 {
        let at = block * BLOCK + w * WORD;
        let q = &self.quants[r][at..at + WORD];
        i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8])
    }
}

/// Value `v`'s quant (of [`BLOCK`]) for the row in `lane` of one packed
/// block of a group.
fn packed_quant(format: BlockFormat, block: &[u8], lane: usize, v: usize) -> i32 {
    let quants = &block[format.header_bytes() * GROUP..];
    let byte = |word: usize| quants[(word * GROUP + lane) * WORD + v % WORD];
    match format {
        BlockFormat::Q8_0 => i32::from(byte(v / WORD) as i8),
        BlockFormat::Q4_1 if v < 16 => i32::from(byte(v / WORD) & 0x0F),
        BlockFormat::Q4_1 => i32::from(byte((v - 16) / WORD) >> 4),
    }
}

/// A block's f16 field at `offset`.
fn half_at(block: &[u8], offset: usize) -> f32 {
    f16::from_le_bytes([block[offset], block[offset + 1]]).to_f32()
}

/// The reference kernel: per output, each block's exact integer sum, scaled
/// and added with fused multiply-adds in the SIMD kernels' order.
mod portable {
    use super::{BLOCK, BlockFormat, GROUP, TileRows, half_at, packed_quant};

    pub(super) fn dot<const R: usize>(
        format: BlockFormat,
        group: &[u8],
        rows: &TileRows<'_, R>,
    ) -> [[f32; GROUP]; R] {
        let mut acc = [[0f32; GROUP]; R];
        for (b, block) in group.chunks_exact(format.group_block_bytes()).enumerate() {
            for lane in 0..GROUP {
                let d = half_at(block, lane * 2);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let xs = &rows.quants[r][b * BLOCK..(b + 1) * BLOCK];
                    let sum: i32 = (0..BLOCK)
                        .map(|v| packed_quant(format, block, lane, v) * i32::from(xs[v]))
                        .sum();
                    acc[lane] = (d * rows.scales[r][b]).mul_add(sum as f32, acc[lane]);
                    if format == BlockFormat::Q4_1 {
                        let m = half_at(block, 2 * GROUP + lane * 2);
                        acc[lane] = m.mul_add(rows.sums[r][b], acc[lane]);
                    }
                }
            }
        }
        acc
    }
}

/// Stamps out the x86 kernels for one set of target features; only the
/// accumulating byte dot product differs (`|acc, u, s| ...`: `acc` plus, in
/// each 32-bit lane, the four products of unsigned bytes `u` and signed
/// bytes `s`).
#[cfg(target_arch = "x86_64")]
macro_rules! x86_kernels {
    (
        $(#[$doc:meta])* $module:ident, $features:literal,
        |$acc:ident, $u:ident, $s:ident| $byte_dot:expr
    ) => {
        $(#[$doc])*
        #[allow(unsafe_code)]
        mod $module {
            use std::arch::x86_64::*;

            use super::{BLOCK, BlockFormat, GROUP, PREFETCH_DISTANCE, TileRows, WORD};

            #[target_feature(enable = $features)]
            fn byte_dot($acc: __m256i, $u: __m256i, $s: __m256i) -> __m256i {
                $byte_dot
            }

            /// The 32 bytes at `at`.
            #[target_feature(enable = $features)]
            fn load(bytes: &[u8], at: usize) -> __m256i {
                let bytes: &[u8; 32] = bytes[at..at + 32].try_into().unwrap_or_else(|_| unreachable!());
                // SAFETY: `bytes` is exactly 32 readable bytes; unaligned load.
                unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
            }

            /// The eight f16 values at `at`, widened.
            #[target_feature(enable = $features)]
            fn halves(bytes: &[u8], at: usize) -> __m256 {
                let bytes: &[u8; 16] = bytes[at..at + 16].try_into().unwrap_or_else(|_| unreachable!());
                // SAFETY: `bytes` is exactly 16 readable bytes; unaligned load.
                _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) })
            }

            /// Asks for the weight bytes [`PREFETCH_DISTANCE`] ahead of `block`.
            #[target_feature(enable = $features)]
            fn prefetch(block: &[u8]) {
                // A hint: it never faults, whatever the address.
                _mm_prefetch::<_MM_HINT_T0>(block.as_ptr().wrapping_add(PREFETCH_DISTANCE).cast());
            }

            #[target_feature(enable = $features)]
            fn lanes(acc: __m256) -> [f32; GROUP] {
                let mut out = [0f32; GROUP];
                // SAFETY: `out` is 8 writable f32; unaligned store.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
                out
            }

            /// # Safety
            /// The CPU must support the module's target features.
            #[target_feature(enable = $features)]
            pub(in super::super) unsafe fn q8_0<const R: usize>(
                group: &[u8],
                rows: &TileRows<'_, R>,
            ) -> [[f32; GROUP]; R] {
                const WORDS: usize = BLOCK / WORD;
                let mut acc = [_mm256_setzero_ps(); R];
                for (b, block) in group.chunks_exact(BlockFormat::Q8_0.group_block_bytes()).enumerate() {
                    prefetch(block);
                    let d = halves(block, 0);
                    let signed: [__m256i; WORDS] = std::array::from_fn(|w| load(block, 16 + w * 32));
                    // |w| as the unsigned side; x takes w's sign, so |w| * that = w * x.
                    let magnitude = signed.map(|w| _mm256_sign_epi8(w, w));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let mut sum = _mm256_setzero_si256();
                        for w in 0..WORDS {
                            let x = _mm256_sign_epi8(_mm256_set1_epi32(rows.word(r, b, w)), signed[w]);
                            sum = byte_dot(sum, magnitude[w], x);
                        }
                        let scale = _mm256_mul_ps(d, _mm256_set1_ps(rows.scales[r][b]));
                        *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sum), *acc);
                    }
                }
                acc.map(|acc| lanes(acc))
            }

            /// # Safety
            /// The CPU must support the module's target features.
            #[target_feature(enable = $features)]
            pub(in super::super) unsafe fn q4_1<const R: usize>(
                group: &[u8],
                rows: &TileRows<'_, R>,
            ) -> [[f32; GROUP]; R] {
                const PACKED_WORDS: usize = BLOCK / 2 / WORD;
                let nibble = _mm256_set1_epi8(0x0F);
                let mut acc = [_mm256_setzero_ps(); R];
                for (b, block) in group.chunks_exact(BlockFormat::Q4_1.group_block_bytes()).enumerate() {
                    prefetch(block);
                    let (d, m) = (halves(block, 0), halves(block, 16));
                    // Word w's low nibbles are values 4w.., its high ones 16 + 4w..
                    let mut quants = [_mm256_setzero_si256(); 2 * PACKED_WORDS];
                    for w in 0..PACKED_WORDS {
                        let packed = load(block, 32 + w * 32);
                        quants[w] = _mm256_and_si256(packed, nibble);
                        quants[PACKED_WORDS + w] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), nibble);
                    }
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let mut sum = _mm256_setzero_si256();
                        for (w, quants) in quants.iter().enumerate() {
                            sum = byte_dot(sum, *quants, _mm256_set1_epi32(rows.word(r, b, w)));
                        }
                        let scale = _mm256_mul_ps(d, _mm256_set1_ps(rows.scales[r][b]));
                        *acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sum), *acc);
                        *acc = _mm256_fmadd_ps(m, _mm256_set1_ps(rows.sums[r][b]), *acc);
                    }
                }
                acc.map(|acc| lanes(acc))
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    /// AVX2: the byte dot product multiplies byte pairs into i16 (cannot
    /// saturate: |products| <= 127 * 127, two per i16), adds i16 pairs into
    /// i32 and those into the sum.
    avx2,
    "avx2,fma,f16c",
    |acc, u, s| _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
);

#[cfg(target_arch = "x86_64")]
x86_kernels!(
    /// AVX-512 VNNI (256-bit forms): the byte dot product is one `vpdpbusd`.
    avx512_vnni,
    "avx2,fma,f16c,avx512vnni,avx512vl",
    |acc, u, s| _mm256_dpbusd_epi32(acc, u, s)
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
                if h.is_multiple_of(17) {
                    0.0
                } else {
                    (h % 2001) as f32 / 1000.0 - 1.0
                }
            })
            .collect()
    }

    const FORMATS: [BlockFormat; 2] = [BlockFormat::Q8_0, BlockFormat::Q4_1];

    fn quantized(format: BlockFormat, n: usize, k: usize) -> Arc<QTensor> {
        let dtype = match format {
            BlockFormat::Q8_0 => GgmlDType::Q8_0,
            BlockFormat::Q4_1 => GgmlDType::Q4_1,
        };
        let w = Tensor::from_vec(values(n * k, 1), (n, k), &Device::Cpu).expect("tensor");
        Arc::new(QTensor::quantize(&w, dtype).expect("quantize"))
    }

    fn packed(weights: &QTensor, format: BlockFormat) -> PackedMatrix {
        let (n, k) = weights.shape().dims2().expect("matrix");
        PackedMatrix::pack(&weights.data().expect("data"), n, k, format).expect("pack")
    }

    fn product(matrix: &PackedMatrix, kernel: Kernel, xs: &[f32]) -> Vec<f32> {
        let rows = Q8Rows::quantize(xs, matrix.cols()).expect("rows");
        matrix.matmul_with(kernel, &rows).expect("matmul")
    }

    #[test]
    fn every_kernel_matches_candle_for_every_tile_size() {
        for format in FORMATS {
            // Candle's scalar Q4_1 dot product wants an even number of blocks.
            for (m, n, k) in [
                (1, 70, 128),
                (2, 70, 128),
                (7, 33, 64),
                (8, 72, 576),
                (9, 5, 128),
                (21, 40, 64),
            ] {
                let weights = quantized(format, n, k);
                let xs = values(m * k, 2);
                let x = Tensor::from_slice(&xs, (m, k), &Device::Cpu).expect("tensor");
                let expected: Vec<f32> = QMatMul::from_arc(Arc::clone(&weights))
                    .and_then(|product| product.forward(&x))
                    .and_then(|ys| ys.flatten_all())
                    .and_then(|ys| ys.to_vec1())
                    .expect("candle matmul");
                let matrix = packed(&weights, format);
                for kernel in Kernel::available() {
                    let got = product(&matrix, kernel, &xs);
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
            let matrix = packed(&quantized(format, 37, 576), format);
            for m in [1, 3, 8, 11] {
                let xs = values(m * 576, 3);
                let reference = product(&matrix, Kernel::Portable, &xs);
                for kernel in Kernel::available() {
                    assert_eq!(
                        product(&matrix, kernel, &xs),
                        reference,
                        "{kernel:?} {format:?} m = {m}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_batched_with_it() {
        for format in FORMATS {
            let (n, k) = (45, 192);
            let matrix = packed(&quantized(format, n, k), format);
            let xs = values(11 * k, 4);
            let together = product(&matrix, Kernel::detect(), &xs);
            for (i, row) in xs.chunks_exact(k).enumerate() {
                let alone = product(&matrix, Kernel::detect(), row);
                assert_eq!(alone, together[i * n..(i + 1) * n], "{format:?} row {i}");
            }
        }
    }

    #[test]
    fn rows_read_back_equal_candles_dequantization() {
        for format in FORMATS {
            let (n, k) = (19, 96);
            let weights = quantized(format, n, k);
            let expected: Vec<f32> = weights
                .dequantize(&Device::Cpu)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
                .expect("dequantize");
            let matrix = packed(&weights, format);
            let mut rows = Vec::new();
            for row in 0..n {
                matrix.dequantize_row(row, &mut rows).expect("row");
            }
            assert_eq!(rows, expected, "{format:?}");
            assert_eq!(
                matrix.dequantize_row(n, &mut rows),
                Err(ShapeError::Row { row: n, rows: n })
            );
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let q8_0 = BlockFormat::Q8_0;
        assert_eq!(
            PackedMatrix::pack(&[0; 34], 1, 30, q8_0).err(),
            Some(ShapeError::PartialBlock(30))
        );
        assert!(matches!(
            PackedMatrix::pack(&[0; 33], 1, 32, q8_0),
            Err(ShapeError::WeightSize { .. })
        ));
        assert!(matches!(
            PackedMatrix::pack(&[0; 34], 1, 32, BlockFormat::Q4_1),
            Err(ShapeError::WeightSize { .. })
        ));
        assert!(Q8Rows::quantize(&[0.0; 40], 20).is_err());
        let matrix = PackedMatrix::pack(&[0; 68], 1, 64, q8_0).expect("matrix");
        let rows = Q8Rows::quantize(&[0.0; 32], 32).expect("rows");
        assert_eq!(
            matrix.matmul(&rows).err(),
            Some(ShapeError::Inner {
                activations: 32,
                weights: 64
            })
        );
    }
}
