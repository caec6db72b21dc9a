//! The one matrix product every kernel calls: `matrixmultiply` (through
//! ndarray) on one core, split across [`crate::threads`] cores for products
//! large enough to repay it.
//!
//! Chosen by measurement on this project's 2-core AVX-512 machine (f32, 1024³,
//! `cargo run --release --example bench -- gemm`): matrixmultiply's own
//! threading reached 189 GFLOP/s but its waiting threads yield in a loop,
//! which cost the LeNet-5 epoch 45% (9.8 s → 14 s) in scheduler time; the
//! `gemm` crate reached 201 GFLOP/s on rayon, whose idle workers also spin.
//! Splitting here with scoped threads that block on join keeps idle cores idle.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayBase, ArrayView2, ArrayViewMut2, Axis, Data, DataMut, Ix2};

use crate::Float;

/// Products below this many multiply-adds run on one core: spawning costs more.
const PARALLEL_MACS: usize = 1 << 22;

/// `c = alpha · a · b + beta · c`.
pub fn gemm<T, S1, S2, S3>(
    alpha: T,
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    beta: T,
    c: &mut ArrayBase<S3, Ix2>,
) where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
    S3: DataMut<Elem = T>,
{
    let (a, b, mut c) = (a.view(), b.view(), c.view_mut());
    let (a, b, c): (
        ArrayView2<'_, T>,
        ArrayView2<'_, T>,
        &mut ArrayViewMut2<'_, T>,
    ) = (a, b, &mut c);
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    if crate::threads() < 2 || m * n * k < PARALLEL_MACS {
        general_mat_mul(alpha, &a, &b, beta, c);
        return;
    }
    if m >= 64 && m >= n {
        // Rows of a and c in halves.
        let mid = m / 2;
        let (a1, a2) = a.view().split_at(Axis(0), mid);
        let (mut c1, mut c2) = c.view_mut().split_at(Axis(0), mid);
        std::thread::scope(|s| {
            s.spawn(|| general_mat_mul(alpha, &a2, &b, beta, &mut c2));
            general_mat_mul(alpha, &a1, &b, beta, &mut c1);
        });
    } else if n >= 64 {
        // Columns of b and c in halves.
        let mid = n / 2;
        let (b1, b2) = b.view().split_at(Axis(1), mid);
        let (mut c1, mut c2) = c.view_mut().split_at(Axis(1), mid);
        std::thread::scope(|s| {
            s.spawn(|| general_mat_mul(alpha, &a, &b2, beta, &mut c2));
            general_mat_mul(alpha, &a, &b1, beta, &mut c1);
        });
    } else {
        // Small output, long inner dimension (a convolution's weight gradient):
        // two partial products over halves of k, then their sum.
        let mid = k / 2;
        let (a1, a2) = a.view().split_at(Axis(1), mid);
        let (b1, b2) = b.view().split_at(Axis(0), mid);
        let mut partial = Array2::zeros((m, n));
        std::thread::scope(|s| {
            s.spawn(|| general_mat_mul(alpha, &a2, &b2, T::zero(), &mut partial));
            general_mat_mul(alpha, &a1, &b1, beta, c);
        });
        *c += &partial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    #[test]
    fn every_split_gives_the_plain_product() {
        // Shapes above the threshold that take each branch: tall, wide, long inner.
        for (m, k, n) in [(512, 128, 80), (20, 256, 1024), (8, 65536, 12)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 7) as f64 - 3.0);
            let mut c = Array2::from_elem((m, n), 1.0);
            gemm(2.0, &a, &b, 0.5, &mut c);
            let want = naive(&a, &b) * 2.0 + 0.5;
            // Integer-valued inputs: every partial sum is exact.
            assert_eq!(c, want, "{m}x{k}x{n}");
        }
    }
}
