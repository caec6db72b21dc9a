//! Element-wise functions: one trait for `f` and its derivative, and the two
//! array kernels every element-wise op (math functions and activations) shares.

use std::fmt::Debug;
use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, CowArray, IxDyn};

use super::owned::as_uninit;
use crate::parallel::{for_each_range, Shared};
use crate::Float;

/// A scalar function applied to every element, with its derivative.
///
/// Implement this for your own activation and it works everywhere a built-in
/// does: on the tape, as an `ActivationFn`, and in the models' static backward.
///
/// ```
/// use nn_core::kernels::pointwise::Pointwise;
/// use nn_core::Float;
///
/// /// x * sigmoid(beta * x)
/// #[derive(Clone, Copy, Debug, Default)]
/// struct Swish { beta: f64 }
///
/// impl Pointwise for Swish {
///     fn name(&self) -> &'static str { "swish_beta" }
///     fn f<T: Float>(&self, x: T) -> T {
///         let s = T::one() / (T::one() + (-T::lit(self.beta) * x).exp());
///         x * s
///     }
///     fn df<T: Float>(&self, x: T, _y: T) -> T {
///         let b = T::lit(self.beta);
///         let s = T::one() / (T::one() + (-b * x).exp());
///         s + b * x * s * (T::one() - s)
///     }
/// }
/// assert!((Swish { beta: 1.0 }.f(0.0f64)).abs() < 1e-12);
/// ```
pub trait Pointwise: Clone + Debug + Send + Sync + 'static {
    /// The function's name, used in panics, summaries and error messages.
    fn name(&self) -> &'static str;

    /// `y = f(x)`.
    fn f<T: Float>(&self, x: T) -> T;

    /// `f'(x)`, given both `x` and `y = f(x)` so implementations can reuse `y`
    /// (`exp`, `sigmoid`, `tanh` do).
    fn df<T: Float>(&self, x: T, y: T) -> T;

    /// Whether `f` is the identity, so layers can skip it.
    fn is_identity(&self) -> bool {
        false
    }
}

/// `f` applied to every element of `x`.
pub fn forward<T: Float, P: Pointwise>(p: &P, x: ArrayViewD<'_, T>) -> ArrayD<T> {
    let mut out = ArrayD::uninit(x.raw_dim());
    write_forward(p, x, out.as_slice_mut().expect("a new array is one slice"));
    // SAFETY: `write_forward` wrote every element.
    unsafe { out.assume_init() }
}

/// `out = f(x)` into a preallocated buffer of `x`'s shape.
///
/// The loop runs over contiguous slices, in the kernels' vector copies;
/// tensors with gaps or in another order go through contiguous copies
/// (the fast `f32` functions' fused multiply-adds are library calls in
/// code built for the baseline, see [`super::tanh`]).
pub fn forward_into<T: Float, P: Pointwise>(
    p: &P,
    x: ArrayViewD<'_, T>,
    out: ArrayViewMutD<'_, T>,
) {
    check_same(p.name(), x.shape(), out.shape());
    let mut out = out;
    match out.as_slice_mut() {
        // SAFETY: `write_forward` writes values of `T` only.
        Some(os) => write_forward(p, x, unsafe { as_uninit(os) }),
        None => out.assign(&forward(p, x)),
    }
}

/// Writes `f(x)` into every element of `os`, in `x`'s logical order.
fn write_forward<T: Float, P: Pointwise>(p: &P, x: ArrayViewD<'_, T>, os: &mut [MaybeUninit<T>]) {
    let x = x.as_standard_layout();
    let xs = one_slice(&x);
    // Every slot is written only if the lengths agree (the allocating
    // forms then assume the array initialized).
    assert_eq!(
        xs.len(),
        os.len(),
        "{}: output of the wrong length",
        p.name()
    );
    let os = Shared::new(os);
    for_each_range(xs.len(), xs.len(), &|r| {
        // SAFETY: the ranges of the parts are disjoint.
        forward_slices(p, &xs[r.clone()], unsafe { os.slice(r) })
    });
}

/// `dx = dy * f'(x)`.
pub fn backward<T: Float, P: Pointwise>(
    p: &P,
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    check_same(p.name(), x.shape(), y.shape());
    check_same(p.name(), x.shape(), dy.shape());
    let mut dx = ArrayD::uninit(x.raw_dim());
    write_backward(
        p,
        [x, y, dy],
        dx.as_slice_mut().expect("a new array is one slice"),
    );
    // SAFETY: `write_backward` wrote every element.
    unsafe { dx.assume_init() }
}

/// `dx = dy * f'(x)` into a preallocated buffer of `x`'s shape, over
/// contiguous slices as [`forward_into`].
pub fn backward_into<T: Float, P: Pointwise>(
    p: &P,
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    dx: ArrayViewMutD<'_, T>,
) {
    check_same(p.name(), x.shape(), y.shape());
    check_same(p.name(), x.shape(), dy.shape());
    check_same(p.name(), x.shape(), dx.shape());
    let mut dx = dx;
    match dx.as_slice_mut() {
        // SAFETY: `write_backward` writes values of `T` only.
        Some(ds) => write_backward(p, [x, y, dy], unsafe { as_uninit(ds) }),
        None => dx.assign(&backward(p, x, y, dy)),
    }
}

/// Writes `dy * f'(x)` from `[x, y, dy]` (of one shape) into every element
/// of `ds`, in their logical order.
fn write_backward<T: Float, P: Pointwise>(
    p: &P,
    inputs: [ArrayViewD<'_, T>; 3],
    ds: &mut [MaybeUninit<T>],
) {
    let [x, y, dy] = inputs.each_ref().map(|a| a.as_standard_layout());
    let (xs, ys, gs) = (one_slice(&x), one_slice(&y), one_slice(&dy));
    assert!(
        xs.len() == ds.len() && ys.len() == ds.len() && gs.len() == ds.len(),
        "{}: gradient buffers of different lengths",
        p.name()
    );
    let ds = Shared::new(ds);
    for_each_range(xs.len(), xs.len(), &|r| {
        let inputs = [&xs[r.clone()], &ys[r.clone()], &gs[r.clone()]];
        // SAFETY: the ranges of the parts are disjoint.
        backward_slices(p, inputs, unsafe { ds.slice(r) })
    });
}

// The slice loops below have wide twins of their own (`run_widest!`) rather
// than going through `simd::widest`: a closure holding an inlined `erf` or `exp` is too
// large for LLVM to inline into `widest`'s AVX-512 function, and then stays
// scalar (GELU's loops were the slowest part of a transformer's step).

/// `os = f(xs)`, compiled for the widest vectors the CPU has.
fn forward_slices<T: Float, P: Pointwise>(p: &P, xs: &[T], os: &mut [MaybeUninit<T>]) {
    crate::run_widest!(<T: Float, P: Pointwise> (p: &P = p, xs: &[T] = xs, os: &mut [MaybeUninit<T>] = os)
        => forward_loop(p, xs, os))
}

#[inline(always)]
fn forward_loop<T: Float, P: Pointwise>(p: &P, xs: &[T], os: &mut [MaybeUninit<T>]) {
    for (o, &v) in os.iter_mut().zip(xs) {
        o.write(p.f(v));
    }
}

/// `ds = gs * f'(xs, ys)` from `[xs, ys, gs]`, compiled for the widest
/// vectors the CPU has.
fn backward_slices<T: Float, P: Pointwise>(p: &P, inputs: [&[T]; 3], ds: &mut [MaybeUninit<T>]) {
    crate::run_widest!(<T: Float, P: Pointwise> (
        p: &P = p,
        inputs: [&[T]; 3] = inputs,
        ds: &mut [MaybeUninit<T>] = ds,
    ) => backward_loop(p, inputs, ds))
}

#[inline(always)]
fn backward_loop<T: Float, P: Pointwise>(
    p: &P,
    [xs, ys, gs]: [&[T]; 3],
    ds: &mut [MaybeUninit<T>],
) {
    for (((d, &xv), &yv), &g) in ds.iter_mut().zip(xs).zip(ys).zip(gs) {
        d.write(g * p.df(xv, yv));
    }
}

/// The elements of a standard-layout array, in order.
fn one_slice<'a, T>(a: &'a CowArray<'_, T, IxDyn>) -> &'a [T] {
    a.as_slice().expect("a standard-layout array is one slice")
}

pub(crate) fn check_same(op: &str, a: &[usize], b: &[usize]) {
    assert!(
        a == b,
        "{op}: gradient or output buffer of shape {b:?} does not match input shape {a:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::gelu;
    use ndarray::{s, Array1, Array2};

    #[test]
    fn a_long_array_split_among_threads_gets_every_element() {
        // Above `parallel::PARALLEL_ELEMENTS`, with an odd length.
        let n = 3 * crate::parallel::PARALLEL_ELEMENTS + 7;
        let x = Array1::from_shape_fn(n, |i| (i as f32 * 0.013).sin() * 4.0).into_dyn();
        let g = Array1::from_shape_fn(n, |i| (i as f32 * 0.7).cos()).into_dyn();
        let mut y = ArrayD::from_elem(x.raw_dim(), f32::NAN);
        forward_into(&gelu, x.view(), y.view_mut());
        let mut dx = ArrayD::from_elem(x.raw_dim(), f32::NAN);
        backward_into(&gelu, x.view(), y.view(), g.view(), dx.view_mut());
        for i in 0..n {
            assert_eq!(y[i], gelu.f(x[i]), "y at {i}");
            assert_eq!(dx[i], g[i] * gelu.df(x[i], y[i]), "dx at {i}");
        }
    }

    #[test]
    fn tensors_with_gaps_or_transposed_get_every_element() {
        // A transposed input, a stepped output and a transposed gradient:
        // each goes through a contiguous copy and lands where it belongs.
        let base = Array2::from_shape_fn((6, 10), |(i, j)| (i as f32 - 2.5) * 0.4 + j as f32 * 0.3);
        let x = base.t().into_dyn();
        let g = base.mapv(|v| v.cos()).reversed_axes().into_dyn();
        let mut wide = ArrayD::from_elem(IxDyn(&[10, 12]), f32::NAN);
        let mut y = wide.slice_mut(s![.., ..;2]).into_dyn();
        forward_into(&gelu, x.view(), y.view_mut());
        let mut dx = ArrayD::from_elem(IxDyn(&[6, 10]), f32::NAN);
        let mut dx = dx.view_mut().reversed_axes();
        backward_into(&gelu, x.view(), y.view(), g.view(), dx.view_mut());
        for ((i, j), &v) in base.t().indexed_iter() {
            assert_eq!(y[[i, j]], gelu.f(v), "y at {i}, {j}");
            assert_eq!(
                dx[[i, j]],
                g[[i, j]] * gelu.df(v, y[[i, j]]),
                "dx at {i}, {j}"
            );
        }
        // The columns between the output's were left alone.
        assert!(wide.slice(s![.., 1..;2]).iter().all(|v| v.is_nan()));
    }
}
