//! Matrix products: 2-D, batched 3-D, and the dense layer `x Wᵀ + b`, forward
//! beside backward. Transposed operands are passed as strided views (no copies).

use super::gemm::gemm;
use super::owned::owned;
use ndarray::{
    ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, Axis, Ix2, Ix3,
};

use crate::Float;

fn as2<'a, T: Float>(op: &str, x: &'a ArrayViewD<'_, T>) -> ArrayView2<'a, T> {
    x.view()
        .into_dimensionality::<Ix2>()
        .unwrap_or_else(|_| panic!("{op}: expected a 2-D array, got shape {:?}", x.shape()))
}

fn misaligned(op: &str, a: &[usize], b: &[usize]) -> ! {
    panic!("{op}: shapes {a:?} and {b:?} are not aligned (inner dimensions differ)")
}

/// The shape of `a @ b` for the supported ranks, or a panic naming both shapes:
/// `[m,k] @ [k,n]`, `[B,m,k] @ [B,k,n]`, and `[B,m,k] @ [k,n]` (shared right operand).
pub fn matmul_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    match (a, b) {
        ([m, k], [k2, n]) if k == k2 => vec![*m, *n],
        ([bs, m, k], [bs2, k2, n]) if bs == bs2 && k == k2 => vec![*bs, *m, *n],
        ([bs, m, k], [k2, n]) if k == k2 => vec![*bs, *m, *n],
        ([_, _], [_, _]) | ([_, _, _], [_, _, _]) | ([_, _, _], [_, _]) => misaligned("matmul", a, b),
        _ => panic!("matmul: unsupported ranks for shapes {a:?} and {b:?} (2-D @ 2-D, 3-D @ 3-D or 3-D @ 2-D)"),
    }
}

/// `a @ b` (see [`matmul_shape`] for the supported ranks).
pub fn matmul<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    let shape = matmul_shape(a.shape(), b.shape());
    match (a.ndim(), b.ndim()) {
        (2, 2) => {
            let (a, b) = (as2("matmul", &a), as2("matmul", &b));
            owned((shape[0], shape[1]), |mut out| {
                gemm(T::one(), &a, &b, T::zero(), &mut out)
            })
            .into_dyn()
        }
        _ => {
            let a3 = a.view().into_dimensionality::<Ix3>().expect("3-D");
            owned((shape[0], shape[1], shape[2]), |mut out| {
                for (i, mut o) in out.outer_iter_mut().enumerate() {
                    let bi = if b.ndim() == 3 {
                        b.index_axis(Axis(0), i)
                    } else {
                        b.view()
                    };
                    let bi = bi.into_dimensionality::<Ix2>().expect("2-D");
                    gemm(T::one(), &a3.index_axis(Axis(0), i), &bi, T::zero(), &mut o);
                }
            })
            .into_dyn()
        }
    }
}

/// Gradients of `a @ b`: `da = dy @ bᵀ`, `db = aᵀ @ dy` (summed over the batch when
/// `b` is shared).
pub fn matmul_backward<T: Float>(
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 2],
) -> [Option<ArrayD<T>>; 2] {
    if a.ndim() == 2 {
        let (a, b, dy) = (as2("matmul", &a), as2("matmul", &b), as2("matmul", &dy));
        return [
            need[0].then(|| {
                owned((dy.nrows(), b.nrows()), |mut da| {
                    gemm(T::one(), &dy, &b.t(), T::zero(), &mut da)
                })
                .into_dyn()
            }),
            need[1].then(|| {
                owned((a.ncols(), dy.ncols()), |mut db| {
                    gemm(T::one(), &a.t(), &dy, T::zero(), &mut db)
                })
                .into_dyn()
            }),
        ];
    }
    let a3 = a.view().into_dimensionality::<Ix3>().expect("3-D");
    let dy3 = dy.view().into_dimensionality::<Ix3>().expect("3-D");
    let b_at = |i: usize| {
        let bi = if b.ndim() == 3 {
            b.index_axis(Axis(0), i)
        } else {
            b.view()
        };
        bi.into_dimensionality::<Ix2>().expect("2-D")
    };
    let da = need[0].then(|| {
        owned(a3.raw_dim(), |mut da| {
            for (i, mut d) in da.outer_iter_mut().enumerate() {
                gemm(
                    T::one(),
                    &dy3.index_axis(Axis(0), i),
                    &b_at(i).t(),
                    T::zero(),
                    &mut d,
                );
            }
        })
        .into_dyn()
    });
    let db = need[1].then(|| {
        if b.ndim() == 3 {
            owned((b.shape()[0], b.shape()[1], b.shape()[2]), |mut db| {
                for (i, mut d) in db.outer_iter_mut().enumerate() {
                    gemm(
                        T::one(),
                        &a3.index_axis(Axis(0), i).t(),
                        &dy3.index_axis(Axis(0), i),
                        T::zero(),
                        &mut d,
                    );
                }
            })
            .into_dyn()
        } else {
            // Shared `b`: every sample's product added into one gradient.
            owned((b.shape()[0], b.shape()[1]), |mut db| {
                for i in 0..a3.shape()[0] {
                    gemm(
                        T::one(),
                        &a3.index_axis(Axis(0), i).t(),
                        &dy3.index_axis(Axis(0), i),
                        T::one(),
                        &mut db,
                    );
                }
            })
            .into_dyn()
        }
    });
    [da, db]
}

/// The dense layer `y = x Wᵀ + b` with PyTorch's weight layout `W: [out, in]`,
/// written into `y: [batch, out]`.
pub fn linear_into<T: Float>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    mut y: ArrayViewMut2<'_, T>,
) {
    if x.ncols() != w.ncols() || y.dim() != (x.nrows(), w.nrows()) {
        panic!(
            "linear: input {:?} and weight {:?} (layout [out, in]) do not fit output {:?}",
            x.shape(),
            w.shape(),
            y.shape()
        );
    }
    match b {
        Some(b) => {
            if b.shape() != [w.nrows()] {
                panic!(
                    "linear: bias {:?} does not match weight {:?}",
                    b.shape(),
                    w.shape()
                );
            }
            y.assign(&b);
            gemm(T::one(), &x, &w.t(), T::one(), &mut y);
        }
        None => gemm(T::one(), &x, &w.t(), T::zero(), &mut y),
    }
}

/// Gradients of the dense layer, accumulated (`+=`) into the given buffers:
/// `dx = dy W`, `dW += dyᵀ x`, `db += Σ_batch dy`. `dx` is overwritten.
pub fn linear_backward_into<T: Float>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    dx: Option<ArrayViewMut2<'_, T>>,
    dw: Option<ArrayViewMut2<'_, T>>,
    db: Option<ArrayViewMut1<'_, T>>,
) {
    if let Some(mut dx) = dx {
        gemm(T::one(), &dy, &w, T::zero(), &mut dx);
    }
    if let Some(mut dw) = dw {
        gemm(T::one(), &dy.t(), &x, T::one(), &mut dw);
    }
    if let Some(mut db) = db {
        for row in dy.rows() {
            db.zip_mut_with(&row, |d, &g| *d += g);
        }
    }
}
