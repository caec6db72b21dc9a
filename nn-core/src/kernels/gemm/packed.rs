//! A right operand packed once for many products: a recurrent layer
//! multiplies by the same `W_hh` at every time step, and [`gemm`](super::gemm)
//! would pack it again on every call.

use std::cell::RefCell;
use std::marker::PhantomData;

use ndarray::{ArrayBase, Data, DataMut, Ix2};

use super::blocked::{self, Line, Mat};
use super::{by_row_blocks, count_flops, mat, Kernels};
use crate::Float;

thread_local! {
    /// The packed operand of this thread's [`with_packed_rhs`], reused from
    /// call to call (no allocation once warm).
    static PACKED_RHS: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// A `k × n` right operand packed for the GEMM's micro-kernels; made by
/// [`with_packed_rhs`], shareable with the parts of a parallel loop.
pub struct PackedRhs<'a, T: 'static> {
    ks: &'static Kernels<T>,
    ptr: *const T,
    k: usize,
    n: usize,
    _buffer: PhantomData<&'a [T]>,
}

// SAFETY: the data behind `ptr` is only read, and only while the closure of
// `with_packed_rhs` runs (it lends a `&PackedRhs` that cannot outlive the
// call, and holds the buffer's borrow throughout): parts of a parallel loop
// inside that closure may read it from other threads.
unsafe impl<T: Sync> Sync for PackedRhs<'_, T> {}

/// Packs `b` once and runs `f` with it: every [`PackedRhs::gemm`] inside
/// `f` skips the packing [`gemm`](super::gemm) does per call. The packed copy
/// lives in a per-thread buffer reused from call to call.
///
/// # Panics
/// If called again inside `f` on the same thread.
pub fn with_packed_rhs<T, S, R>(b: &ArrayBase<S, Ix2>, f: impl FnOnce(&PackedRhs<'_, T>) -> R) -> R
where
    T: Float,
    S: Data<Elem = T>,
{
    let ks = T::gemm_kernels();
    let (k, n) = b.dim();
    let len = blocked::packed_b_len(ks, k, n);
    PACKED_RHS.with(|cell| {
        let mut buf = cell
            .try_borrow_mut()
            .expect("with_packed_rhs: already packing on this thread (nested call)");
        let lines = (len * size_of::<T>()).div_ceil(64);
        if buf.len() < lines {
            buf.resize(lines, Line::ZERO);
        }
        let out = buf.as_mut_ptr().cast::<T>();
        // SAFETY: `b`'s view is valid for its strides; `buf` holds `len`
        // elements, 64-byte aligned (at least `T`'s alignment).
        unsafe { blocked::pack_whole_b(ks, mat(b), out) };
        f(&PackedRhs {
            ks,
            ptr: out,
            k,
            n,
            _buffer: PhantomData,
        })
    })
}

impl<T: Float> PackedRhs<'_, T> {
    /// `c = alpha · a · b + beta · c` with this packed `b`, split over the
    /// cores by rows when large enough (not by columns, as
    /// [`gemm`](super::gemm) also can: fewer than 24 rows run on one core; a
    /// call from inside a parallel part runs on its thread).
    ///
    /// # Panics
    /// If the shapes do not line up (`a: m × k`, `c: m × n`).
    pub fn gemm<S1, S3>(
        &self,
        alpha: T,
        a: &ArrayBase<S1, Ix2>,
        beta: T,
        c: &mut ArrayBase<S3, Ix2>,
    ) where
        S1: Data<Elem = T>,
        S3: DataMut<Elem = T>,
    {
        let (m, k, n) = (a.nrows(), a.ncols(), self.n);
        if k != self.k || c.dim() != (m, n) {
            panic!(
                "gemm (packed): shapes {:?} @ [{}, {}] -> {:?} do not line up",
                a.shape(),
                self.k,
                self.n,
                c.shape()
            );
        }
        count_flops(m, k, n);
        let a = mat(a);
        let c = Mat {
            ptr: c.as_mut_ptr(),
            ..mat(c)
        };
        // SAFETY: shapes checked; `c` is borrowed mutably (no overlap with
        // `a` or the packed buffer); each block writes its own rows of `c`.
        unsafe {
            by_row_blocks(self.ks, (a, c), k, &|a, c| {
                blocked::gemm_prepacked(self.ks, alpha, a, (k, n, self.ptr), beta, c)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::tests::{ints, naive};
    use ndarray::Array2;

    /// Exact against the naive product across the block edges (k past the
    /// 256-deep panels, n past the 1024-wide blocks) and for empty shapes,
    /// with `b` plain or transposed, two products sharing one packing, and
    /// 64 × 300 × 1100 large enough to split over the cores.
    #[test]
    fn packed_products_match_the_naive_product() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (5, 3, 7),
            (13, 40, 33),
            (30, 128, 512),
            (100, 257, 40),
            (64, 300, 1100),
            (3, 0, 4),
            (0, 5, 7),
            (4, 6, 0),
        ] {
            let (a1, a2, b, c0) = (ints(m, k, 1), ints(m, k, 4), ints(k, n, 2), ints(m, n, 3));
            let want1 = naive(&a1, &b) * 2.0 + &c0 * 0.5;
            let want2 = naive(&a2, &b) - &c0;
            let bt = b.t().to_owned();
            for transposed in [false, true] {
                let bv = if transposed { bt.t() } else { b.view() };
                let (mut c1, mut c2) = (c0.clone(), c0.clone());
                with_packed_rhs(&bv, |p| {
                    p.gemm(2.0, &a1, 0.5, &mut c1);
                    p.gemm(1.0, &a2, -1.0, &mut c2);
                });
                assert_eq!((&c1, &c2), (&want1, &want2), "f64 {m}x{k}x{n} {transposed}");

                let b32 = bv.mapv(|v| v as f32);
                let mut c32 = c0.mapv(|v| v as f32);
                with_packed_rhs(&b32, |p| p.gemm(2.0, &a1.mapv(|v| v as f32), 0.5, &mut c32));
                assert_eq!(c32.mapv(f64::from), want1, "f32 {m}x{k}x{n} {transposed}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm (packed): shapes [2, 3] @ [4, 5] -> [2, 5] do not line up")]
    fn mismatched_shapes_name_them() {
        let mut c = Array2::<f64>::zeros((2, 5));
        with_packed_rhs(&Array2::<f64>::zeros((4, 5)), |p| {
            p.gemm(1.0, &Array2::zeros((2, 3)), 0.0, &mut c)
        });
    }
}
