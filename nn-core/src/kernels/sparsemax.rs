//! Sparsemax along one axis, as Keras 3 computes it, beside its backward.
//!
//! With a lane sorted descending (`z₍₁₎ ≥ z₍₂₎ ≥ …`) and `cᵢ = Σ_{j≤i} z₍ⱼ₎`,
//! the support is `S = {i : z₍ᵢ₎ - (cᵢ - 1)/i > 0}`, `k = |S|`, and the output
//! is `max(z - τ, 0)`. Keras takes `τ = (Σ_{i∈S} cᵢ - 1) / k` (every backend of
//! Keras 3.15), where Martins & Astudillo (2016) take `τ = (c_k - 1) / k`. The
//! two agree when one entry is in the support; beyond that Keras's output no
//! longer sums to 1. We follow Keras, whose name this is, and differentiate
//! the same formula: `∂τ/∂z₍ⱼ₎ = |{i ∈ S : i ≥ j}| / k`.

use std::cell::RefCell;
use std::cmp::Ordering;

use ndarray::{ArrayView1, ArrayViewD, ArrayViewMutD, Axis, Zip};

use crate::Float;

thread_local! {
    /// Each thread's sorting scratch (`order`, `weight` of [`threshold`]), so
    /// the static path allocates nothing once warm.
    static SCRATCH: RefCell<(Vec<usize>, Vec<f64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The threshold of one lane and, in `weight[r]`, `∂τ/∂z₍ᵣ₎` for the entry of
/// rank `r`, with `order` the lane's indices sorted descending. NaN when the
/// lane holds a NaN, so the whole lane shows it.
fn threshold<T: Float>(xs: &ArrayView1<'_, T>, order: &mut Vec<usize>, weight: &mut Vec<f64>) -> T {
    if xs.iter().any(|v| v.is_nan()) {
        weight.clear();
        weight.resize(xs.len(), 0.0);
        order.clear();
        order.extend(0..xs.len());
        return T::nan();
    }
    order.clear();
    order.extend(0..xs.len());
    order.sort_unstable_by(|&a, &b| xs[b].partial_cmp(&xs[a]).unwrap_or(Ordering::Equal));
    weight.clear();
    let (mut cumsum, mut support_sum, mut k) = (T::zero(), T::zero(), 0usize);
    for (i, &idx) in order.iter().enumerate() {
        let z = xs[idx];
        cumsum += z;
        let in_support = z - (cumsum - T::one()) / T::lit((i + 1) as f64) > T::zero();
        if in_support {
            support_sum += cumsum;
            k += 1;
        }
        weight.push(if in_support { 1.0 } else { 0.0 });
    }
    // weight[r] = number of support positions at or after rank r, over k.
    let k = k.max(1) as f64;
    let mut after = 0.0;
    for w in weight.iter_mut().rev() {
        after += *w;
        *w = after / k;
    }
    (support_sum - T::one()) / T::lit(k)
}

/// `out = sparsemax(x)` along `axis`.
pub fn sparsemax_into<T: Float>(x: ArrayViewD<'_, T>, axis: Axis, mut out: ArrayViewMutD<'_, T>) {
    check("sparsemax", x.shape(), out.shape());
    SCRATCH.with_borrow_mut(|(order, weight)| {
        Zip::from(x.lanes(axis))
            .and(out.lanes_mut(axis))
            .for_each(|xs, mut ys| {
                let tau = threshold(&xs, order, weight);
                for (y, &v) in ys.iter_mut().zip(xs.iter()) {
                    let d = v - tau;
                    // NaN falls through to the output.
                    *y = if d <= T::zero() { T::zero() } else { d };
                }
            });
    });
}

/// Sparsemax backward from its input `x` and output `y`:
/// `dx = [y > 0] dy - (Σ_{y>0} dy) ∂τ/∂z`.
pub fn sparsemax_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    axis: Axis,
    mut dx: ArrayViewMutD<'_, T>,
) {
    check("sparsemax backward", x.shape(), y.shape());
    check("sparsemax backward", x.shape(), dy.shape());
    check("sparsemax backward", x.shape(), dx.shape());
    SCRATCH.with_borrow_mut(|(order, weight)| {
        Zip::from(x.lanes(axis))
            .and(y.lanes(axis))
            .and(dy.lanes(axis))
            .and(dx.lanes_mut(axis))
            .for_each(|xs, ys, gs, mut ds| {
                threshold(&xs, order, weight);
                let mut active = T::zero();
                for (&yv, &g) in ys.iter().zip(gs.iter()) {
                    if yv > T::zero() {
                        active += g;
                    }
                }
                for (i, (&yv, &g)) in ys.iter().zip(gs.iter()).enumerate() {
                    ds[i] = if yv > T::zero() { g } else { T::zero() };
                }
                for (rank, &idx) in order.iter().enumerate() {
                    ds[idx] -= active * T::lit(weight[rank]);
                }
            });
    });
}

fn check(op: &str, a: &[usize], b: &[usize]) {
    assert!(
        a == b,
        "{op}: buffer of shape {b:?} does not match input shape {a:?}"
    );
}
