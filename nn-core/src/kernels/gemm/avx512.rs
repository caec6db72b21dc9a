//! AVX-512 micro-kernels: a tile is up to 12 rows by two vectors (32 `f32` or
//! 16 `f64` columns), 24 accumulators held in registers. Column tails use
//! masked loads and stores, so `b` can be read in place and `c` is never
//! touched past the tile's valid columns.

use std::arch::x86_64::*;

use super::blocked::Mat;
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
            let (mut a, mut b) = (t.a, t.b);
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
            let alpha = $set1(t.alpha);
            if t.csc == 1 {
                let beta = $set1(t.beta);
                for i in 0..R {
                    let c0 = t.c.offset(i as isize * t.rsc);
                    let c1 = c0.wrapping_add($lanes);
                    let (mut v0, mut v1) = ($mul(alpha, lo[i]), $mul(alpha, hi[i]));
                    if t.beta != 0.0 {
                        v0 = $fma(beta, $load(m0, c0), v0);
                        v1 = $fma(beta, $load(m1, c1), v1);
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
                for (i, row) in tile.iter().enumerate() {
                    for (j, &v) in row.iter().enumerate().take(t.cols) {
                        let c = t.c.offset(i as isize * t.rsc + j as isize * t.csc);
                        *c = if t.beta == 0.0 { v } else { t.beta * *c + v };
                    }
                }
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

/// Packs one 32-column strip of a column-contiguous `f32` matrix: 8 × 8
/// blocks transposed in registers (unpack, shuffle, lane permute), the edges
/// element by element, unused columns zeroed.
///
/// # Safety
/// The CPU supports AVX-512F; `b` is valid with `b.rs == 1` and at most 32
/// columns; `strip` holds `b.rows` rows of 32.
#[target_feature(enable = "avx512f")]
unsafe fn pack_columns_f32(b: Mat<f32>, strip: *mut f32) {
    const NR: usize = 32;
    let (k, cols) = (b.rows, b.cols);
    let (k8, cols8) = (k - k % 8, cols - cols % 8);
    for jb in (0..cols8).step_by(8) {
        for pb in (0..k8).step_by(8) {
            // r[j]: 8 consecutive elements of column jb + j, from row pb.
            let r: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(b.at(pb, jb + j)));
            let t: [__m256; 8] = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            let u: [__m256; 8] = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            // Row pb + q of the packed strip: element q of each column.
            let rows = [
                _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
                _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
            ];
            for (q, row) in rows.into_iter().enumerate() {
                _mm256_storeu_ps(strip.add((pb + q) * NR + jb), row);
            }
        }
        for p in k8..k {
            for j in jb..jb + 8 {
                *strip.add(p * NR + j) = *b.at(p, j);
            }
        }
    }
    for p in 0..k {
        for j in cols8..NR {
            *strip.add(p * NR + j) = if j < cols { *b.at(p, j) } else { 0.0 };
        }
    }
}

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
    pack_columns: Some(pack_columns_f32),
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
