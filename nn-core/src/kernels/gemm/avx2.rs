//! AVX2 + FMA micro-kernels: a tile is up to 6 rows by two vectors (16 `f32`
//! or 8 `f64` columns), 12 accumulators — with the two rows of `b` and the
//! broadcast of `a`, 15 of the 16 vector registers. (Before these, AVX2
//! machines ran a compiler-vectorized 12-row tile that needed 24 and
//! spilled: 16 GFLOP/s a core.) Column tails of a `b` read in place use
//! masked loads, which do not touch memory past the mask; over a packed,
//! zero-padded strip they load whole rows. Only a tail's partial vector is
//! stored masked.

use crate::kernels::array::array;
use std::arch::x86_64::*;

use super::blocked::Mat;
use super::tile::{tiles_1_to_6, Kernels, Sweep, TileArgs};
use crate::kernels::masks::{first_of_4, first_of_8};
use crate::kernels::transpose::transpose8;

macro_rules! avx2_tile {
    ($name:ident, $t:ty, $lanes:literal, $mask:ident, $vec:ty, $zero:ident, $set1:ident,
     $loadu:ident, $maskload:ident, $fma:ident, $mul:ident, $storeu:ident, $maskstore:ident) => {
        /// # Safety
        /// The CPU supports AVX2 and FMA; `t` describes valid memory (see [`TileArgs`]).
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $name<const R: usize>(t: &TileArgs<$t>) {
            let m0 = $mask(t.cols);
            let m1 = $mask(t.cols.saturating_sub($lanes));
            let full = t.cols == 2 * $lanes;
            // Two vectors of `b` read whole: a full tile, or a partial one
            // over a zero-padded packed strip (a 10-class output layer's
            // `x · Wᵀ`), which would otherwise take masked loads, and with
            // the two masks besides, one register more than the file holds.
            let whole_rows = full || (t.b_whole && t.cols > $lanes);
            let mut lo: [$vec; R] = [$zero(); R];
            let mut hi: [$vec; R] = [$zero(); R];
            t.prefetch_c(R);
            // The k loop, reading row `i` of the strip of `a` at `i · $a_rs`;
            // `$row` reads the row of `b` at `$at` as two vectors.
            macro_rules! k_loop {
                ($a_rs:expr, $at:ident => $row:expr) => {
                    let (mut a, mut b) = (t.a, t.b);
                    for _ in 0..t.k {
                        let $at = b;
                        let (b0, b1) = $row;
                        for i in 0..R {
                            let ai = $set1(*a.offset(i as isize * $a_rs));
                            lo[i] = $fma(ai, b0, lo[i]);
                            hi[i] = $fma(ai, b1, hi[i]);
                        }
                        a = a.wrapping_offset(t.a_cs);
                        b = b.wrapping_offset(t.ldb);
                    }
                };
            }
            // Copies of the loop: masked loads cost more than plain ones,
            // and most tiles are full; a tile of one vector of columns skips
            // the second's multiply-adds (the same sums). Whole rows over a
            // packed strip of `a` (`a_rs = 1`) have their own copy with
            // constant row offsets, as AVX-512's has.
            if whole_rows && t.a_rs == 1 {
                k_loop!(1, row => ($loadu(row), $loadu(row.add($lanes))));
            } else if whole_rows {
                k_loop!(t.a_rs, row => ($loadu(row), $loadu(row.add($lanes))));
            } else if t.cols <= $lanes {
                let (mut a, mut b) = (t.a, t.b);
                for _ in 0..t.k {
                    let b0 = $maskload(b, m0);
                    for i in 0..R {
                        let ai = $set1(*a.offset(i as isize * t.a_rs));
                        lo[i] = $fma(ai, b0, lo[i]);
                    }
                    a = a.wrapping_offset(t.a_cs);
                    b = b.wrapping_offset(t.ldb);
                }
            } else {
                k_loop!(t.a_rs, row => ($maskload(row, m0), $maskload(row.wrapping_add($lanes), m1)));
            }
            let alpha = $set1(t.alpha);
            if t.csc == 1 {
                let beta = $set1(t.beta);
                for i in 0..R {
                    let c0 = t.c.offset(i as isize * t.rsc);
                    let c1 = c0.wrapping_add($lanes);
                    let (mut v0, mut v1) = ($mul(alpha, lo[i]), $mul(alpha, hi[i]));
                    let (s0, s1) = {
                        let s0 = t.src.offset(i as isize * t.src_rs);
                        (s0, s0.wrapping_add($lanes))
                    };
                    if full {
                        if t.beta != 0.0 {
                            v0 = $fma(beta, $loadu(s0), v0);
                            v1 = $fma(beta, $loadu(s1), v1);
                        }
                        $storeu(c0, v0);
                        $storeu(c1, v1);
                    } else {
                        // Masked stores are microcoded on AMD's Zen: only
                        // the vector that is partial takes one (the same
                        // bits in every valid column).
                        let first_whole = t.cols >= $lanes;
                        if t.beta != 0.0 {
                            let s0 = if first_whole { $loadu(s0) } else { $maskload(s0, m0) };
                            v0 = $fma(beta, s0, v0);
                            if t.cols > $lanes {
                                v1 = $fma(beta, $maskload(s1, m1), v1);
                            }
                        }
                        if first_whole {
                            $storeu(c0, v0);
                        } else {
                            $maskstore(c0, m0, v0);
                        }
                        if t.cols > $lanes {
                            $maskstore(c1, m1, v1);
                        }
                    }
                }
            } else {
                let mut tile = [[0.0 as $t; 2 * $lanes]; R];
                for i in 0..R {
                    $storeu(tile[i].as_mut_ptr(), $mul(alpha, lo[i]));
                    $storeu(tile[i].as_mut_ptr().add($lanes), $mul(alpha, hi[i]));
                }
                t.write_strided(&tile);
            }
        }
    };
}

avx2_tile!(
    tile_f32,
    f32,
    8,
    first_of_8,
    __m256,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_maskload_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps,
    _mm256_storeu_ps,
    _mm256_maskstore_ps
);
avx2_tile!(
    tile_f64,
    f64,
    4,
    first_of_4,
    __m256d,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_maskload_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd,
    _mm256_storeu_pd,
    _mm256_maskstore_pd
);

/// Packs one `NR`-column strip of a column-contiguous `f32` matrix: 8 × 8
/// blocks transposed in registers (unpack, shuffle, lane permute), a last
/// partial group of columns as a block with zero columns, the rows past the
/// last 8 element by element, unused columns zeroed by whole vectors. Shared
/// with the AVX-512 kernels (AVX-512F includes AVX2).
///
/// # Safety
/// The CPU supports AVX2; `b` is valid with `b.rs == 1` and at most `NR`
/// columns; `strip` holds `b.rows` rows of `NR`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn pack_columns_f32<const NR: usize>(b: Mat<f32>, strip: *mut f32) {
    let (k, cols) = (b.rows, b.cols);
    let k8 = k - k % 8;
    // Groups of 8 columns holding data; the last may be partial (a dense
    // layer of 10 outputs). Its missing columns are zero vectors, where
    // element by element they took a third of a 64-64-64-10 MLP's packing.
    let groups = cols.next_multiple_of(8);
    for jb in (0..groups).step_by(8) {
        let width = 8.min(cols - jb);
        for pb in (0..k8).step_by(8) {
            // r[j]: 8 consecutive elements of column jb + j, from row pb.
            let r: [__m256; 8] = array(|j| {
                if j < width {
                    _mm256_loadu_ps(b.at(pb, jb + j))
                } else {
                    _mm256_setzero_ps()
                }
            });
            // Row pb + q of the packed strip: element q of each column.
            for (q, row) in transpose8(r).into_iter().enumerate() {
                _mm256_storeu_ps(strip.add((pb + q) * NR + jb), row);
            }
        }
        for p in k8..k {
            for j in jb..jb + 8 {
                *strip.add(p * NR + j) = if j < cols { *b.at(p, j) } else { 0.0 };
            }
        }
    }
    for p in 0..k {
        for j in (groups..NR).step_by(8) {
            _mm256_storeu_ps(strip.add(p * NR + j), _mm256_setzero_ps());
        }
    }
}

/// Packs a full strip of 6 rows of an `a` whose rows are contiguous (`cs =
/// 1`) as `pack_a` lays it out, each column's 6 values together: 8 columns
/// at a time, the rows (the last repeated to make 8) transposed in
/// registers, each column stored as a whole vector whose last two lanes the
/// next column's store overwrites (the strip's last column by a masked
/// store, which writes nothing past the strip). As the AVX-512 row packer,
/// it lets `blocked::product` pack every row-major `a` of a strip or more.
///
/// # Safety
/// The CPU supports AVX2; `a` is 6 rows of `a.cols` valid values with `cs =
/// 1`; `strip` holds `6 · a.cols` values.
#[target_feature(enable = "avx2")]
unsafe fn pack_rows_f32(a: Mat<f32>, strip: *mut f32) {
    const ROWS: usize = 6;
    a.assert_row_strip(ROWS);
    let k = a.cols;
    let whole = k / 8 * 8;
    let rows: [*const f32; ROWS] = array(|i| a.at(i, 0).cast_const());
    let six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    for p0 in (0..whole).step_by(8) {
        let r: [__m256; 8] = array(|i| _mm256_loadu_ps(rows[i.min(ROWS - 1)].add(p0)));
        for (c, column) in transpose8(r).into_iter().enumerate() {
            let out = strip.add((p0 + c) * ROWS);
            if p0 + c + 1 < k {
                _mm256_storeu_ps(out, column);
            } else {
                _mm256_maskstore_ps(out, six, column);
            }
        }
    }
    for p in whole..k {
        for (i, row) in rows.iter().enumerate() {
            *strip.add(p * ROWS + i) = *row.add(p);
        }
    }
}

/// `f32` kernels; use only where AVX2 and FMA are detected.
pub static F32: Kernels<f32> = Kernels {
    name: "avx2",
    mr: 6,
    nr: 16,
    kc: 256,
    mc: 144,
    nc: 1024,
    sweep: Sweep::RowsOfA,
    direct_b: true,
    tiles: tiles_1_to_6!(tile_f32),
    pack_columns: Some(pack_columns_f32::<16>),
    pack_rows: Some(pack_rows_f32),
};

/// `f64` kernels; use only where AVX2 and FMA are detected.
pub static F64: Kernels<f64> = Kernels {
    name: "avx2",
    mr: 6,
    nr: 8,
    kc: 256,
    mc: 96,
    nc: 512,
    sweep: Sweep::RowsOfA,
    direct_b: true,
    tiles: tiles_1_to_6!(tile_f64),
    pack_columns: None,
    pack_rows: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The row packer lays each column's 6 values together, as the scalar
    /// `pack_a` does, and writes nothing past the strip (its overlapping
    /// stores end in a masked one). Checked where the kernels use AVX2 or
    /// more.
    #[test]
    fn row_packer_gives_the_strip_layout() {
        if !crate::kernels::cpu::avx2() {
            eprintln!("skipped: the kernels use no AVX2 here");
            return;
        }
        // SAFETY: AVX2 is present.
        unsafe { super::super::blocked::check_row_packer(6, pack_rows_f32) };
    }
}
