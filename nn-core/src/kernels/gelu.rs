//! The exact GELU keeping `1 + erf(x / √2)` (twice its CDF) from the forward
//! for the backward, which then needs only `exp` for the density: the
//! error function was half of a transformer's GELU backward. The formulas
//! below are [`Gelu`](crate::activation::Gelu)'s own `f` and `df`, so the
//! same bits.

use std::f64::consts::{FRAC_2_SQRT_PI, SQRT_2};

use ndarray::{ArrayViewD, ArrayViewMutD};

use super::pointwise::check_same;
use crate::parallel::{for_each_range, Shared};
use crate::Float;

/// `y = x Φ(x)` into `y`, and `1 + erf(x / √2)` into `kept` (both of `x`'s
/// shape, standard layout).
///
/// # Panics
/// If the shapes differ or a buffer is not in standard layout.
pub fn gelu_keep_into<T: Float>(
    x: ArrayViewD<'_, T>,
    mut y: ArrayViewMutD<'_, T>,
    mut kept: ArrayViewMutD<'_, T>,
) {
    check("gelu", x.shape(), &[y.shape(), kept.shape()]);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let ys = Shared::new(y.as_slice_mut().expect("gelu: a standard-layout output"));
    let ks = Shared::new(kept.as_slice_mut().expect("gelu: a standard-layout buffer"));
    for_each_range(xs.len(), xs.len(), &|r| {
        // SAFETY: the parts' ranges are disjoint.
        let (ys, ks) = unsafe { (ys.slice(r.clone()), ks.slice(r.clone())) };
        let xs = &xs[r];
        crate::run_widest!(<T: Float> (xs: &[T] = xs, ys: &mut [T] = ys, ks: &mut [T] = ks)
            => forward(xs, ys, ks));
    });
}

/// `dx = dy (Φ(x) + x φ(x))` from `x` and what [`gelu_keep_into`] kept.
///
/// # Panics
/// If the shapes differ or `dx` is not in standard layout.
pub fn gelu_kept_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    kept: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mut dx: ArrayViewMutD<'_, T>,
) {
    check(
        "gelu backward",
        x.shape(),
        &[kept.shape(), dy.shape(), dx.shape()],
    );
    let inputs = [x, kept, dy];
    let [x, kept, dy] = inputs.each_ref().map(|a| a.as_standard_layout());
    let [xs, ks, gs] = [&x, &kept, &dy].map(|a| a.as_slice().expect("standard layout"));
    let ds = Shared::new(dx.as_slice_mut().expect("gelu: a standard-layout gradient"));
    for_each_range(xs.len(), xs.len(), &|r| {
        // SAFETY: the parts' ranges are disjoint.
        let ds = unsafe { ds.slice(r.clone()) };
        let inputs = [&xs[r.clone()], &ks[r.clone()], &gs[r]];
        crate::run_widest!(<T: Float> (inputs: [&[T]; 3] = inputs, ds: &mut [T] = ds)
            => backward(inputs, ds));
    });
}

/// Each buffer of the input's shape (the element-wise kernels' check).
fn check(op: &str, input: &[usize], buffers: &[&[usize]]) {
    for b in buffers {
        check_same(op, input, b);
    }
}

/// `1 + erf(x / √2)`, twice the normal CDF `Φ(x)`.
#[inline(always)]
pub(crate) fn twice_cdf<T: Float>(x: T) -> T {
    T::one() + (x / T::lit(SQRT_2)).erf()
}

/// The exact GELU `x Φ(x)` from `s = `[`twice_cdf`]`(x)`.
#[inline(always)]
pub(crate) fn gelu_of<T: Float>(x: T, s: T) -> T {
    T::lit(0.5) * x * s
}

/// Its derivative `Φ(x) + x φ(x)` from `s = `[`twice_cdf`]`(x)`.
#[inline(always)]
pub(crate) fn gelu_slope<T: Float>(x: T, s: T) -> T {
    let half = T::lit(0.5);
    // φ(x) = exp(-x²/2) / √(2π)
    let pdf = (-half * x * x).exp_fast() * T::lit(FRAC_2_SQRT_PI / (2.0 * SQRT_2));
    half * s + x * pdf
}

#[inline(always)]
fn forward<T: Float>(xs: &[T], ys: &mut [T], ks: &mut [T]) {
    for ((y, k), &x) in ys.iter_mut().zip(ks.iter_mut()).zip(xs) {
        let s = twice_cdf(x);
        *k = s;
        *y = gelu_of(x, s);
    }
}

#[inline(always)]
fn backward<T: Float>([xs, ks, gs]: [&[T]; 3], ds: &mut [T]) {
    for (((d, &x), &s), &g) in ds.iter_mut().zip(xs).zip(ks).zip(gs) {
        *d = g * gelu_slope(x, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::gelu;
    use crate::kernels::pointwise::Pointwise;
    use ndarray::{Array1, ArrayD};

    #[test]
    fn keeping_the_cdf_gives_the_bits_of_gelu() {
        // Both tails, zero, and enough values to be split among threads.
        let n = 70_000;
        let x = Array1::from_shape_fn(n, |i| (i as f32 - 35_000.0) * 2.3e-4).into_dyn();
        let dy = Array1::from_shape_fn(n, |i| ((i as f32) * 0.37).cos()).into_dyn();
        let (mut y, mut kept) = (ArrayD::zeros(x.raw_dim()), ArrayD::zeros(x.raw_dim()));
        gelu_keep_into(x.view(), y.view_mut(), kept.view_mut());
        let mut dx = ArrayD::zeros(x.raw_dim());
        gelu_kept_backward_into(x.view(), kept.view(), dy.view(), dx.view_mut());
        for i in 0..n {
            let v = x[i];
            assert_eq!(y[i].to_bits(), gelu.f(v).to_bits(), "y at {v}");
            let want = dy[i] * gelu.df(v, y[i]);
            assert_eq!(dx[i].to_bits(), want.to_bits(), "dx at {v}");
        }
    }

    #[test]
    #[should_panic(
        expected = "gelu backward: gradient or output buffer of shape [3, 2] does not match input shape [2, 3]"
    )]
    fn mismatched_buffers_name_the_shapes() {
        let x = ArrayD::<f64>::zeros(ndarray::IxDyn(&[2, 3]));
        let kept = ArrayD::<f64>::zeros(ndarray::IxDyn(&[3, 2]));
        let mut dx = x.clone();
        gelu_kept_backward_into(x.view(), kept.view(), x.view(), dx.view_mut());
    }
}
