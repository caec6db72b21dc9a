//! Softmax and log-softmax along one axis, max-shifted so no input overflows,
//! each beside its backward.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, Zip};

use super::owned::owned;
use crate::Float;

/// `out = softmax(x)` along `axis`.
pub fn softmax_into<T: Float>(x: ArrayViewD<'_, T>, axis: Axis, mut out: ArrayViewMutD<'_, T>) {
    Zip::from(x.lanes(axis))
        .and(out.lanes_mut(axis))
        .for_each(|xs, mut ys| {
            let m = lane_max(xs.iter().copied());
            let mut sum = T::zero();
            for (y, &v) in ys.iter_mut().zip(xs.iter()) {
                *y = (v - m).exp();
                sum += *y;
            }
            let inv = sum.recip();
            ys.mapv_inplace(|y| y * inv);
        });
}

/// `out = log_softmax(x)` along `axis`: `x - max - log(sum(exp(x - max)))`.
pub fn log_softmax_into<T: Float>(x: ArrayViewD<'_, T>, axis: Axis, mut out: ArrayViewMutD<'_, T>) {
    Zip::from(x.lanes(axis))
        .and(out.lanes_mut(axis))
        .for_each(|xs, mut ys| {
            let m = lane_max(xs.iter().copied());
            let lse = xs.iter().map(|&v| (v - m).exp()).sum::<T>().ln() + m;
            for (y, &v) in ys.iter_mut().zip(xs.iter()) {
                *y = v - lse;
            }
        });
}

/// The largest element, or 0 for a lane of only `-inf` (so `x - max` stays finite).
fn lane_max<T: Float>(xs: impl Iterator<Item = T>) -> T {
    let m = xs.fold(T::neg_infinity(), T::max);
    if m.is_finite() {
        m
    } else {
        T::zero()
    }
}

/// Softmax along `axis`.
pub fn softmax<T: Float>(x: ArrayViewD<'_, T>, axis: Axis) -> ArrayD<T> {
    owned(x.raw_dim(), |out| softmax_into(x, axis, out))
}

/// Log-softmax along `axis`.
pub fn log_softmax<T: Float>(x: ArrayViewD<'_, T>, axis: Axis) -> ArrayD<T> {
    owned(x.raw_dim(), |out| log_softmax_into(x, axis, out))
}

/// Softmax backward from its output `y`: `dx = y * (dy - sum(dy * y))` per lane.
pub fn softmax_backward_into<T: Float>(
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    axis: Axis,
    mut dx: ArrayViewMutD<'_, T>,
) {
    Zip::from(y.lanes(axis))
        .and(dy.lanes(axis))
        .and(dx.lanes_mut(axis))
        .for_each(|ys, gs, mut ds| {
            let dot = ys.iter().zip(gs.iter()).map(|(&a, &b)| a * b).sum::<T>();
            Zip::from(&mut ds)
                .and(&ys)
                .and(&gs)
                .for_each(|d, &yv, &g| *d = yv * (g - dot));
        });
}

/// Log-softmax backward from its output `y`: `dx = dy - exp(y) * sum(dy)` per lane.
pub fn log_softmax_backward_into<T: Float>(
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    axis: Axis,
    mut dx: ArrayViewMutD<'_, T>,
) {
    Zip::from(y.lanes(axis))
        .and(dy.lanes(axis))
        .and(dx.lanes_mut(axis))
        .for_each(|ys, gs, mut ds| {
            let total = gs.sum();
            Zip::from(&mut ds)
                .and(&ys)
                .and(&gs)
                .for_each(|d, &yv, &g| *d = g - yv.exp() * total);
        });
}
