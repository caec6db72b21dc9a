//! AVX-512 micro-kernels: a tile is up to 12 rows by two vectors (32 `f32` or
//! 16 `f64` columns), 24 accumulators held in registers. Column tails use
//! masked loads and stores, so `b` can be read in place and `c` is never
//! touched past the tile's valid columns.

use std::arch::x86_64::*;

use super::blocked::Mat;
use super::tile::{tiles_1_to_12, Kernels, Sweep, TileArgs};

macro_rules! avx512_tile {
    ($name:ident, $t:ty, $lanes:literal, $mask:ty, $zero:ident, $set1:ident, $load:ident,
     $loadu:ident, $fma:ident, $mul:ident, $store:ident, $storeu:ident) => {
        /// # Safety
        /// The CPU supports AVX-512F; `t` describes valid memory (see [`TileArgs`]).
        #[target_feature(enable = "avx512f")]
        unsafe fn $name<const R: usize>(t: &TileArgs<$t>) {
            let full = |n: usize| -> $mask {
                if n >= $lanes {
                    <$mask>::MAX
                } else {
                    ((1u32 << n) - 1) as $mask
                }
            };
            let (m0, m1) = (full(t.cols), full(t.cols.saturating_sub($lanes)));
            let mut lo = [$zero(); R];
            let mut hi = [$zero(); R];
            t.prefetch_c(R);
            // The loop over `k` for two vectors of columns, reading row `i`
            // of the strip of `a` at `i · $a_rs`; `$row` reads the row of
            // `b` at `$at` as two vectors.
            macro_rules! two_vectors {
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
            macro_rules! k_loop {
                ($a_rs:expr) => {
                    if t.cols <= $lanes {
                        // One vector of columns (an attention head's 16 × 16, a
                        // 10-class output): half the multiply-adds, the same sums.
                        let (mut a, mut b) = (t.a, t.b);
                        for _ in 0..t.k {
                            let b0 = $load(m0, b);
                            for i in 0..R {
                                let ai = $set1(*a.offset(i as isize * $a_rs));
                                lo[i] = $fma(ai, b0, lo[i]);
                            }
                            a = a.wrapping_offset(t.a_cs);
                            b = b.wrapping_offset(t.ldb);
                        }
                    } else if t.cols == 2 * $lanes {
                        // A whole tile (most of them) reads `b` by plain
                        // loads: masked ones cost more even with every lane
                        // on (one core, 512³ 166 → 179 GFLOP/s, 2048³ 166 →
                        // 175, alternating runs on the Intel Xeon of the
                        // README's tables, 2026-12-05).
                        two_vectors!($a_rs, row => ($loadu(row), $loadu(row.wrapping_add($lanes))));
                    } else {
                        two_vectors!($a_rs, row => ($load(m0, row), $load(m1, row.wrapping_add($lanes))));
                    }
                };
            }
            // A packed strip (`a_rs = 1`) gets its own copy of the loop, with
            // constant row offsets: with the stride known only at run time,
            // LLVM walks the rows by a chain of dependent additions about as
            // long as the multiply-adds' own bound.
            if t.a_rs == 1 {
                k_loop!(1);
            } else {
                k_loop!(t.a_rs);
            }
            let alpha = $set1(t.alpha);
            if t.csc == 1 {
                let beta = $set1(t.beta);
                for i in 0..R {
                    let c0 = t.c.offset(i as isize * t.rsc);
                    let c1 = c0.wrapping_add($lanes);
                    let (mut v0, mut v1) = ($mul(alpha, lo[i]), $mul(alpha, hi[i]));
                    if t.beta != 0.0 {
                        let s0 = t.src.offset(i as isize * t.src_rs);
                        v0 = $fma(beta, $load(m0, s0), v0);
                        v1 = $fma(beta, $load(m1, s0.wrapping_add($lanes)), v1);
                    }
                    $store(c0, m0, v0);
                    $store(c1, m1, v1);
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

avx512_tile!(
    tile_f32,
    f32,
    16,
    u16,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_maskz_loadu_ps,
    _mm512_loadu_ps,
    _mm512_fmadd_ps,
    _mm512_mul_ps,
    _mm512_mask_storeu_ps,
    _mm512_storeu_ps
);
avx512_tile!(
    tile_f64,
    f64,
    8,
    u8,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_maskz_loadu_pd,
    _mm512_loadu_pd,
    _mm512_fmadd_pd,
    _mm512_mul_pd,
    _mm512_mask_storeu_pd,
    _mm512_storeu_pd
);

/// Packs a full strip of 12 rows of an `a` whose rows are contiguous (`cs =
/// 1`) as `pack_a` lays it out, each column's 12 values together: four rows
/// by 16 columns at a time, transposed in registers rather than scattered
/// element by element (one core: 1024³ +3 %, 2048³ +10 %). Because it
/// exists, `blocked::product` packs every row-major `a` of a strip or more.
///
/// # Safety
/// The CPU supports AVX-512F; `a` is 12 rows of `a.cols` valid values with
/// `cs = 1`; `strip` holds `12 · a.cols` values.
#[target_feature(enable = "avx512f")]
unsafe fn pack_rows_f32(a: Mat<f32>, strip: *mut f32) {
    const ROWS: usize = 12;
    a.assert_row_strip(ROWS);
    let k = a.cols;
    let whole = k / 16 * 16;
    for g in 0..ROWS / 4 {
        let row = |i: usize| a.at(4 * g + i, 0).cast_const();
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        for p0 in (0..whole).step_by(16) {
            let (v0, v1) = (_mm512_loadu_ps(r0.add(p0)), _mm512_loadu_ps(r1.add(p0)));
            let (v2, v3) = (_mm512_loadu_ps(r2.add(p0)), _mm512_loadu_ps(r3.add(p0)));
            // Within each 128-bit lane: t0 = (v0[0] v1[0] v0[1] v1[1]), …
            let t0 = _mm512_castps_pd(_mm512_unpacklo_ps(v0, v1));
            let t1 = _mm512_castps_pd(_mm512_unpackhi_ps(v0, v1));
            let t2 = _mm512_castps_pd(_mm512_unpacklo_ps(v2, v3));
            let t3 = _mm512_castps_pd(_mm512_unpackhi_ps(v2, v3));
            // Lane `l` of `u[c]` is column `p0 + c + 4l`'s four rows.
            let u = [
                _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)),
                _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3)),
            ];
            let out = strip.add(p0 * ROWS + 4 * g);
            for (c, &u) in u.iter().enumerate() {
                _mm_storeu_ps(out.add(c * ROWS), _mm512_castps512_ps128(u));
                _mm_storeu_ps(out.add((c + 4) * ROWS), _mm512_extractf32x4_ps::<1>(u));
                _mm_storeu_ps(out.add((c + 8) * ROWS), _mm512_extractf32x4_ps::<2>(u));
                _mm_storeu_ps(out.add((c + 12) * ROWS), _mm512_extractf32x4_ps::<3>(u));
            }
        }
    }
    for p in whole..k {
        for i in 0..ROWS {
            *strip.add(p * ROWS + i) = *a.at(i, p);
        }
    }
}

/// `f32` kernels; use only where the CPU has AVX-512F.
pub static F32: Kernels<f32> = Kernels {
    name: "avx512",
    mr: 12,
    nr: 32,
    kc: 256,
    mc: 144,
    nc: 1024,
    sweep: Sweep::ColumnsOfB,
    direct_b: true,
    tiles: tiles_1_to_12!(tile_f32),
    // AVX-512F implies AVX2 (rustc enables it with `avx512f`; every such CPU
    // has it), so the AVX2 packer is safe wherever these kernels are chosen.
    pack_columns: Some(super::avx2::pack_columns_f32::<32>),
    pack_rows: Some(pack_rows_f32),
};

/// `f64` kernels; use only where the CPU has AVX-512F.
pub static F64: Kernels<f64> = Kernels {
    name: "avx512",
    mr: 12,
    nr: 16,
    kc: 256,
    mc: 96,
    nc: 512,
    sweep: Sweep::ColumnsOfB,
    direct_b: true,
    tiles: tiles_1_to_12!(tile_f64),
    pack_columns: None,
    pack_rows: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The row packer lays each column's 12 values together, as the scalar
    /// `pack_a` does. (Checked only where the CPU has AVX-512; elsewhere
    /// nothing calls it.)
    #[test]
    fn row_packer_gives_the_strip_layout() {
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: no AVX-512 on this CPU");
            return;
        }
        // SAFETY: AVX-512F is present.
        unsafe { super::super::blocked::check_row_packer(12, pack_rows_f32) };
    }
}
