//! Element-wise functions: one trait for `f` and its derivative, and the two
//! array kernels every element-wise op (math functions and activations) shares.

use std::fmt::Debug;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};

use super::owned::owned;
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
    x.mapv(|v| p.f(v))
}

/// `out = f(x)` into a preallocated buffer of `x`'s shape.
pub fn forward_into<T: Float, P: Pointwise>(
    p: &P,
    x: ArrayViewD<'_, T>,
    out: ArrayViewMutD<'_, T>,
) {
    check_same(p.name(), x.shape(), out.shape());
    let mut out = out;
    if let (Some(xs), Some(os)) = (x.as_slice(), out.as_slice_mut()) {
        let os = Shared::new(os);
        return for_each_range(xs.len(), xs.len(), &|r| {
            // SAFETY: the ranges of the parts are disjoint.
            forward_slices(p, &xs[r.clone()], unsafe { os.slice(r) })
        });
    }
    Zip::from(out).and(&x).for_each(|o, &v| *o = p.f(v));
}

/// `dx = dy * f'(x)`.
pub fn backward<T: Float, P: Pointwise>(
    p: &P,
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    owned(x.raw_dim(), |dx| backward_into(p, x, y, dy, dx))
}

/// `dx = dy * f'(x)` into a preallocated buffer of `x`'s shape.
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
    if let (Some(xs), Some(ys), Some(gs), Some(ds)) =
        (x.as_slice(), y.as_slice(), dy.as_slice(), dx.as_slice_mut())
    {
        let ds = Shared::new(ds);
        return for_each_range(xs.len(), xs.len(), &|r| {
            let inputs = [&xs[r.clone()], &ys[r.clone()], &gs[r.clone()]];
            // SAFETY: the ranges of the parts are disjoint.
            backward_slices(p, inputs, unsafe { ds.slice(r) })
        });
    }
    Zip::from(dx)
        .and(&x)
        .and(&y)
        .and(&dy)
        .for_each(|d, &xv, &yv, &g| *d = g * p.df(xv, yv));
}

// The slice loops below have wide twins of their own (`run_widest!`) rather
// than going through `simd::widest`: a closure holding an inlined `erf` or `exp` is too
// large for LLVM to inline into `widest`'s AVX-512 function, and then stays
// scalar (GELU's loops were the slowest part of a transformer's step).

/// `os = f(xs)`, compiled for the widest vectors the CPU has.
fn forward_slices<T: Float, P: Pointwise>(p: &P, xs: &[T], os: &mut [T]) {
    crate::run_widest!(<T: Float, P: Pointwise> (p: &P = p, xs: &[T] = xs, os: &mut [T] = os)
        => forward_loop(p, xs, os))
}

#[inline(always)]
fn forward_loop<T: Float, P: Pointwise>(p: &P, xs: &[T], os: &mut [T]) {
    for (o, &v) in os.iter_mut().zip(xs) {
        *o = p.f(v);
    }
}

/// `ds = gs * f'(xs, ys)` from `[xs, ys, gs]`, compiled for the widest
/// vectors the CPU has.
fn backward_slices<T: Float, P: Pointwise>(p: &P, inputs: [&[T]; 3], ds: &mut [T]) {
    crate::run_widest!(<T: Float, P: Pointwise> (
        p: &P = p,
        inputs: [&[T]; 3] = inputs,
        ds: &mut [T] = ds,
    ) => backward_loop(p, inputs, ds))
}

#[inline(always)]
fn backward_loop<T: Float, P: Pointwise>(p: &P, [xs, ys, gs]: [&[T]; 3], ds: &mut [T]) {
    for (((d, &xv), &yv), &g) in ds.iter_mut().zip(xs).zip(ys).zip(gs) {
        *d = g * p.df(xv, yv);
    }
}

fn check_same(op: &str, a: &[usize], b: &[usize]) {
    assert!(
        a == b,
        "{op}: gradient or output buffer of shape {b:?} does not match input shape {a:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::gelu;
    use ndarray::Array1;

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
}
