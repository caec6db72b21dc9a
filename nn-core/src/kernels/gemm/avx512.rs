//! AVX-512 micro-kernels: a tile is up to 12 rows by two vectors (32 `f32` or
//! 16 `f64` columns), 24 accumulators held in registers. Column tails use
//! masked loads and stores, so `b` can be read in place and `c` is never
//! touched past the tile's valid columns.

use std::arch::x86_64::*;

use super::tile::{tiles_1_to_12, Kernels, TileArgs};

macro_rules! avx512_tile {
    ($name:ident, $t:ty, $lanes:literal, $mask:ty, $zero:ident, $set1:ident, $load:ident,
     $fma:ident, $mul:ident, $store:ident, $storeu:ident) => {
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
            let (mut a, mut b) = (t.a, t.b);
            if t.cols <= $lanes {
                // One vector of columns (an attention head's 16 × 16, a
                // 10-class output): half the multiply-adds, the same sums.
                for _ in 0..t.k {
                    let b0 = $load(m0, b);
                    for i in 0..R {
                        let ai = $set1(*a.offset(i as isize * t.a_rs));
                        lo[i] = $fma(ai, b0, lo[i]);
                    }
                    a = a.wrapping_offset(t.a_cs);
                    b = b.wrapping_offset(t.ldb);
                }
            } else {
                for _ in 0..t.k {
                    let b0 = $load(m0, b);
                    let b1 = $load(m1, b.wrapping_add($lanes));
                    for i in 0..R {
                        let ai = $set1(*a.offset(i as isize * t.a_rs));
                        lo[i] = $fma(ai, b0, lo[i]);
                        hi[i] = $fma(ai, b1, hi[i]);
                    }
                    a = a.wrapping_offset(t.a_cs);
                    b = b.wrapping_offset(t.ldb);
                }
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
    _mm512_fmadd_pd,
    _mm512_mul_pd,
    _mm512_mask_storeu_pd,
    _mm512_storeu_pd
);

/// `f32` kernels; use only where `is_x86_feature_detected!("avx512f")`.
pub static F32: Kernels<f32> = Kernels {
    name: "avx512",
    mr: 12,
    nr: 32,
    kc: 256,
    mc: 144,
    nc: 1024,
    direct_b: true,
    tiles: tiles_1_to_12!(tile_f32),
    // AVX-512F implies AVX2 (rustc enables it with `avx512f`; every such CPU
    // has it), so the AVX2 packer is safe wherever these kernels are chosen.
    pack_columns: Some(super::avx2::pack_columns_f32::<32>),
};

/// `f64` kernels; use only where `is_x86_feature_detected!("avx512f")`.
pub static F64: Kernels<f64> = Kernels {
    name: "avx512",
    mr: 12,
    nr: 16,
    kc: 256,
    mc: 96,
    nc: 512,
    direct_b: true,
    tiles: tiles_1_to_12!(tile_f64),
    pack_columns: None,
};
