//! Batch and layer normalization, forward beside backward.
//!
//! Both normalize `x̂ = (x - μ) / √(σ² + ε)` with the biased variance and then
//! scale and shift: `y = γ x̂ + β`. Batch norm takes μ, σ² per channel (axis 1)
//! over every other axis; layer norm per sample over the last axes.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn, Zip};

use super::owned::owned;
use crate::Float;

/// Per-channel statistics of `x` (`[n, c, …]`): the mean and the biased
/// variance over every axis but 1, and the element count per channel.
pub fn channel_stats<T: Float>(x: ArrayViewD<'_, T>) -> (Vec<T>, Vec<T>, usize) {
    let c = x.shape().get(1).copied().unwrap_or(0);
    let (mut mean, mut var) = (vec![T::zero(); c], vec![T::zero(); c]);
    let m = channel_stats_into(x, &mut mean, &mut var);
    (mean, var, m)
}

/// [`channel_stats`] into `mean` and `var` (one slot per channel); returns the
/// element count per channel.
pub fn channel_stats_into<T: Float>(x: ArrayViewD<'_, T>, mean: &mut [T], var: &mut [T]) -> usize {
    assert!(
        x.ndim() >= 2 && mean.len() == x.shape()[1] && var.len() == x.shape()[1],
        "batch_norm: expected input [batch, {}, …], got {:?}",
        mean.len(),
        x.shape()
    );
    let m = x.len() / mean.len().max(1);
    for (ci, (mu, v)) in mean.iter_mut().zip(var.iter_mut()).enumerate() {
        let lane = x.index_axis(Axis(1), ci);
        let s: T = lane.iter().copied().sum();
        *mu = s / T::lit(m as f64);
        let q: T = lane.iter().map(|&e| (e - *mu) * (e - *mu)).sum();
        *v = q / T::lit(m as f64);
    }
    m
}

/// `1 / √(σ² + ε)`.
fn inv_std<T: Float>(var: T, eps: f64) -> T {
    T::one() / (var + T::lit(eps)).sqrt()
}

fn per_channel<T: Float>(x: &ArrayViewD<'_, T>, values: &[T]) -> ArrayD<T> {
    let mut shape = vec![1; x.ndim()];
    shape[1] = values.len();
    ArrayD::from_shape_vec(IxDyn(&shape), values.to_vec()).expect("one value per channel")
}

/// `γ (x - μ) / √(σ² + ε) + β` with the given per-channel statistics.
pub fn batch_norm<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> ArrayD<T> {
    owned(x.raw_dim(), |y| {
        batch_norm_into(x, gamma, beta, mean, var, eps, y)
    })
}

/// [`batch_norm`] into a preallocated `y` of `x`'s shape.
pub fn batch_norm_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
    mut y: ArrayViewMutD<'_, T>,
) {
    let c = x.shape()[1];
    assert!(
        gamma.len() == c && beta.len() == c && y.shape() == x.shape(),
        "batch_norm: {c} channels but weight {:?}, bias {:?}, output {:?}",
        gamma.shape(),
        beta.shape(),
        y.shape()
    );
    for ci in 0..c {
        let (m, s, b) = (mean[ci], inv_std(var[ci], eps) * gamma[ci], beta[ci]);
        Zip::from(y.index_axis_mut(Axis(1), ci))
            .and(x.index_axis(Axis(1), ci))
            .for_each(|o, &v| *o = (v - m) * s + b);
    }
}

/// Training-mode gradients (batch statistics depend on `x`):
/// `dx = γ/(M σ̂) (M dy - Σdy - x̂ Σ(dy x̂))`, `dγ = Σ dy x̂`, `dβ = Σ dy`.
pub fn batch_norm_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let (dx_dim, param_dim) = (x.raw_dim(), gamma.raw_dim());
    fresh_grads(dx_dim, param_dim, |g| {
        batch_norm_backward_into(x, gamma, dy, mean, var, eps, g)
    })
}

/// Runs an `_into` backward on zeroed buffers and returns `(dx, dγ, dβ)`.
fn fresh_grads<T: Float>(
    dx_dim: IxDyn,
    param_dim: IxDyn,
    backward: impl FnOnce(NormGrads<'_, T>),
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let mut dx = ArrayD::zeros(dx_dim);
    let (mut dgamma, mut dbeta) = (ArrayD::zeros(param_dim.clone()), ArrayD::zeros(param_dim));
    backward(NormGrads {
        dx: dx.view_mut(),
        dgamma: dgamma.view_mut(),
        dbeta: dbeta.view_mut(),
    });
    (dx, dgamma, dbeta)
}

/// Where the `_into` backward passes put their gradients: `dx` is
/// overwritten; `dgamma` and `dbeta` are added to (parameter gradients accumulate).
pub struct NormGrads<'a, T> {
    /// The input's gradient, of the input's shape.
    pub dx: ArrayViewMutD<'a, T>,
    /// Added to: the scale's gradient.
    pub dgamma: ArrayViewMutD<'a, T>,
    /// Added to: the shift's gradient.
    pub dbeta: ArrayViewMutD<'a, T>,
}

/// [`batch_norm_backward`] into preallocated buffers (see [`NormGrads`]).
pub fn batch_norm_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
    grads: NormGrads<'_, T>,
) {
    let NormGrads {
        mut dx,
        mut dgamma,
        mut dbeta,
    } = grads;
    let c = x.shape()[1];
    let m = T::lit((x.len() / c) as f64);
    for ci in 0..c {
        let inv = inv_std(var[ci], eps);
        let (xs, gs) = (x.index_axis(Axis(1), ci), dy.index_axis(Axis(1), ci));
        let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
        Zip::from(&xs).and(&gs).for_each(|&xv, &g| {
            sum_g += g;
            sum_gx += g * (xv - mean[ci]) * inv;
        });
        dgamma[ci] += sum_gx;
        dbeta[ci] += sum_g;
        let k = gamma[ci] * inv / m;
        Zip::from(dx.index_axis_mut(Axis(1), ci))
            .and(&xs)
            .and(&gs)
            .for_each(|d, &xv, &g| {
                let xhat = (xv - mean[ci]) * inv;
                *d = k * (m * g - sum_g - xhat * sum_gx);
            });
    }
}

/// Evaluation-mode gradients (fixed running statistics): `dx = γ dy / √(σ² + ε)`.
pub fn batch_norm_eval_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let c = x.shape()[1];
    let inv: Vec<T> = var.iter().map(|&v| inv_std(v, eps)).collect();
    let scale: Vec<T> = inv.iter().zip(gamma.iter()).map(|(&i, &g)| i * g).collect();
    let dx = &dy * &per_channel(&x, &scale);
    let xhat = &(&x - &per_channel(&x, mean)) * &per_channel(&x, &inv);
    let mut axes: Vec<usize> = (0..x.ndim()).filter(|&a| a != 1).collect();
    axes.reverse();
    let reduce = |mut a: ArrayD<T>| {
        for &ax in &axes {
            a = a.sum_axis(Axis(ax));
        }
        a
    };
    let dgamma = reduce(&dy * &xhat);
    let dbeta = reduce(dy.to_owned());
    debug_assert_eq!(dgamma.len(), c);
    (dx, dgamma, dbeta)
}

fn rows<T: Float>(op: &str, x: &ArrayViewD<'_, T>, normalized: usize) -> (usize, usize) {
    assert!(
        normalized >= 1 && normalized <= x.ndim(),
        "{op}: cannot normalize the last {normalized} axes of shape {:?}",
        x.shape()
    );
    let m: usize = x.shape()[x.ndim() - normalized..].iter().product();
    (x.len() / m.max(1), m)
}

/// A row's mean and `1 / √(biased variance + ε)`.
fn row_stats<T: Float>(row: &[T], eps: f64) -> (T, T) {
    let m = T::lit(row.len() as f64);
    let mean = row.iter().copied().sum::<T>() / m;
    let var = row.iter().map(|&e| (e - mean) * (e - mean)).sum::<T>() / m;
    (mean, inv_std(var, eps))
}

/// Layer norm over the last `normalized` axes; `gamma`, `beta` have their shape.
pub fn layer_norm<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
) -> ArrayD<T> {
    owned(x.raw_dim(), |y| {
        layer_norm_into(x, gamma, beta, normalized, eps, y)
    })
}

/// [`layer_norm`] into a preallocated `y` of `x`'s shape.
pub fn layer_norm_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
    mut y: ArrayViewMutD<'_, T>,
) {
    let (n, m) = rows("layer_norm", &x, normalized);
    assert!(
        gamma.len() == m && beta.len() == m && y.shape() == x.shape(),
        "layer_norm: weight {:?} does not match the last {normalized} axes of {:?} (output {:?})",
        gamma.shape(),
        x.shape(),
        y.shape()
    );
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    let (g, b) = (gamma.as_standard_layout(), beta.as_standard_layout());
    let (g, b) = (
        g.as_slice().expect("standard"),
        b.as_slice().expect("standard"),
    );
    let y = y.as_slice_mut().expect("standard-layout output");
    for r in 0..n {
        let row = &xs[r * m..(r + 1) * m];
        let (mean, inv) = row_stats(row, eps);
        for (j, out) in y[r * m..(r + 1) * m].iter_mut().enumerate() {
            *out = (row[j] - mean) * inv * g[j] + b[j];
        }
    }
}

/// Gradients of [`layer_norm`]: `(dx, dγ, dβ)`.
pub fn layer_norm_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let (dx_dim, param_dim) = (x.raw_dim(), gamma.raw_dim());
    fresh_grads(dx_dim, param_dim, |g| {
        layer_norm_backward_into(x, gamma, dy, normalized, eps, g)
    })
}

/// [`layer_norm_backward`] into preallocated buffers (see [`NormGrads`]).
pub fn layer_norm_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
    grads: NormGrads<'_, T>,
) {
    let (n, m) = rows("layer_norm", &x, normalized);
    let (xs, gs) = (x.as_standard_layout(), dy.as_standard_layout());
    let (xs, gs) = (
        xs.as_slice().expect("standard"),
        gs.as_slice().expect("standard"),
    );
    let g = gamma.as_standard_layout();
    let g = g.as_slice().expect("standard");
    let NormGrads {
        mut dx,
        mut dgamma,
        mut dbeta,
    } = grads;
    let dx = dx.as_slice_mut().expect("standard-layout gradient");
    let dgamma = dgamma.as_slice_mut().expect("standard-layout gradient");
    let dbeta = dbeta.as_slice_mut().expect("standard-layout gradient");
    let mf = T::lit(m as f64);
    for r in 0..n {
        let (row, grow) = (&xs[r * m..(r + 1) * m], &gs[r * m..(r + 1) * m]);
        let (mean, inv) = row_stats(row, eps);
        let (mut sum_d, mut sum_dx) = (T::zero(), T::zero());
        for j in 0..m {
            let xhat = (row[j] - mean) * inv;
            let d = grow[j] * g[j];
            sum_d += d;
            sum_dx += d * xhat;
            dgamma[j] += grow[j] * xhat;
            dbeta[j] += grow[j];
        }
        for j in 0..m {
            let xhat = (row[j] - mean) * inv;
            dx[r * m + j] = inv / mf * (mf * grow[j] * g[j] - sum_d - xhat * sum_dx);
        }
    }
}
