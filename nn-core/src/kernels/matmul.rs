//! Matrix products: `a @ b` under `torch.matmul`'s rules and the dense layer
//! `x Wᵀ + b` over any leading dimensions, forward beside backward.
//!
//! Leading dimensions are folded into the rows of one matrix wherever the right
//! operand is a plain matrix, so `[B, T, D] @ [D, E]` is a single GEMM on a
//! view of the input (no copy when it is contiguous). Transposed operands are
//! passed as strided views (no copies).

use ndarray::{
    Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, Axis,
    CowArray, Ix2, IxDyn, RawArrayViewMut,
};
use smallvec::{smallvec, SmallVec};

use super::broadcast::sum_to_shape;
use super::gemm::{gemm_bias_raw, gemm_raw};
use super::owned::owned_written;
use crate::Float;

/// How the operands of `a @ b` line up: both promoted to at least 2-D
/// (`[k]` on the left as `[1, k]`, on the right as `[k, 1]`), a broadcast
/// batch shape, and the output shape with the promoted axes dropped again.
/// Held inline: planning a product allocates nothing.
struct Plan {
    batch: Dims,
    n: usize,
    k: usize,
    m: usize,
    /// `a` and `b` as promoted to at least 2-D.
    a2: Dims,
    b2: Dims,
    out: Dims,
}

type Dims = SmallVec<[usize; 6]>;

fn plan(a: &[usize], b: &[usize]) -> Result<Plan, String> {
    let misaligned =
        || format!("matmul: shapes {a:?} and {b:?} are not aligned (inner dimensions differ)");
    if a.is_empty() || b.is_empty() {
        return Err(format!(
            "matmul: both operands must have at least one dimension, got shapes {a:?} and {b:?}"
        ));
    }
    let a2: Dims = if a.len() == 1 {
        smallvec![1, a[0]]
    } else {
        a.into()
    };
    let b2: Dims = if b.len() == 1 {
        smallvec![b[0], 1]
    } else {
        b.into()
    };
    let (ra, rb) = (a2.len(), b2.len());
    let (n, k, k2, m) = (a2[ra - 2], a2[ra - 1], b2[rb - 2], b2[rb - 1]);
    if k != k2 {
        return Err(misaligned());
    }
    let (ba, bb) = (&a2[..ra - 2], &b2[..rb - 2]);
    let rank = ba.len().max(bb.len());
    let from_right = |s: &[usize], i: usize| if i < s.len() { s[s.len() - 1 - i] } else { 1 };
    let mut batch: Dims = smallvec![0; rank];
    for (i, d) in batch.iter_mut().rev().enumerate() {
        *d = match (from_right(ba, i), from_right(bb, i)) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(format!(
                    "matmul: shapes {a:?} and {b:?} are not aligned (batch dimensions {ba:?} and {bb:?} do not broadcast)"
                ))
            }
        };
    }
    let mut out = batch.clone();
    if a.len() > 1 {
        out.push(n);
    }
    if b.len() > 1 {
        out.push(m);
    }
    Ok(Plan {
        batch,
        n,
        k,
        m,
        a2,
        b2,
        out,
    })
}

/// The shape of `a @ b` under `torch.matmul`'s rules, or why there is none:
///
/// - `[k] @ [k]` is a 0-d dot product; a 1-D left operand is a row
///   (`[k] @ [.., k, m]` → `[.., m]`), a 1-D right operand a column
///   (`[.., n, k] @ [k]` → `[.., n]`);
/// - `[.., n, k] @ [k, m]` → `[.., n, m]`: a matrix on the right is shared by
///   every leading index of the left;
/// - otherwise the leading (batch) dimensions broadcast like NumPy's
///   (`[B, 1, n, k] @ [H, k, m]` → `[B, H, n, m]`).
pub fn try_matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    plan(a, b).map(|p| p.out.to_vec())
}

/// Whether `a @ b` is defined (see [`try_matmul_shape`]), without computing
/// the shape; the error names `matmul` and both shapes.
pub fn check_matmul(a: &[usize], b: &[usize]) -> Result<(), String> {
    plan(a, b).map(drop)
}

/// The shape of `a @ b` (see [`try_matmul_shape`] for the rules).
///
/// # Panics
/// If the operands do not line up, naming both shapes.
#[track_caller]
pub fn matmul_shape(a: &[usize], b: &[usize]) -> Vec<usize> {
    match try_matmul_shape(a, b) {
        Ok(shape) => shape,
        Err(e) => panic!("{e}"),
    }
}

#[track_caller]
fn planned(a: &[usize], b: &[usize]) -> Plan {
    match plan(a, b) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// `x` reshaped to `shape`: a view when the layout allows, else a copy.
fn reshaped<'a, T: Float>(x: &'a ArrayViewD<'_, T>, shape: &[usize]) -> CowArray<'a, T, IxDyn> {
    if x.shape() == shape {
        return CowArray::from(x.view());
    }
    x.to_shape(IxDyn(shape)).expect("reshape: sizes agree")
}

/// `x: [.., c]` as the matrix `[rows, c]` (its leading dimensions folded into
/// rows): a view when the layout allows, else a copy.
fn rows<'a, T: Float>(x: &'a ArrayViewD<'_, T>) -> CowArray<'a, T, Ix2> {
    let c = *x.shape().last().expect("at least 1-D");
    let r = x.shape()[..x.ndim() - 1].iter().product::<usize>();
    match x.view().into_dimensionality::<Ix2>() {
        Ok(v) => CowArray::from(v),
        Err(_) => x.to_shape((r, c)).expect("reshape: sizes agree"),
    }
}

/// The matrices of a `[.., r, c]` view, in row-major order of the leading indices.
fn matrices<'a, T: Float>(x: ArrayViewD<'a, T>, out: &mut Vec<ArrayView2<'a, T>>) {
    if x.ndim() == 2 {
        out.push(x.into_dimensionality().expect("2-D"));
    } else {
        for i in 0..x.len_of(Axis(0)) {
            matrices(x.clone().index_axis_move(Axis(0), i), out);
        }
    }
}

fn with_shape<T: Float>(a: ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    a.into_shape_with_order(IxDyn(shape))
        .expect("reshape: sizes agree")
}

/// `a · b` as a new array, written by the product without being
/// zero-filled first.
fn new_product<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Array2<T> {
    // SAFETY: with `beta = 0` the product writes every element and reads none.
    unsafe {
        owned_written((a.nrows(), b.ncols()), |c| {
            gemm_raw(T::one(), &a, &b, T::zero(), c)
        })
    }
}

/// `count` products as a new `[count, rows, cols]` array, block `i` being
/// the product of `operands(i)`, written without being zero-filled first.
fn new_products<'a, T: Float>(
    count: usize,
    (rows, cols): (usize, usize),
    operands: impl Fn(usize) -> (ArrayView2<'a, T>, ArrayView2<'a, T>),
) -> Array3<T> {
    // SAFETY: each block is a product with `beta = 0` into its own rows of
    // the standard-layout array (its pointer offset stays inside the
    // allocation), which writes every element and reads none.
    unsafe {
        owned_written((count, rows, cols), |c| {
            let base = c.as_ptr() as *mut T;
            for i in 0..count {
                let (a, b) = operands(i);
                let block =
                    RawArrayViewMut::from_shape_ptr((rows, cols), base.add(i * rows * cols));
                gemm_raw(T::one(), &a, &b, T::zero(), block);
            }
        })
    }
}

fn concat_shape(batch: &[usize], last: [usize; 2]) -> Dims {
    let mut s: Dims = batch.into();
    s.extend(last);
    s
}

/// `a @ b` under `torch.matmul`'s rules (see [`try_matmul_shape`]).
///
/// # Panics
/// If the operands do not line up, naming both shapes (at the caller's line).
#[track_caller]
pub fn matmul<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    let p = planned(a.shape(), b.shape());
    if a.ndim() == 2 && b.ndim() == 2 {
        let (a, b) = (
            a.into_dimensionality::<Ix2>(),
            b.into_dimensionality::<Ix2>(),
        );
        let (a, b) = (a.expect("2-D"), b.expect("2-D"));
        return new_product(a, b).into_dyn();
    }
    let (a2, b2) = (reshaped(&a, &p.a2), reshaped(&b, &p.b2));
    let y = if p.b2.len() == 2 {
        // A shared matrix on the right: the left's leading indices become rows.
        let (a2v, b2v) = (a2.view(), b2.view());
        let (ar, b) = (rows(&a2v), b2v.into_dimensionality::<Ix2>().expect("2-D"));
        new_product(ar.view(), b).into_dyn()
    } else {
        let a_b = a2
            .broadcast(IxDyn(&concat_shape(&p.batch, [p.n, p.k])))
            .expect("plan broadcasts");
        let b_b = b2
            .broadcast(IxDyn(&concat_shape(&p.batch, [p.k, p.m])))
            .expect("plan broadcasts");
        let (mut am, mut bm) = (Vec::new(), Vec::new());
        matrices(a_b, &mut am);
        matrices(b_b, &mut bm);
        new_products(am.len(), (p.n, p.m), |i| (am[i].view(), bm[i].view())).into_dyn()
    };
    with_shape(y, &p.out)
}

/// Gradients of `a @ b`, each of its operand's shape: `da = dy @ bᵀ` and
/// `db = aᵀ @ dy`, summed over the batch indices an operand was broadcast
/// along (a shared right matrix gets one `[k, rows] @ [rows, m]` product).
pub fn matmul_backward<T: Float>(
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 2],
) -> [Option<ArrayD<T>>; 2] {
    let p = planned(a.shape(), b.shape());
    let (a2, b2) = (reshaped(&a, &p.a2), reshaped(&b, &p.b2));
    let dy2 = reshaped(&dy, &concat_shape(&p.batch, [p.n, p.m]));
    if p.b2.len() == 2 {
        let (a2v, b2v, dyv) = (a2.view(), b2.view(), dy2.view());
        let (ar, dyr) = (rows(&a2v), rows(&dyv));
        let bm = b2v.into_dimensionality::<Ix2>().expect("2-D");
        let da = need[0].then(|| {
            let da = new_product(dyr.view(), bm.t());
            with_shape(da.into_dyn(), a.shape())
        });
        let db = need[1].then(|| {
            let db = new_product(ar.t(), dyr.view());
            with_shape(db.into_dyn(), b.shape())
        });
        return [da, db];
    }
    let a_b = a2
        .broadcast(IxDyn(&concat_shape(&p.batch, [p.n, p.k])))
        .expect("plan broadcasts");
    let b_b = b2
        .broadcast(IxDyn(&concat_shape(&p.batch, [p.k, p.m])))
        .expect("plan broadcasts");
    let (mut am, mut bm, mut dym) = (Vec::new(), Vec::new(), Vec::new());
    matrices(a_b, &mut am);
    matrices(b_b, &mut bm);
    matrices(dy2.view(), &mut dym);
    // Each operand's gradient at the broadcast shape, summed back to its own.
    let da = need[0].then(|| {
        let full = new_products(am.len(), (p.n, p.k), |i| (dym[i].view(), bm[i].t()));
        let full = with_shape(full.into_dyn(), &concat_shape(&p.batch, [p.n, p.k]));
        with_shape(sum_to_shape(full, &p.a2), a.shape())
    });
    let db = need[1].then(|| {
        let full = new_products(bm.len(), (p.k, p.m), |i| (am[i].t(), dym[i].view()));
        let full = with_shape(full.into_dyn(), &concat_shape(&p.batch, [p.k, p.m]));
        with_shape(sum_to_shape(full, &p.b2), b.shape())
    });
    [da, db]
}

/// Whether `linear(x, w, b)` fits: `x: [.., in]` (at least 1-D),
/// `w: [out, in]` (PyTorch's layout), `b: [out]`; or why not (a message
/// naming `linear` and the shapes).
pub fn check_linear(x: &[usize], w: &[usize], b: Option<&[usize]>) -> Result<(), String> {
    let fits = matches!((x.last(), w), (Some(i), [_, wi]) if i == wi);
    if !fits {
        return Err(format!(
            "linear: input {x:?} does not fit weight {w:?} (layout [out, in])"
        ));
    }
    match b {
        Some(b) if b != [w[0]] => Err(format!("linear: bias {b:?} does not match weight {w:?}")),
        _ => Ok(()),
    }
}

/// The shape of `linear(x, w, b)`: `x: [.., in]` (at least 1-D),
/// `w: [out, in]` (PyTorch's layout), `b: [out]`, giving `[.., out]`; or why
/// the operands do not fit.
pub fn try_linear_shape(
    x: &[usize],
    w: &[usize],
    b: Option<&[usize]>,
) -> Result<Vec<usize>, String> {
    check_linear(x, w, b)?;
    let mut out = x.to_vec();
    *out.last_mut().expect("at least 1-D") = w[0];
    Ok(out)
}

/// `y = x Wᵀ + b` for `x: [.., in]`, `W: [out, in]`, giving `[.., out]`
/// (PyTorch's `F.linear`): the leading dimensions of `x` are folded into the
/// rows of one product (a view, no copy, when `x` is contiguous).
///
/// # Panics
/// If the shapes do not fit (see [`try_linear_shape`]), at the caller's line.
#[track_caller]
pub fn linear<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayView2<'_, T>,
    b: Option<ArrayView1<'_, T>>,
) -> ArrayD<T> {
    if let Err(e) = check_linear(x.shape(), w.shape(), b.as_ref().map(|b| b.shape())) {
        panic!("{e}");
    }
    let xr = rows(&x);
    // SAFETY: the shapes were checked; `linear_raw` writes every element
    // of the new array before reading it.
    let y = unsafe { owned_written((xr.nrows(), w.nrows()), |y| linear_raw(xr.view(), w, b, y)) }
        .into_dyn();
    if x.ndim() == 2 {
        return y;
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("at least 1-D") = w.nrows();
    with_shape(y, &shape)
}

/// Gradients of [`linear`] for `[x, W, b]` where `need` asks, each of its
/// input's shape: `dx = dy W`, `dW = dyᵀ x` and `db = Σ dy` over the rows.
pub fn linear_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayView2<'_, T>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 3],
) -> [Option<ArrayD<T>>; 3] {
    let (xr, dyr) = (rows(&x), rows(&dy));
    let mut dx = need[0].then(|| Array2::<T>::uninit(xr.raw_dim()));
    let mut dw = need[1].then(|| Array2::<T>::uninit(w.raw_dim()));
    let mut db = need[2].then(|| ndarray::Array1::zeros(w.nrows()));
    // SAFETY: the new arrays are distinct; with `beta = 0` the products
    // write every element of `dx` and `dW` before reading any.
    let (dx, dw) = unsafe {
        linear_backward_raw(
            xr.view(),
            w,
            dyr.view(),
            dx.as_mut().map(|d| d.raw_view_mut().cast::<T>()),
            dw.as_mut()
                .map(|d| (d.raw_view_mut().cast::<T>(), T::zero())),
            db.as_mut().map(|d| (d.view_mut(), T::zero())),
        );
        (dx.map(|d| d.assume_init()), dw.map(|d| d.assume_init()))
    };
    let dx = dx.map(|d| with_shape(d.into_dyn(), x.shape()));
    [dx, dw.map(|d| d.into_dyn()), db.map(|d| d.into_dyn())]
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
    if let Some(b) = &b {
        if b.shape() != [w.nrows()] {
            panic!(
                "linear: bias {:?} does not match weight {:?}",
                b.shape(),
                w.shape()
            );
        }
    }
    // SAFETY: the shapes were checked; `y` is borrowed mutably, so it is
    // valid, holds values and overlaps nothing else.
    unsafe { linear_raw(x, w, b, y.raw_view_mut()) }
}

/// [`linear_into`] into a raw view, once the shapes are checked: `y` may
/// be memory not yet initialized, since the product writes every element
/// before reading any (the tiles read the bias in its place).
///
/// # Safety
/// As [`gemm_raw`] for `y`; the shapes fit.
unsafe fn linear_raw<T: Float>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    y: RawArrayViewMut<T, Ix2>,
) {
    match b {
        Some(b) => gemm_bias_raw(&x, &w.t(), b, y),
        None => gemm_raw(T::one(), &x, &w.t(), T::zero(), y),
    }
}

/// Gradients of the dense layer into the given buffers, each parameter's
/// with its `beta` (`0`: overwrite, `1`: accumulate): `dx = dy W`,
/// `dW = dyᵀ x + beta · dW`, `db = Σ_batch dy + beta · db`. `dx` is
/// overwritten.
pub fn linear_backward_into<T: Float>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    mut dx: Option<ArrayViewMut2<'_, T>>,
    mut dw: Option<(ArrayViewMut2<'_, T>, T)>,
    db: Option<(ArrayViewMut1<'_, T>, T)>,
) {
    // SAFETY: the buffers are borrowed mutably, so they are valid, hold
    // values and overlap nothing else.
    unsafe {
        linear_backward_raw(
            x,
            w,
            dy,
            dx.as_mut().map(|d| d.raw_view_mut()),
            dw.as_mut().map(|(d, beta)| (d.raw_view_mut(), *beta)),
            db,
        )
    }
}

/// A product's output handed to another thread.
struct ProductOutput<T>(RawArrayViewMut<T, Ix2>);

// SAFETY: the output is written by the one thread that runs its product,
// and the caller of `linear_backward_raw` keeps it valid and unaliased
// until that product has finished.
unsafe impl<T: Send> Send for ProductOutput<T> {}

impl<T> ProductOutput<T> {
    /// The view (a method, so a closure moves the whole wrapper).
    fn into_raw(self) -> RawArrayViewMut<T, Ix2> {
        self.0
    }
}

/// [`linear_backward_into`] into raw views for `dx` and `dW`, which may be
/// memory not yet initialized where their `beta` is 0 (`dx`'s always is).
///
/// # Safety
/// As [`gemm_raw`] for `dx` and `dW`.
unsafe fn linear_backward_raw<T: Float>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    dx: Option<RawArrayViewMut<T, Ix2>>,
    dw: Option<(RawArrayViewMut<T, Ix2>, T)>,
    db: Option<(ArrayViewMut1<'_, T>, T)>,
) {
    // The bias gradient's column sums: beside the weight gradient's product
    // when the two products run side by side, else after them.
    let mut db = db;
    let mut sum_bias = || {
        if let Some((db, beta)) = db.take() {
            column_sums_into(dy, db, beta);
        }
    };
    match (dx, dw) {
        // The two products have the same multiply-adds: one on each core
        // balances them, and each packs its operands once where splitting
        // both would pack a shared operand on both cores. Each is the
        // product it would be alone, so the bits are the same.
        (Some(dx), Some((dw, beta)))
            if crate::threads() > 1
                && super::gemm::worth_splitting(dy.nrows(), dy.ncols(), w.ncols()) =>
        {
            let (dx, dw) = (ProductOutput(dx), ProductOutput(dw));
            crate::parallel::join(
                || {
                    gemm_raw(T::one(), &dy, &w, T::zero(), dx.into_raw());
                    sum_bias();
                },
                || gemm_raw(T::one(), &dy.t(), &x, beta, dw.into_raw()),
            );
        }
        (dx, dw) => {
            if let Some(dx) = dx {
                gemm_raw(T::one(), &dy, &w, T::zero(), dx);
            }
            if let Some((dw, beta)) = dw {
                gemm_raw(T::one(), &dy.t(), &x, beta, dw);
            }
        }
    }
    sum_bias();
}

/// `db = Σ_rows dy + beta · db`, row after row.
fn column_sums_into<T: Float>(dy: ArrayView2<'_, T>, mut db: ArrayViewMut1<'_, T>, beta: T) {
    assert_eq!(
        dy.ncols(),
        db.len(),
        "linear_backward: bias gradient of {} for an output {} wide",
        db.len(),
        dy.ncols()
    );
    if beta == T::zero() {
        db.fill(T::zero());
    } else if beta != T::one() {
        db.mapv_inplace(|v| v * beta);
    }
    let width = db.len();
    match (dy.as_slice(), db.as_slice_mut()) {
        (Some(dy), Some(db)) if width > 0 => {
            for row in dy.chunks_exact(width) {
                for (d, &g) in db.iter_mut().zip(row) {
                    *d += g;
                }
            }
        }
        _ => {
            for row in dy.rows() {
                db.zip_mut_with(&row, |d, &g| *d += g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::gemm;
    use ndarray::Array1;

    fn filled(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            (((i * 31 + j * 17 + seed * 7) % 97) as f32 - 48.0) / 37.0
        })
    }

    #[test]
    fn both_gradient_products_at_once_give_the_bits_of_each_alone() {
        // 128 × 96 × 100 multiply-adds: past the split threshold, so on two
        // or more threads the two products run side by side.
        let (x, w, dy) = (filled(128, 100, 1), filled(96, 100, 2), filled(128, 96, 3));
        let mut want_dx = Array2::zeros((128, 100));
        gemm(1.0, &dy, &w, 0.0, &mut want_dx);
        let mut want_dw = filled(96, 100, 4);
        gemm(1.0, &dy.t(), &x, 1.0, &mut want_dw);

        let mut dx = Array2::from_elem((128, 100), f32::NAN);
        let mut dw = filled(96, 100, 4);
        let mut db = Array1::from_elem(96, 0.5f32);
        linear_backward_into(
            x.view(),
            w.view(),
            dy.view(),
            Some(dx.view_mut()),
            Some((dw.view_mut(), 1.0)),
            Some((db.view_mut(), 1.0)),
        );
        assert_eq!(dx, want_dx);
        assert_eq!(dw, want_dw);
        // The bias gradient: the rows added one by one to what was there.
        let want_db = dy
            .rows()
            .into_iter()
            .fold(Array1::from_elem(96, 0.5f32), |acc, row| acc + row);
        assert_eq!(db, want_db);
    }
}
