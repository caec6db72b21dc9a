//! Loss functions before reduction, each forward beside its backward.
//!
//! Element-wise losses (MSE, MAE, Huber, binary cross-entropy) give one value per
//! element, like PyTorch's `reduction="none"`; the class-wise ones (cross-entropy,
//! categorical cross-entropy, KL divergence) give one value per sample. Backward
//! takes `dl`, the gradient of each of those values, and returns the gradients of
//! the prediction and of the target.

use ndarray::{Array1, ArrayD, ArrayViewD, ArrayViewMutD, Axis, Zip};

use super::activation::{sigmoid, softplus};
use super::math::sign;
use super::softmax::{log_softmax, softmax};
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

/// One element of a loss: its value and its derivatives with respect to the
/// prediction and the target. Each loss's formula lives in one such function,
/// shared by the array kernels below and [`mean_into`].
#[derive(Clone, Copy, Debug)]
pub struct Elem<T> {
    /// The loss.
    pub value: T,
    /// Its derivative with respect to the prediction.
    pub dp: T,
    /// Its derivative with respect to the target.
    pub dt: T,
}

fn elem<T>(value: T, dp: T, dt: T) -> Elem<T> {
    Elem { value, dp, dt }
}

/// The loss summed over all elements and divided by `items`, with `dp` set to
/// its gradient with respect to `pred`. Writes only into `dp`: the static
/// training path's allocation-free form of a mean loss.
pub fn mean_into<T: Float>(
    op: &str,
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    mut dp: ArrayViewMutD<'_, T>,
    items: usize,
    f: impl Fn(T, T) -> Elem<T>,
) -> T {
    check_same(op, pred.shape(), target.shape());
    check_same(op, pred.shape(), dp.shape());
    let scale = T::one() / T::lit(items as f64);
    let mut total = T::zero();
    Zip::from(&mut dp)
        .and(&pred)
        .and(&target)
        .for_each(|d, &p, &t| {
            let e = f(p, t);
            total += e.value;
            *d = e.dp * scale;
        });
    total * scale
}

/// Squared error.
pub fn mse_elem<T: Float>(p: T, t: T) -> Elem<T> {
    let d = p - t;
    elem(d * d, T::lit(2.0) * d, T::lit(-2.0) * d)
}

/// Absolute error; the derivative is the sign, 0 where `p = t`.
pub fn mae_elem<T: Float>(p: T, t: T) -> Elem<T> {
    let s = sign(p - t);
    elem((p - t).abs(), s, -s)
}

/// Huber: quadratic inside `|p - t| < delta`, linear outside.
pub fn huber_elem<T: Float>(p: T, t: T, delta: T) -> Elem<T> {
    let half = T::lit(0.5);
    let d = p - t;
    let a = d.abs();
    if a < delta {
        elem(half * a * a, d, -d)
    } else {
        let g = delta * sign(d);
        elem(delta * (a - half * delta), g, -g)
    }
}

/// Binary cross-entropy on a probability, logs floored as in PyTorch.
pub fn binary_cross_entropy_elem<T: Float>(p: T, t: T) -> Elem<T> {
    let (ln_p, ln_q) = (clamped_ln(p), clamped_ln(T::one() - p));
    let denom = (p * (T::one() - p)).max(T::lit(1e-12));
    elem(
        -(t * ln_p + (T::one() - t) * ln_q),
        (p - t) / denom,
        ln_q - ln_p,
    )
}

/// Binary cross-entropy from a logit.
pub fn binary_cross_entropy_with_logits_elem<T: Float>(x: T, t: T) -> Elem<T> {
    elem(softplus(x) - x * t, sigmoid(x) - t, -x)
}

/// One term `-t ln clip(p)` of categorical cross-entropy; no gradient to `p`
/// where it was clipped.
pub fn categorical_cross_entropy_elem<T: Float>(p: T, t: T) -> Elem<T> {
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    let ln_p = clip(p, lo, hi).ln();
    let inside = p >= lo && p <= hi;
    elem(-t * ln_p, if inside { -t / p } else { T::zero() }, -ln_p)
}

/// One term `t (ln t - ln p)` of the KL divergence, 0 where `t = 0`.
pub fn kl_divergence_elem<T: Float>(p: T, t: T) -> Elem<T> {
    if t > T::zero() {
        elem(xlogx(t) - t * p.ln(), -t / p, t.ln() - p.ln() + T::one())
    } else {
        elem(T::zero(), T::zero(), T::zero())
    }
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
    df: impl Fn(T, T) -> Elem<T>,
) -> LossGrads<T> {
    let mut dp = ArrayD::zeros(pred.raw_dim());
    let mut dt = ArrayD::zeros(pred.raw_dim());
    Zip::from(&mut dp)
        .and(&mut dt)
        .and(&pred)
        .and(&target)
        .and(&dl)
        .for_each(|dp, dt, &p, &t, &g| {
            let e = df(p, t);
            *dp = g * e.dp;
            *dt = g * e.dt;
        });
    (dp, dt)
}

/// Per-sample sums of element values along `ax` (the class-wise losses).
fn lane_sums<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    ax: Axis,
    f: impl Fn(T, T) -> Elem<T>,
) -> ArrayD<T> {
    Zip::from(pred.lanes(ax))
        .and(target.lanes(ax))
        .map_collect(|p, t| p.iter().zip(t.iter()).map(|(&p, &t)| f(p, t).value).sum())
}

/// Backward of [`lane_sums`]: each element's derivatives times its sample's `dl`.
fn lane_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
    ax: Axis,
    f: impl Fn(T, T) -> Elem<T>,
) -> LossGrads<T> {
    let mut dp = ArrayD::zeros(pred.raw_dim());
    let mut dt = ArrayD::zeros(pred.raw_dim());
    Zip::from(dp.lanes_mut(ax))
        .and(dt.lanes_mut(ax))
        .and(pred.lanes(ax))
        .and(target.lanes(ax))
        .and(&dl)
        .for_each(|mut dp, mut dt, p, t, &g| {
            for i in 0..p.len() {
                let e = f(p[i], t[i]);
                dp[i] = g * e.dp;
                dt[i] = g * e.dt;
            }
        });
    (dp, dt)
}

/// Squared error `(p - t)²`.
pub fn mse<T: Float>(pred: ArrayViewD<'_, T>, target: ArrayViewD<'_, T>) -> ArrayD<T> {
    elementwise("mse", pred, target, |p, t| mse_elem(p, t).value)
}

/// Gradients of [`mse`]: `±2 (p - t)`.
pub fn mse_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(pred, target, dl, mse_elem)
}

/// Absolute error `|p - t|` (Keras MAE, PyTorch L1).
pub fn mae<T: Float>(pred: ArrayViewD<'_, T>, target: ArrayViewD<'_, T>) -> ArrayD<T> {
    elementwise("mae", pred, target, |p, t| mae_elem(p, t).value)
}

/// Gradients of [`mae`]: `±sign(p - t)`, 0 where they are equal.
pub fn mae_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(pred, target, dl, mae_elem)
}

/// Huber loss: `0.5 d²` where `|d| < delta`, else `delta (|d| - 0.5 delta)`, `d = p - t`
/// (Keras's `Huber` and PyTorch's `HuberLoss`).
pub fn huber<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    delta: f64,
) -> ArrayD<T> {
    let delta = T::lit(delta);
    elementwise("huber", pred, target, |p, t| huber_elem(p, t, delta).value)
}

/// Gradients of [`huber`]: `d` inside the quadratic zone, `delta·sign(d)` outside.
pub fn huber_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
    delta: f64,
) -> LossGrads<T> {
    let delta = T::lit(delta);
    elementwise_backward(pred, target, dl, |p, t| huber_elem(p, t, delta))
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
        binary_cross_entropy_elem(p, t).value
    })
}

/// Gradients of [`binary_cross_entropy`]: `(p - t) / max(p (1 - p), 1e-12)` (PyTorch's
/// formula) and `ln(1 - p) - ln p`.
pub fn binary_cross_entropy_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(pred, target, dl, binary_cross_entropy_elem)
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
        |x, t| binary_cross_entropy_with_logits_elem(x, t).value,
    )
}

/// Gradients of [`binary_cross_entropy_with_logits`]: `sigmoid(x) - t` and `-x`.
pub fn binary_cross_entropy_with_logits_backward<T: Float>(
    logits: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    elementwise_backward(logits, target, dl, binary_cross_entropy_with_logits_elem)
}

/// Checks a `[batch, classes]` prediction against one class label per row.
#[track_caller]
pub(crate) fn check_labels(op: &str, logits: &[usize], labels: &[usize]) {
    assert!(
        logits.len() == 2,
        "{op}: the predictions must be 2-D [batch, classes], got shape {logits:?} \
         (for a sequence, reshape to [batch · steps, classes] and flatten the labels)"
    );
    assert!(
        logits[0] == labels.len(),
        "{op}: {} labels for predictions of shape {logits:?}; one label per row",
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
    let logp = log_softmax(logits, Axis(1));
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
    let mut dx = softmax(logits, Axis(1));
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
    lane_sums(pred, target, ax, categorical_cross_entropy_elem)
}

/// Gradients of [`categorical_cross_entropy`]: `-t / p` (0 where `p` was clipped)
/// and `-ln clip(p)`.
pub fn categorical_cross_entropy_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    let ax = last_axis("categorical_cross_entropy", pred.shape());
    lane_backward(pred, target, dl, ax, categorical_cross_entropy_elem)
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

/// Mean cross-entropy from logits with integer labels; `dx` receives its
/// gradient `(softmax(x) - onehot(label)) / batch`, in the order of
/// [`cross_entropy_backward`]'s arithmetic. The exponentials are
/// [`Float::exp_fast`]'s, so the two paths agree to the bit in `f64` and
/// within an ulp per exponential ([`super::tanh::EXP_ULPS`]) in `f32`.
pub fn cross_entropy_mean_into<T: Float>(
    logits: ArrayViewD<'_, T>,
    labels: &[usize],
    mut dx: ArrayViewMutD<'_, T>,
) -> T {
    let op = "cross_entropy";
    check_labels(op, logits.shape(), labels);
    check_same(op, logits.shape(), dx.shape());
    let g = T::one() / T::lit(labels.len() as f64);
    let width = logits.shape().last().copied().unwrap_or(1);
    let total = match (logits.as_slice(), dx.as_slice_mut()) {
        (Some(z), Some(d)) if width > 0 => cross_entropy_rows(z, d, width, labels, g),
        _ => {
            // Strided: each row copied out, computed as a contiguous batch of one.
            let mut z = Vec::with_capacity(width);
            let mut d = vec![T::zero(); width];
            let mut total = T::zero();
            for ((row, mut out), &l) in logits.rows().into_iter().zip(dx.rows_mut()).zip(labels) {
                z.clear();
                z.extend(row.iter().copied());
                total += cross_entropy_rows(&z, &mut d, width, &[l], g);
                out.assign(&ndarray::aview1(&d));
            }
            total
        }
    };
    total / T::lit(labels.len() as f64)
}

/// [`cross_entropy_mean_into`] on contiguous rows `width` wide: returns the
/// summed `logsumexp(z) - z[l]` and writes each row's gradient,
/// `(softmax(z) - onehot(l)) · g`, into `d`. The exponentials run as one
/// vectorized pass over the whole batch: rows of a few classes are too
/// short to vectorize one at a time (a small batch's step spent 6 % here).
fn cross_entropy_rows<T: Float>(z: &[T], d: &mut [T], width: usize, labels: &[usize], g: T) -> T {
    let mut total = T::zero();
    for ((z, d), &l) in z
        .chunks_exact(width)
        .zip(d.chunks_exact_mut(width))
        .zip(labels)
    {
        let m = z.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
        let m = if m == T::neg_infinity() { T::zero() } else { m };
        for (d, &v) in d.iter_mut().zip(z) {
            *d = v - m;
        }
        total -= d[l];
    }
    super::simd::widest(|| {
        for v in d.iter_mut() {
            *v = v.exp_fast();
        }
    });
    for (d, &l) in d.chunks_exact_mut(width).zip(labels) {
        let sum = d.iter().fold(T::zero(), |a, &b| a + b);
        total += sum.ln();
        let inv = sum.recip();
        for d in d.iter_mut() {
            *d *= inv;
        }
        d[l] -= T::one();
        for d in d.iter_mut() {
            *d *= g;
        }
    }
    total
}

/// Mean sparse categorical cross-entropy on probabilities; `dp` receives its
/// gradient (see [`sparse_categorical_cross_entropy_backward`]).
pub fn sparse_categorical_cross_entropy_mean_into<T: Float>(
    pred: ArrayViewD<'_, T>,
    labels: &[usize],
    mut dp: ArrayViewMutD<'_, T>,
) -> T {
    let op = "sparse_categorical_cross_entropy";
    check_labels(op, pred.shape(), labels);
    check_same(op, pred.shape(), dp.shape());
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    let g = T::one() / T::lit(labels.len() as f64);
    dp.fill(T::zero());
    let mut total = T::zero();
    for ((mut d, p), &l) in dp.rows_mut().into_iter().zip(pred.rows()).zip(labels) {
        total += -clip(p[l], lo, hi).ln();
        if p[l] >= lo && p[l] <= hi {
            d[l] = -g / p[l];
        }
    }
    total / T::lit(labels.len() as f64)
}

/// For `p = softmax(z)` and integer labels: the mean sparse categorical
/// cross-entropy, with `dz` set to its gradient with respect to the logits,
/// `(p - onehot(label)) / batch`. Skips the softmax Jacobian entirely.
pub fn softmax_cross_entropy_mean_into<T: Float>(
    probs: ArrayViewD<'_, T>,
    labels: &[usize],
    mut dz: ArrayViewMutD<'_, T>,
) -> T {
    let op = "softmax_cross_entropy";
    check_labels(op, probs.shape(), labels);
    check_same(op, probs.shape(), dz.shape());
    let (lo, hi) = (T::lit(PROB_EPSILON), T::lit(1.0 - PROB_EPSILON));
    let g = T::one() / T::lit(labels.len() as f64);
    dz.assign(&probs);
    let mut total = T::zero();
    for (mut row, &l) in dz.rows_mut().into_iter().zip(labels) {
        total += -clip(row[l], lo, hi).ln();
        row[l] -= T::one();
        row.mapv_inplace(|v| v * g);
    }
    total / T::lit(labels.len() as f64)
}

/// For `p = softmax(z)` along the last axis and soft or one-hot targets `t`: the
/// mean categorical cross-entropy, with `dz` set to its gradient with respect to
/// the logits, `(p Σt - t) / samples`.
pub fn softmax_categorical_cross_entropy_mean_into<T: Float>(
    probs: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    mut dz: ArrayViewMutD<'_, T>,
) -> T {
    let op = "softmax_categorical_cross_entropy";
    check_same(op, probs.shape(), target.shape());
    check_same(op, probs.shape(), dz.shape());
    let ax = last_axis(op, probs.shape());
    let samples = T::lit((probs.len() / probs.shape()[ax.index()].max(1)) as f64);
    let mut total = T::zero();
    Zip::from(dz.lanes_mut(ax))
        .and(probs.lanes(ax))
        .and(target.lanes(ax))
        .for_each(|mut d, p, t| {
            let t_sum = t.sum();
            for i in 0..p.len() {
                total += categorical_cross_entropy_elem(p[i], t[i]).value;
                d[i] = (p[i] * t_sum - t[i]) / samples;
            }
        });
    total / samples
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
    lane_sums(pred, target, ax, kl_divergence_elem)
}

/// Gradients of [`kl_divergence`]: `-t / p` and `ln t - ln p + 1` (taken as 0 where `t = 0`).
pub fn kl_divergence_backward<T: Float>(
    pred: ArrayViewD<'_, T>,
    target: ArrayViewD<'_, T>,
    dl: ArrayViewD<'_, T>,
) -> LossGrads<T> {
    let ax = last_axis("kl_divergence", pred.shape());
    lane_backward(pred, target, dl, ax, kl_divergence_elem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, IxDyn};

    /// The definition, sample by sample: `logsumexp(z) − z[l]`, averaged;
    /// gradient `(softmax(z) − onehot(l)) / n`.
    fn reference(z: &Array2<f64>, labels: &[usize]) -> (f64, Array2<f64>) {
        let n = labels.len() as f64;
        let mut grad = Array2::zeros(z.raw_dim());
        let mut total = 0.0;
        for (i, &l) in labels.iter().enumerate() {
            let lse = z.row(i).iter().map(|v| v.exp()).sum::<f64>().ln();
            total += lse - z[[i, l]];
            for j in 0..z.ncols() {
                grad[[i, j]] = ((z[[i, j]] - lse).exp() - f64::from(u8::from(j == l))) / n;
            }
        }
        (total / n, grad)
    }

    #[test]
    fn labels_that_do_not_fit_the_predictions_say_why() {
        let message = |shape: &[usize], labels: &'static [usize]| {
            let z = ndarray::ArrayD::<f64>::zeros(IxDyn(shape));
            let e = std::panic::catch_unwind(|| cross_entropy(z.view(), labels)).unwrap_err();
            e.downcast_ref::<String>().cloned().unwrap()
        };
        let e = message(&[2, 3, 4], &[0, 1]);
        assert!(
            e.contains("must be 2-D [batch, classes], got shape [2, 3, 4]"),
            "{e}"
        );
        let e = message(&[3, 4], &[0, 1]);
        assert!(
            e.contains("2 labels for predictions of shape [3, 4]"),
            "{e}"
        );
        let e = message(&[2, 4], &[0, 4]);
        assert!(e.contains("label 4 is out of range for 4 classes"), "{e}");
    }

    #[test]
    fn cross_entropy_is_its_definition_on_contiguous_and_strided_batches() {
        let z = Array2::from_shape_fn((3, 5), |(i, j)| ((i * 5 + j) as f64 * 0.7).sin() * 3.0);
        let labels = [2, 0, 4];
        let (want, want_grad) = reference(&z, &labels);

        let mut d = ArrayD::zeros(IxDyn(&[3, 5]));
        let got = cross_entropy_mean_into(z.view().into_dyn(), &labels, d.view_mut());
        assert!((got - want).abs() < 1e-12, "{got} against {want}");
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(
            close(d.as_slice().unwrap(), want_grad.as_slice().unwrap()),
            "{d}"
        );

        // Column-major logits and gradient: the rows are not slices.
        let zt = z.t().to_owned();
        let mut dt = Array2::zeros((5, 3));
        let mut d = dt.view_mut();
        d.swap_axes(0, 1);
        let got = cross_entropy_mean_into(zt.t().into_dyn(), &labels, d.into_dyn());
        assert!((got - want).abs() < 1e-12, "{got} against {want}");
        let back: Vec<f64> = dt.t().iter().copied().collect();
        assert!(close(&back, want_grad.as_slice().unwrap()), "{dt}");
    }

    #[test]
    fn cross_entropy_in_f32_is_the_definition_to_f32_rounding() {
        // Batches past a vector's width, so the exponentials' vector loop
        // and its tail both run; the reference is the definition in f64.
        let z = Array2::from_shape_fn((7, 10), |(i, j)| ((i * 10 + j) as f64 * 0.37).cos() * 4.0);
        let labels = [0, 9, 3, 3, 5, 1, 8];
        let (want, want_grad) = reference(&z, &labels);
        let z32 = z.mapv(|v| v as f32);
        let mut d = ArrayD::<f32>::zeros(IxDyn(&[7, 10]));
        let got = cross_entropy_mean_into(z32.view().into_dyn(), &labels, d.view_mut());
        // exp_fast is within EXP_ULPS (1) of e^x: a few f32 roundings in all.
        assert!(
            (f64::from(got) - want).abs() < 1e-6 * want.abs().max(1.0),
            "{got} against {want}"
        );
        for (g, w) in d.iter().zip(&want_grad) {
            assert!((f64::from(*g) - w).abs() < 1e-7, "{g} against {w}");
        }
    }
}
