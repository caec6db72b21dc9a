//! Loss functions before reduction, each forward beside its backward.
//!
//! Element-wise losses (MSE, MAE, Huber, binary cross-entropy) give one value per
//! element, like PyTorch's `reduction="none"`; the class-wise ones (cross-entropy,
//! categorical cross-entropy, KL divergence) give one value per sample. Backward
//! takes `dl`, the gradient of each of those values, and returns the gradients of
//! the prediction and of the target.

use ndarray::{Array1, ArrayD, ArrayViewD, Axis, Zip};

use super::activation::{sigmoid, softplus};
use super::math::sign;
use super::softmax::{log_softmax_into, softmax_into};
use crate::Float;

/// Gradients of a loss: with respect to the prediction and to the target.
pub type LossGrads<T> = (ArrayD<T>, ArrayD<T>);

fn check_same(op: &str, pred: &[usize], target: &[usize]) {
    assert!(
        pred == target,
        "{op}: prediction shape {pred:?} does not match target shape {target:?}"
    );
}

fn last_axis(op: &str, shape: &[usize]) -> Axis {
    assert!(
        !shape.is_empty(),
        "{op}: expected at least 1-D input, got a scalar"
    );
    Axis(shape.len() - 1)
}

fn elementwise<T: Float>(
    op: &str,
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    check_same(op, pred.shape(), target.shape());
    let mut out = ArrayD::zeros(pred.raw_dim());
    Zip::from(&mut out)
        .and(&pred)
        .and(&target)
        .for_each(|o, &p, &t| *o = f(p, t));
    out
}

/// Element-wise backward: `df(p, t)` returns `(∂l/∂p, ∂l/∂t)`.
fn elementwise_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
    df: impl Fn(T, T) -> (T, T),
) -> LossGrads<T> {
    let mut dp = ArrayD::zeros(pred.raw_dim());
    let mut dt = ArrayD::zeros(pred.raw_dim());
    Zip::from(&mut dp)
        .and(&mut dt)
        .and(&pred)
        .and(&target)
        .and(&dl)
        .for_each(|dp, dt, &p, &t, &g| {
            let (a, b) = df(p, t);
            *dp = g * a;
            *dt = g * b;
        });
    (dp, dt)
}

/// Squared error `(p - t)²`.
pub fn mse<T: Float>(pred: ArrayViewD<'_, T>, target: ArrayViewD<'_, T>) -> ArrayD<T> {
    elementwise("mse", pred, target, |p, t| (p - t) * (p - t))
}

/// Gradients of [`mse`]: `±2 (p - t)`.
pub fn mse_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(pred, target, dl, |p, t| {
        let d = T::lit(2.0) * (p - t);
        (d, -d)
    })
}

/// Absolute error `|p - t|` (Keras MAE, PyTorch L1).
pub fn mae<T: Float>(pred: ArrayViewD<'_, T>, target: ArrayViewD<'_, T>) -> ArrayD<T> {
    elementwise("mae", pred, target, |p, t| (p - t).abs())
}

/// Gradients of [`mae`]: `±sign(p - t)`, 0 where they are equal.
pub fn mae_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(pred, target, dl, |p, t| {
        let s = sign(p - t);
        (s, -s)
    })
}

/// Huber loss: `0.5 d²` where `|d| < delta`, else `delta (|d| - 0.5 delta)`, `d = p - t`
/// (Keras's `Huber` and PyTorch's `HuberLoss`).
pub fn huber<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    delta: f64,
) -> ArrayD<T> {
    let delta = T::lit(delta);
    let half = T::lit(0.5);
    elementwise("huber", pred, target, |p, t| {
        let d = (p - t).abs();
        if d < delta {
            half * d * d
        } else {
            delta * (d - half * delta)
        }
    })
}

/// Gradients of [`huber`]: `d` inside the quadratic zone, `delta·sign(d)` outside.
pub fn huber_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
    delta: f64,
) -> LossGrads<T> {
    let delta = T::lit(delta);
    elementwise_backward(pred, target, dl, |p, t| {
        let d = p - t;
        let g = if d.abs() < delta { d } else { delta * sign(d) };
        (g, -g)
    })
}

/// The floor PyTorch puts under `log` in binary cross-entropy, so `p = 0` costs 100, not ∞.
const BCE_LOG_FLOOR: f64 = -100.0;

fn clamped_ln<T: Float>(v: T) -> T {
    v.ln().max(T::lit(BCE_LOG_FLOOR))
}

/// Binary cross-entropy on probabilities: `-(t ln p + (1 - t) ln(1 - p))`, each log
/// floored at -100 as in PyTorch's `BCELoss`.
pub fn binary_cross_entropy<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    elementwise("binary_cross_entropy", pred, target, |p, t| {
        -(t * clamped_ln(p) + (T::one() - t) * clamped_ln(T::one() - p))
    })
}

/// Gradients of [`binary_cross_entropy`]: `(p - t) / max(p (1 - p), 1e-12)` (PyTorch's
/// formula) and `ln(1 - p) - ln p`.
pub fn binary_cross_entropy_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(pred, target, dl, |p, t| {
        let denom = (p * (T::one() - p)).max(T::lit(1e-12));
        ((p - t) / denom, clamped_ln(T::one() - p) - clamped_ln(p))
    })
}

/// Binary cross-entropy from logits, stable for any magnitude:
/// `max(x, 0) - x t + ln(1 + e^{-|x|})`.
pub fn binary_cross_entropy_with_logits<T: Float>(
    logits: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    elementwise(
        "binary_cross_entropy_with_logits",
        logits,
        target,
        |x, t| softplus(x) - x * t,
    )
}

/// Gradients of [`binary_cross_entropy_with_logits`]: `sigmoid(x) - t` and `-x`.
pub fn binary_cross_entropy_with_logits_backward<T: Float>(
    logits: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(logits, target, dl, |x, t| (sigmoid(x) - t, -x))
}

fn check_labels(op: &str, logits: &[usize], labels: &[usize]) {
    assert!(
        logits.len() == 2 && logits[0] == labels.len(),
        "{op}: logits of shape {logits:?} need one label per row, got {} labels",
        labels.len()
    );
    if let Some(&bad) = labels.iter().find(|&&l| l >= logits[1]) {
        panic!(
            "{op}: label {bad} is out of range for {} classes",
            logits[1]
        );
    }
}

/// Cross-entropy from logits `[batch, classes]` and integer labels, one value per
/// row: `logsumexp(x) - x[label]` via a max-shifted log-softmax (finite for any logits).
pub fn cross_entropy<T: Float>(logits: ArrayViewD<'_, T>, labels: &[usize]) -> ArrayD<T> {
    check_labels("cross_entropy", logits.shape(), labels);
    let mut logp = ArrayD::zeros(logits.raw_dim());
    log_softmax_into(logits, Axis(1), logp.view_mut());
    let per_row: Vec<T> = logp
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &l)| -row[l])
        .collect();
    Array1::from_vec(per_row).into_dyn()
}

/// Gradient of [`cross_entropy`]: `(softmax(x) - onehot(label)) * dl` per row.
pub fn cross_entropy_backward<T: Float>(
    logits: ArrayViewD<'_, T>,
    labels: &[usize],
    dl: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    check_labels("cross_entropy", logits.shape(), labels);
    let mut dx = ArrayD::zeros(logits.raw_dim());
    softmax_into(logits, Axis(1), dx.view_mut());
    for ((mut row, &l), &g) in dx.rows_mut().into_iter().zip(labels).zip(dl.iter()) {
        row[l] -= T::one();
        row.mapv_inplace(|v| v * g);
    }
    dx
}

/// The clip Keras applies to probabilities before taking logs.
pub const PROB_EPSILON: f64 = 1e-7;

/// `p` clipped to `[lo, hi]`, keeping NaN (so a diverged model shows a NaN loss
/// instead of a plausible-looking clipped one).
fn clip<T: Float>(p: T, lo: T, hi: T) -> T {
    if p < lo {
        lo
    } else if p > hi {
        hi
    } else {
        p
    }
}

/// Categorical cross-entropy on probabilities along the last axis:
/// `-Σ t ln clip(p, 1e-7, 1 - 1e-7)`, one value per sample (Keras's
/// `categorical_crossentropy`, targets one-hot or soft).
pub fn categorical_cross_entropy<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    let op = "categorical_cross_entropy";
    check_same(op, pred.shape(), target.shape());
    let ax = last_axis(op, pred.shape());
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    Zip::from(pred.lanes(ax))
        .and(target.lanes(ax))
        .map_collect(|p, t| {
            -p.iter()
                .zip(t.iter())
                .map(|(&p, &t)| t * clip(p, lo, hi).ln())
                .sum::<T>()
        })
}

/// Gradients of [`categorical_cross_entropy`]: `-t / p` (0 where `p` was clipped)
/// and `-ln clip(p)`.
pub fn categorical_cross_entropy_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    let ax = last_axis("categorical_cross_entropy", pred.shape());
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    let mut dp = ArrayD::zeros(pred.raw_dim());
    let mut dt = ArrayD::zeros(pred.raw_dim());
    Zip::from(dp.lanes_mut(ax))
        .and(dt.lanes_mut(ax))
        .and(pred.lanes(ax))
        .and(target.lanes(ax))
        .and(&dl)
        .for_each(|mut dp, mut dt, p, t, &g| {
            for i in 0..p.len() {
                let inside = p[i] >= lo && p[i] <= hi;
                dp[i] = if inside { -g * t[i] / p[i] } else { T::zero() };
                dt[i] = -g * clip(p[i], lo, hi).ln();
            }
        });
    (dp, dt)
}

/// Sparse categorical cross-entropy on probabilities `[batch, classes]` with
/// integer labels: `-ln clip(p[label], 1e-7, 1 - 1e-7)` per row (Keras's
/// `sparse_categorical_crossentropy` on a softmax output).
pub fn sparse_categorical_cross_entropy<T: Float>(
    pred: ArrayViewD<'_, T>,
    labels: &[usize],
) -> ArrayD<T> {
    check_labels("sparse_categorical_cross_entropy", pred.shape(), labels);
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    let per_row: Vec<T> = pred
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &l)| -clip(row[l], lo, hi).ln())
        .collect();
    Array1::from_vec(per_row).into_dyn()
}

/// Gradient of [`sparse_categorical_cross_entropy`]: `-1 / p[label]` at the label
/// (0 where clipped), zero elsewhere.
pub fn sparse_categorical_cross_entropy_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    labels: &[usize],
    dl: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    check_labels("sparse_categorical_cross_entropy", pred.shape(), labels);
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    let mut dp = ArrayD::zeros(pred.raw_dim());
    for ((mut row, p), (&l, &g)) in dp
        .rows_mut()
        .into_iter()
        .zip(pred.rows())
        .zip(labels.iter().zip(dl.iter()))
    {
        if p[l] >= lo && p[l] <= hi {
            row[l] = -g / p[l];
        }
    }
    dp
}

/// The fused gradient of a categorical cross-entropy taken on `p = softmax(z)`,
/// with respect to the logits `z`: `(p - y) * dl` per row, where `y` is the
/// one-hot label. Skips the softmax Jacobian entirely.
pub fn softmax_cross_entropy_logits_grad<T: Float>(
    probs: ArrayViewD<'_, T>,
    labels: &[usize],
    dl: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    check_labels("softmax_cross_entropy", probs.shape(), labels);
    let mut dz = probs.to_owned();
    for ((mut row, &l), &g) in dz.rows_mut().into_iter().zip(labels).zip(dl.iter()) {
        row[l] -= T::one();
        row.mapv_inplace(|v| v * g);
    }
    dz
}

/// `t ln t`, taken as 0 at `t = 0`.
fn xlogx<T: Float>(t: T) -> T {
    if t > T::zero() {
        t * t.ln()
    } else {
        T::zero()
    }
}

/// Kullback-Leibler divergence `KL(t ‖ p) = Σ t (ln t - ln p)` along the last axis,
/// one value per sample, on probabilities (Keras's `kl_divergence`; PyTorch's
/// `kl_div(p.log(), t, reduction="batchmean")` after a mean reduction).
pub fn kl_divergence<T: Float>(pred: ArrayViewD<'_, T>, target: ArrayViewD<'_, T>) -> ArrayD<T> {
    let op = "kl_divergence";
    check_same(op, pred.shape(), target.shape());
    let ax = last_axis(op, pred.shape());
    Zip::from(pred.lanes(ax))
        .and(target.lanes(ax))
        .map_collect(|p, t| {
            p.iter()
                .zip(t.iter())
                .map(|(&p, &t)| {
                    if t > T::zero() {
                        xlogx(t) - t * p.ln()
                    } else {
                        T::zero()
                    }
                })
                .sum::<T>()
        })
}

/// Gradients of [`kl_divergence`]: `-t / p` and `ln t - ln p + 1` (taken as 0 where `t = 0`).
pub fn kl_divergence_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    let ax = last_axis("kl_divergence", pred.shape());
    let mut dp = ArrayD::zeros(pred.raw_dim());
    let mut dt = ArrayD::zeros(pred.raw_dim());
    Zip::from(dp.lanes_mut(ax))
        .and(dt.lanes_mut(ax))
        .and(pred.lanes(ax))
        .and(target.lanes(ax))
        .and(&dl)
        .for_each(|mut dp, mut dt, p, t, &g| {
            for i in 0..p.len() {
                if t[i] > T::zero() {
                    dp[i] = -g * t[i] / p[i];
                    dt[i] = g * (t[i].ln() - p[i].ln() + T::one());
                }
            }
        });
    (dp, dt)
}
