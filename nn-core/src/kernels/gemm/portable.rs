//! Plain-Rust micro-kernels for CPUs without AVX2 (or off x86-64): a
//! fixed-size accumulator the compiler vectorizes for the baseline target,
//! 6 rows by 16 `f32` (24 registers of four: NEON's 32 hold it).
//! They read `b` only from packed panels, which are padded to full width.

use super::tile::{tiles_1_to_6, Kernels, Sweep, TileArgs};
use crate::kernels::array::array;
use crate::Float;

#[inline(always)]
unsafe fn body<T: Float, const R: usize, const NR: usize>(t: &TileArgs<T>) {
    let mut acc = [[T::zero(); NR]; R];
    for p in 0..t.k {
        let a = t.a.offset(p as isize * t.a_cs);
        let b: [T; NR] = array(|j| *t.b.offset(p as isize * t.ldb + j as isize));
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
            let src = t.src.offset(i as isize * t.src_rs + j as isize * t.src_cs);
            *c = if t.beta == T::zero() {
                t.alpha * v
            } else {
                t.beta * *src + t.alpha * v
            };
        }
    }
}

unsafe fn tile_f32<const R: usize>(t: &TileArgs<f32>) {
    body::<f32, R, 16>(t)
}

unsafe fn tile_f64<const R: usize>(t: &TileArgs<f64>) {
    body::<f64, R, 8>(t)
}

macro_rules! kernel_set {
    ($name:literal, $tiles:ident, $t:ty, $nr:literal, $mc:literal) => {
        Kernels::<$t> {
            name: $name,
            mr: 6,
            nr: $nr,
            kc: 256,
            mc: $mc,
            nc: 1024,
            sweep: Sweep::RowsOfA,
            direct_b: false,
            tiles: tiles_1_to_6!($tiles),
            pack_columns: None,
            pack_rows: None,
        }
    };
}

/// Baseline `f32` kernels, valid on every CPU.
pub static F32: Kernels<f32> = kernel_set!("portable", tile_f32, f32, 16, 144);
/// Baseline `f64` kernels, valid on every CPU.
pub static F64: Kernels<f64> = kernel_set!("portable", tile_f64, f64, 8, 96);
