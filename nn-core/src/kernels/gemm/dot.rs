//! Products with a small output and a long inner dimension along which both
//! operands are contiguous (a convolution's weight gradient `dy · colsᵀ`):
//! blocks of dot products read straight from memory. The blocked path would
//! first transpose all of `b` into packed panels, which for these shapes costs
//! more than the arithmetic.

use super::blocked::Mat;
use crate::kernels::array::array;
use crate::Float;

/// Rows and columns of `c` computed together: 16 vector accumulators.
const TILE: usize = 4;

/// Whether [`gemm`] suits these operands: both contiguous along `k`, an output
/// of at most [`MAX_OUT`] entries, and `k` much longer than either side of the
/// output (otherwise the blocked path, whose packing is then cheap, is faster:
/// measured on a dense layer's `x · Wᵀ` at batch 16).
///
/// Measured on one core of this project's AMD EPYC machine (`a · bᵀ`, `k` of
/// 1700–16384): the dot products win on outputs of 16 × 9 (2×) and 8 × 48
/// (1.3×) and tie at 6 × 25; from 16 × 32 up the blocked path, transposing
/// `b` as it packs, is 1.5–2.8× faster (16 × 144, a 16-channel 3×3
/// convolution's weight gradient: 56 against 105 GFLOP/s).
pub fn suits<T>(a: &Mat<T>, b: &Mat<T>) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    a.cs == 1 && b.rs == 1 && m * n <= MAX_OUT && k >= 1024 && k >= 8 * m.max(n)
}

/// `c = alpha · a · b + beta · c` as dot products of `a`'s rows with `b`'s columns.
///
/// # Safety
/// As [`super::blocked::gemm`]; additionally [`suits`] holds.
pub unsafe fn gemm<T: Float>(alpha: T, a: Mat<T>, b: Mat<T>, beta: T, c: Mat<T>) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::kernels::cpu::avx512() {
            return tiles_avx512(alpha, a, b, beta, c);
        }
        if crate::kernels::cpu::avx2() {
            return tiles_avx2(alpha, a, b, beta, c);
        }
    }
    tiles::<T, false, 16>(alpha, a, b, beta, c)
}

/// [`tiles`] compiled for AVX-512, with fused multiply-adds (an explicit
/// function: a closure passed to `simd::widest` is too large here to be
/// inlined into the wide copy).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tiles_avx512<T: Float>(alpha: T, a: Mat<T>, b: Mat<T>, beta: T, c: Mat<T>) {
    tiles::<T, true, 16>(alpha, a, b, beta, c)
}

/// [`tiles`] compiled for AVX2 and FMA, with accumulators of one 8-lane
/// register (`f32`): the 16 fill the register file, so the operands are
/// read from memory (L1) by the multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tiles_avx2<T: Float>(alpha: T, a: Mat<T>, b: Mat<T>, beta: T, c: Mat<T>) {
    tiles::<T, true, 8>(alpha, a, b, beta, c)
}

/// Entries of `c` at most (see [`suits`]); the sums live on the stack.
const MAX_OUT: usize = 400;
/// Length of the slices of `k` swept through all tiles at once, so each
/// operand comes from memory once and is then reread from cache.
const DEPTH: usize = 1024;

/// `FMA`: use fused multiply-adds (only where the CPU has them: elsewhere
/// `mul_add` is a slow library call). `LANES`: elements per accumulator (one
/// vector register of `f32`).
#[inline(always)]
unsafe fn tiles<T: Float, const FMA: bool, const LANES: usize>(
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: Mat<T>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut sums = [T::zero(); MAX_OUT];
    for p0 in (0..k).step_by(DEPTH) {
        let depth = DEPTH.min(k - p0);
        for i0 in (0..m).step_by(TILE) {
            for j0 in (0..n).step_by(TILE) {
                // Past the edge, repeat the last row or column (read, never stored).
                let rows: [*const T; TILE] = array(|i| a.at((i0 + i).min(m - 1), p0) as *const T);
                let cols: [*const T; TILE] = array(|j| b.at(p0, (j0 + j).min(n - 1)) as *const T);
                let tile = dot_tile::<T, FMA, LANES>(&rows, &cols, depth);
                for (i, row) in tile.iter().enumerate().take(m - i0) {
                    for (j, &s) in row.iter().enumerate().take(n - j0) {
                        sums[(i0 + i) * n + j0 + j] += s;
                    }
                }
            }
        }
    }
    for i in 0..m {
        for j in 0..n {
            let (e, s) = (c.at(i, j), sums[i * n + j]);
            *e = if beta == T::zero() {
                alpha * s
            } else {
                beta * *e + alpha * s
            };
        }
    }
}

/// The `TILE × TILE` dot products of `rows` with `cols`, each `k` long.
#[inline(always)]
unsafe fn dot_tile<T: Float, const FMA: bool, const LANES: usize>(
    rows: &[*const T; TILE],
    cols: &[*const T; TILE],
    k: usize,
) -> [[T; TILE]; TILE] {
    let mut acc = [[[T::zero(); LANES]; TILE]; TILE];
    let whole = k - k % LANES;
    for p in (0..whole).step_by(LANES) {
        // All eight vectors loaded first, then 16 independent accumulations:
        // 24 registers, nothing spilled.
        let av: [[T; LANES]; TILE] = array(|i| array(|l| *rows[i].add(p + l)));
        let bv: [[T; LANES]; TILE] = array(|j| array(|l| *cols[j].add(p + l)));
        for i in 0..TILE {
            for j in 0..TILE {
                for l in 0..LANES {
                    acc[i][j][l] = if FMA {
                        av[i][l].mul_add(bv[j][l], acc[i][j][l])
                    } else {
                        acc[i][j][l] + av[i][l] * bv[j][l]
                    };
                }
            }
        }
    }
    let mut sums = [[T::zero(); TILE]; TILE];
    for i in 0..TILE {
        for j in 0..TILE {
            let mut s = acc[i][j].iter().copied().sum::<T>();
            for p in whole..k {
                s += *rows[i].add(p) * *cols[j].add(p);
            }
            sums[i][j] = s;
        }
    }
    sums
}
