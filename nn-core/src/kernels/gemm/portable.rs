//! Plain-Rust micro-kernels for CPUs without AVX-512: a fixed-size accumulator
//! the compiler vectorizes, built once for the baseline target and once with
//! AVX2 + FMA enabled (chosen at run time). They read `b` only from packed
//! panels, which are padded to full width.

use super::tile::{tiles_1_to_12, Kernels, TileArgs};
use crate::Float;

#[inline(always)]
unsafe fn body<T: Float, const R: usize, const NR: usize>(t: &TileArgs<T>) {
    let mut acc = [[T::zero(); NR]; R];
    for p in 0..t.k {
        let a = t.a.offset(p as isize * t.a_cs);
        let b: [T; NR] = std::array::from_fn(|j| *t.b.offset(p as isize * t.ldb + j as isize));
        for (i, row) in acc.iter_mut().enumerate() {
            let ai = *a.offset(i as isize * t.a_rs);
            for (r, &bj) in row.iter_mut().zip(&b) {
                *r += ai * bj;
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate().take(t.cols) {
            let c = t.c.offset(i as isize * t.rsc + j as isize * t.csc);
            *c = if t.beta == T::zero() {
                t.alpha * v
            } else {
                t.beta * *c + t.alpha * v
            };
        }
    }
}

/// Instantiates the portable body for an element type and tile width, with and
/// without an enabled target feature set.
macro_rules! portable_tiles {
    ($plain:ident, $avx2:ident, $t:ty, $nr:literal) => {
        unsafe fn $plain<const R: usize>(t: &TileArgs<$t>) {
            body::<$t, R, $nr>(t)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2<const R: usize>(t: &TileArgs<$t>) {
            body::<$t, R, $nr>(t)
        }
    };
}

portable_tiles!(plain_f32, avx2_f32, f32, 16);
portable_tiles!(plain_f64, avx2_f64, f64, 8);

macro_rules! kernel_set {
    ($name:literal, $tiles:ident, $t:ty, $nr:literal, $mc:literal) => {
        Kernels::<$t> {
            name: $name,
            mr: 12,
            nr: $nr,
            kc: 256,
            mc: $mc,
            nc: 1024,
            direct_b: false,
            tiles: tiles_1_to_12!($tiles),
            pack_columns: None,
        }
    };
}

/// Baseline `f32` kernels, valid on every CPU.
pub static F32: Kernels<f32> = kernel_set!("portable", plain_f32, f32, 16, 144);
/// Baseline `f64` kernels, valid on every CPU.
pub static F64: Kernels<f64> = kernel_set!("portable", plain_f64, f64, 8, 96);
/// `f32` kernels; use only where AVX2 and FMA are detected.
#[cfg(target_arch = "x86_64")]
pub static AVX2_F32: Kernels<f32> = kernel_set!("avx2", avx2_f32, f32, 16, 144);
/// `f64` kernels; use only where AVX2 and FMA are detected.
#[cfg(target_arch = "x86_64")]
pub static AVX2_F64: Kernels<f64> = kernel_set!("avx2", avx2_f64, f64, 8, 96);
