//! Batch and layer normalization, forward beside backward.
//!
//! Both normalize `x̂ = (x - μ) / √(σ² + ε)` with the biased variance and then
//! scale and shift: `y = γ x̂ + β`. Batch norm takes μ, σ² per channel (axis 1)
//! over every other axis; layer norm per sample over the last axes.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use crate::Float;

/// Per-channel statistics of `x` (`[n, c, …]`): the mean and the biased
/// variance over every axis but 1, and the element count per channel.
pub fn channel_stats<T: Float>(x: ArrayViewD<'_, T>) -> (Vec<T>, Vec<T>, usize) {
    assert!(
        x.ndim() >= 2,
        "batch_norm: expected input [batch, channels, …], got {:?}",
        x.shape()
    );
    let c = x.shape()[1];
    let m = x.len() / c;
    let (mut mean, mut var) = (vec![T::zero(); c], vec![T::zero(); c]);
    for (ci, (mu, v)) in mean.iter_mut().zip(var.iter_mut()).enumerate() {
        let lane = x.index_axis(Axis(1), ci);
        let s: T = lane.iter().copied().sum();
        *mu = s / T::lit(m as f64);
        let q: T = lane.iter().map(|&e| (e - *mu) * (e - *mu)).sum();
        *v = q / T::lit(m as f64);
    }
    (mean, var, m)
}

/// `1 / √(σ² + ε)` per channel.
fn inv_std<T: Float>(var: &[T], eps: f64) -> Vec<T> {
    var.iter()
        .map(|&v| T::one() / (v + T::lit(eps)).sqrt())
        .collect()
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
    let c = x.shape()[1];
    assert!(
        gamma.len() == c && beta.len() == c,
        "batch_norm: {c} channels but weight {:?}, bias {:?}",
        gamma.shape(),
        beta.shape()
    );
    let inv = inv_std(var, eps);
    let scale: Vec<T> = inv.iter().zip(gamma.iter()).map(|(&i, &g)| i * g).collect();
    let (m, s) = (per_channel(&x, mean), per_channel(&x, &scale));
    let b = per_channel(&x, &beta.iter().copied().collect::<Vec<_>>());
    (&(&x - &m) * &s) + &b
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
    let c = x.shape()[1];
    let m = T::lit((x.len() / c) as f64);
    let mut dx = ArrayD::zeros(x.raw_dim());
    let (mut dgamma, mut dbeta) = (ArrayD::zeros(IxDyn(&[c])), ArrayD::zeros(IxDyn(&[c])));
    let invs = inv_std(var, eps);
    for ci in 0..c {
        let inv = invs[ci];
        let (xs, gs) = (x.index_axis(Axis(1), ci), dy.index_axis(Axis(1), ci));
        let (mut sum_g, mut sum_gx) = (T::zero(), T::zero());
        Zip::from(&xs).and(&gs).for_each(|&xv, &g| {
            sum_g += g;
            sum_gx += g * (xv - mean[ci]) * inv;
        });
        dgamma[ci] = sum_gx;
        dbeta[ci] = sum_g;
        let k = gamma[ci] * inv / m;
        Zip::from(dx.index_axis_mut(Axis(1), ci))
            .and(&xs)
            .and(&gs)
            .for_each(|d, &xv, &g| {
                let xhat = (xv - mean[ci]) * inv;
                *d = k * (m * g - sum_g - xhat * sum_gx);
            });
    }
    (dx, dgamma, dbeta)
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
    let inv = inv_std(var, eps);
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
    (mean, T::one() / (var + T::lit(eps)).sqrt())
}

/// Layer norm over the last `normalized` axes; `gamma`, `beta` have their shape.
pub fn layer_norm<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
) -> ArrayD<T> {
    let (n, m) = rows("layer_norm", &x, normalized);
    assert!(
        gamma.len() == m && beta.len() == m,
        "layer_norm: weight {:?} does not match the last {normalized} axes of {:?}",
        gamma.shape(),
        x.shape()
    );
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    let (g, b) = (gamma.as_standard_layout(), beta.as_standard_layout());
    let (g, b) = (
        g.as_slice().expect("standard"),
        b.as_slice().expect("standard"),
    );
    let mut y = vec![T::zero(); x.len()];
    for r in 0..n {
        let row = &xs[r * m..(r + 1) * m];
        let (mean, inv) = row_stats(row, eps);
        for (j, out) in y[r * m..(r + 1) * m].iter_mut().enumerate() {
            *out = (row[j] - mean) * inv * g[j] + b[j];
        }
    }
    ArrayD::from_shape_vec(x.raw_dim(), y).expect("same size")
}

/// Gradients of [`layer_norm`]: `(dx, dγ, dβ)`.
pub fn layer_norm_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let (n, m) = rows("layer_norm", &x, normalized);
    let (xs, gs) = (x.as_standard_layout(), dy.as_standard_layout());
    let (xs, gs) = (
        xs.as_slice().expect("standard"),
        gs.as_slice().expect("standard"),
    );
    let g = gamma.as_standard_layout();
    let g = g.as_slice().expect("standard");
    let mut dx = vec![T::zero(); x.len()];
    let (mut dgamma, mut dbeta) = (vec![T::zero(); m], vec![T::zero(); m]);
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
    (
        ArrayD::from_shape_vec(x.raw_dim(), dx).expect("same size"),
        ArrayD::from_shape_vec(gamma.raw_dim(), dgamma).expect("same size"),
        ArrayD::from_shape_vec(gamma.raw_dim(), dbeta).expect("same size"),
    )
}
