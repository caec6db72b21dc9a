//! Loss functions on the tape, with `mean`, `sum` or `none` reduction.
//!
//! ```
//! use nn_core::loss::{cross_entropy, Reduction};
//! use nn_core::tape::Tape;
//! use ndarray::array;
//!
//! let tape = Tape::<f64>::new();
//! let logits = tape.var(array![[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]);
//! let loss = cross_entropy(&logits, &[0, 2], Reduction::Mean);
//! loss.backward();
//! // each row's gradient is (softmax - onehot) / batch, so it sums to zero
//! let g = logits.grad().unwrap();
//! assert!(g.sum().abs() < 1e-12);
//! ```
//!
//! Element-wise losses (MSE, MAE, Huber, binary cross-entropy) with
//! `Reduction::None` give one value per element, as in PyTorch; cross-entropy,
//! categorical cross-entropy and KL divergence give one value per sample.
//! Gradients flow to the target too when it requires one.

use ndarray::{ArrayD, ArrayViewD};

use crate::kernels::loss::{self as k, LossGrads};
use crate::tape::{Op, Var};
use crate::Float;

/// How per-element (or per-sample) losses become the result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The average (the default, as in Keras and PyTorch).
    #[default]
    Mean,
    /// The total.
    Sum,
    /// No reduction: one value per element or sample.
    None,
}

#[track_caller]
fn reduce<T: Float>(losses: Var<T>, reduction: Reduction) -> Var<T> {
    assert!(
        reduction != Reduction::Mean || losses.shape().iter().product::<usize>() > 0,
        "loss: the mean over an empty batch is undefined (shape {:?})",
        losses.shape()
    );
    match reduction {
        Reduction::Mean => losses.mean(),
        Reduction::Sum => losses.sum(),
        Reduction::None => losses,
    }
}

type PairBackward<T> =
    Box<dyn Fn(ArrayViewD<'_, T>, ArrayViewD<'_, T>, ArrayViewD<'_, T>) -> LossGrads<T>>;

/// A loss of a prediction and a target, both differentiable.
struct PairLoss<T: Float> {
    name: &'static str,
    backward: PairBackward<T>,
}

impl<T: Float> Op<T> for PairLoss<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let (dp, dt) = (self.backward)(x[0].view(), x[1].view(), dy.view());
        vec![Some(dp), Some(dt)]
    }
}

fn pair<T: Float>(
    name: &'static str,
    pred: &Var<T>,
    target: &Var<T>,
    forward: impl FnOnce(ArrayViewD<'_, T>, ArrayViewD<'_, T>) -> ArrayD<T>,
    backward: PairBackward<T>,
) -> Var<T> {
    pred.tape().record(&[pred, target], |v| {
        (
            forward(v[0].view(), v[1].view()),
            PairLoss { name, backward },
        )
    })
}

/// Mean squared error (`(p - t)²` per element).
#[track_caller]
pub fn mse<T: Float>(pred: &Var<T>, target: &Var<T>, reduction: Reduction) -> Var<T> {
    reduce(
        pair("mse", pred, target, k::mse, Box::new(k::mse_backward)),
        reduction,
    )
}

/// Mean absolute error, PyTorch's L1 loss (`|p - t|` per element).
#[track_caller]
pub fn mae<T: Float>(pred: &Var<T>, target: &Var<T>, reduction: Reduction) -> Var<T> {
    reduce(
        pair("mae", pred, target, k::mae, Box::new(k::mae_backward)),
        reduction,
    )
}

/// Huber loss with threshold `delta` (Keras's default is 1.0).
#[track_caller]
pub fn huber<T: Float>(pred: &Var<T>, target: &Var<T>, delta: f64, reduction: Reduction) -> Var<T> {
    assert!(delta > 0.0, "huber: delta must be positive, got {delta}");
    let losses = pair(
        "huber",
        pred,
        target,
        |p, t| k::huber(p, t, delta),
        Box::new(move |p, t, g| k::huber_backward(p, t, g, delta)),
    );
    reduce(losses, reduction)
}

/// Binary cross-entropy on probabilities in `[0, 1]` (logs floored at -100, as
/// in PyTorch). Prefer [`binary_cross_entropy_with_logits`] when you have logits.
#[track_caller]
pub fn binary_cross_entropy<T: Float>(
    pred: &Var<T>,
    target: &Var<T>,
    reduction: Reduction,
) -> Var<T> {
    let losses = pair(
        "binary_cross_entropy",
        pred,
        target,
        k::binary_cross_entropy,
        Box::new(k::binary_cross_entropy_backward),
    );
    reduce(losses, reduction)
}

/// Binary cross-entropy from logits, stable for any magnitude.
#[track_caller]
pub fn binary_cross_entropy_with_logits<T: Float>(
    logits: &Var<T>,
    target: &Var<T>,
    reduction: Reduction,
) -> Var<T> {
    let losses = pair(
        "binary_cross_entropy_with_logits",
        logits,
        target,
        k::binary_cross_entropy_with_logits,
        Box::new(k::binary_cross_entropy_with_logits_backward),
    );
    reduce(losses, reduction)
}

/// Categorical cross-entropy on probabilities along the last axis, with one-hot
/// or soft targets (Keras's `categorical_crossentropy`; probabilities clipped to
/// `[1e-7, 1 - 1e-7]`). Prefer [`cross_entropy`] on logits.
#[track_caller]
pub fn categorical_cross_entropy<T: Float>(
    pred: &Var<T>,
    target: &Var<T>,
    reduction: Reduction,
) -> Var<T> {
    let losses = pair(
        "categorical_cross_entropy",
        pred,
        target,
        k::categorical_cross_entropy,
        Box::new(k::categorical_cross_entropy_backward),
    );
    reduce(losses, reduction)
}

/// KL divergence `Σ t (ln t - ln p)` along the last axis, on probabilities; with
/// `Reduction::Mean`, averaged over samples (PyTorch's `"batchmean"`, Keras's default).
#[track_caller]
pub fn kl_divergence<T: Float>(pred: &Var<T>, target: &Var<T>, reduction: Reduction) -> Var<T> {
    let losses = pair(
        "kl_divergence",
        pred,
        target,
        k::kl_divergence,
        Box::new(k::kl_divergence_backward),
    );
    reduce(losses, reduction)
}

struct CrossEntropy(Vec<usize>);

unary_op!(CrossEntropy, |op| "cross_entropy", |x, _y, dy| {
    k::cross_entropy_backward(x.view(), &op.0, dy.view())
});

/// Cross-entropy from logits `[batch, classes]` and integer class labels: a fused,
/// max-shifted log-softmax, finite for any logits (PyTorch's `F.cross_entropy`,
/// Keras's `sparse_categorical_crossentropy(from_logits=True)`).
///
/// # Panics
/// If the logits are not 2-D `[batch, classes]`, there is not one label per
/// row, or a label is not a valid class (at the caller's line).
#[track_caller]
pub fn cross_entropy<T: Float>(logits: &Var<T>, labels: &[usize], reduction: Reduction) -> Var<T> {
    // Here, so that a misuse is reported at the caller's line.
    k::check_labels("cross_entropy", &logits.shape(), labels);
    let labels = labels.to_vec();
    let losses = logits.tape().record(&[logits], |v| {
        (k::cross_entropy(v[0].view(), &labels), CrossEntropy(labels))
    });
    reduce(losses, reduction)
}

/// [`cross_entropy`] over the rows whose label is not `ignore_index`
/// (PyTorch's `F.cross_entropy(..., ignore_index=i)`: padding in a batch of
/// sequences). Ignored rows add 0 and no gradient, whatever their logits;
/// `Reduction::Mean` averages over the rows kept, and is NaN (with no
/// gradient) when every row is ignored, as in PyTorch. `ignore_index` need
/// not be a valid class (`usize::MAX` works).
///
/// ```
/// use nn_core::loss::{cross_entropy, cross_entropy_ignoring, Reduction};
/// use nn_core::tape::Tape;
/// use ndarray::array;
///
/// let tape = Tape::<f64>::new();
/// let logits = tape.var(array![[2.0, 0.5], [0.1, 0.2], [1.0, -1.0]].into_dyn());
/// let padded = cross_entropy_ignoring(&logits, &[0, 9, 1], 9, Reduction::Mean);
/// let kept = tape.var(array![[2.0, 0.5], [1.0, -1.0]].into_dyn());
/// let want = cross_entropy(&kept, &[0, 1], Reduction::Mean);
/// assert!((padded.item() - want.item()).abs() < 1e-15);
/// ```
///
/// # Panics
/// As [`cross_entropy`], for the labels kept.
#[track_caller]
pub fn cross_entropy_ignoring<T: Float>(
    logits: &Var<T>,
    labels: &[usize],
    ignore_index: usize,
    reduction: Reduction,
) -> Var<T> {
    let shape = logits.shape();
    assert!(
        shape.len() == 2 && shape[0] == labels.len(),
        "cross_entropy_ignoring: {} labels for predictions of shape {shape:?}; the predictions \
         must be [batch, classes], one label per row",
        labels.len()
    );
    // The rows kept, scored alone: an ignored row never enters the sums
    // (its logits may be anything, −∞ included).
    let kept: Vec<usize> = (0..labels.len())
        .filter(|&r| labels[r] != ignore_index)
        .collect();
    let tape = logits.tape();
    if kept.is_empty() {
        // PyTorch: every row 0, a sum of 0, a NaN mean; no gradient.
        let nothing = logits.slice(0usize, 0..0).sum();
        return match reduction {
            Reduction::None => {
                &tape.constant(ArrayD::zeros(ndarray::IxDyn(&[labels.len()]))) + &nothing
            }
            Reduction::Sum => nothing,
            Reduction::Mean => nothing * T::lit(f64::NAN),
        };
    }
    let kept_labels: Vec<usize> = kept.iter().map(|&r| labels[r]).collect();
    let losses = cross_entropy(
        &logits.index_select(0usize, &kept),
        &kept_labels,
        Reduction::None,
    );
    match reduction {
        Reduction::Sum => losses.sum(),
        Reduction::Mean => losses.mean(),
        Reduction::None => {
            // Back in place, 0 for an ignored row: each row picks its loss,
            // or the 0 appended after them.
            let zero = tape.constant(ArrayD::zeros(ndarray::IxDyn(&[1])));
            let mut next = 0;
            let place: Vec<usize> = labels
                .iter()
                .map(|&l| match l == ignore_index {
                    true => kept.len(),
                    false => {
                        next += 1;
                        next - 1
                    }
                })
                .collect();
            Var::concat(&[&losses, &zero], 0usize).index_select(0usize, &place)
        }
    }
}

struct SparseCategoricalCrossEntropy(Vec<usize>);

unary_op!(
    SparseCategoricalCrossEntropy,
    |op| "sparse_categorical_cross_entropy",
    |x, _y, dy| k::sparse_categorical_cross_entropy_backward(x.view(), &op.0, dy.view(),)
);

/// Categorical cross-entropy on probabilities `[batch, classes]` with integer
/// labels (Keras's `sparse_categorical_crossentropy` after a softmax;
/// probabilities clipped to `[1e-7, 1 - 1e-7]`).
#[track_caller]
pub fn sparse_categorical_cross_entropy<T: Float>(
    pred: &Var<T>,
    labels: &[usize],
    reduction: Reduction,
) -> Var<T> {
    k::check_labels("sparse_categorical_cross_entropy", &pred.shape(), labels);
    let labels = labels.to_vec();
    let losses = pred.tape().record(&[pred], |v| {
        (
            k::sparse_categorical_cross_entropy(v[0].view(), &labels),
            SparseCategoricalCrossEntropy(labels),
        )
    });
    reduce(losses, reduction)
}

/// What a loss compares the prediction with.
#[derive(Clone, Debug)]
pub enum Target<'a, T: Float> {
    /// One integer class per sample.
    Labels(&'a [usize]),
    /// Values of the prediction's shape (one-hot rows, probabilities, regression targets).
    Values(ArrayViewD<'a, T>),
}

impl<T: Float> Target<'_, T> {
    /// The labels, for a loss on integer classes.
    ///
    /// # Panics
    /// If the target holds values.
    pub fn labels(&self) -> &[usize] {
        match self {
            Target::Labels(l) => l,
            Target::Values(v) => panic!(
                "Target::labels: the target holds values of shape {:?}, not labels",
                v.shape()
            ),
        }
    }

    /// The target as a constant on `tape`: the values, or one-hot rows of
    /// `classes` columns for labels (for a loss written on the tape).
    #[track_caller]
    pub fn to_var(&self, tape: &crate::Tape<T>, classes: usize) -> Var<T> {
        match self {
            Target::Values(v) => tape.constant(v.to_owned()),
            Target::Labels(l) => {
                let mut rows = ndarray::Array2::zeros((l.len(), classes));
                for (i, &c) in l.iter().enumerate() {
                    assert!(
                        c < classes,
                        "Target::to_var: label {c} of sample {i} is not below {classes}"
                    );
                    rows[[i, c]] = T::one();
                }
                tape.constant(rows)
            }
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Target::Labels(l) => l.len(),
            Target::Values(v) => v.shape().first().copied().unwrap_or(0),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A loss chosen by value, like Keras's `compile(loss=...)`: the training loop
/// and the models' static path use it on arrays, research code on the tape.
/// Reduction is the mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// [`cross_entropy`]: logits and integer labels.
    CrossEntropy,
    /// [`sparse_categorical_cross_entropy`]: probabilities and integer labels.
    SparseCategoricalCrossEntropy,
    /// [`categorical_cross_entropy`]: probabilities and one-hot or soft targets.
    CategoricalCrossEntropy,
    /// [`binary_cross_entropy`].
    BinaryCrossEntropy,
    /// [`binary_cross_entropy_with_logits`].
    BinaryCrossEntropyWithLogits,
    /// [`mse`].
    Mse,
    /// [`mae`].
    Mae,
    /// [`huber`] with the given delta.
    Huber {
        /// Threshold between the quadratic and linear zones.
        delta: f64,
    },
    /// [`kl_divergence`].
    KlDivergence,
}

fn expect_labels<'a, T: Float>(loss: Loss, target: &Target<'a, T>) -> &'a [usize] {
    match target {
        Target::Labels(l) => l,
        Target::Values(_) => panic!("{loss:?}: expected integer labels as the target"),
    }
}

fn expect_values<'a, T: Float>(loss: Loss, target: &Target<'a, T>) -> ArrayViewD<'a, T> {
    match target {
        Target::Values(v) => v.clone(),
        Target::Labels(_) => panic!("{loss:?}: expected target values, not labels"),
    }
}

impl Loss {
    /// The name the loss's kernels use in their panics.
    fn kernel_name(&self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::SparseCategoricalCrossEntropy => "sparse_categorical_cross_entropy",
            Loss::CategoricalCrossEntropy => "categorical_cross_entropy",
            Loss::BinaryCrossEntropy => "binary_cross_entropy",
            Loss::BinaryCrossEntropyWithLogits => "binary_cross_entropy_with_logits",
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
            Loss::KlDivergence => "kl_divergence",
        }
    }

    /// Keras's name of the loss (`"sparse_categorical_crossentropy"`, `"mse"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::SparseCategoricalCrossEntropy => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossEntropy => "categorical_crossentropy",
            Loss::BinaryCrossEntropy => "binary_crossentropy",
            Loss::BinaryCrossEntropyWithLogits => "binary_crossentropy_with_logits",
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::Huber { .. } => "huber",
            Loss::KlDivergence => "kl_divergence",
        }
    }

    /// Whether the loss compares with integer class labels (else with values).
    pub fn takes_labels(&self) -> bool {
        matches!(
            self,
            Loss::CrossEntropy | Loss::SparseCategoricalCrossEntropy
        )
    }

    /// Whether the loss is a classification loss (Keras reports accuracy for these).
    pub fn is_classification(&self) -> bool {
        !matches!(self, Loss::Mse | Loss::Mae | Loss::Huber { .. })
    }

    /// Whether, after a softmax output, this loss's gradient with respect to the
    /// logits is the fused `p - y` (categorical cross-entropies).
    pub fn fuses_with_softmax(&self) -> bool {
        matches!(
            self,
            Loss::SparseCategoricalCrossEntropy | Loss::CategoricalCrossEntropy
        )
    }

    /// The mean loss of `pred` against `target`, and its gradient with respect to `pred`.
    pub fn value_and_grad<T: Float>(
        &self,
        pred: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
    ) -> (T, ArrayD<T>) {
        let mut grad = ArrayD::zeros(pred.raw_dim());
        let value = self.value_and_grad_into(pred, target, &mut grad);
        (value, grad)
    }

    /// [`Loss::value_and_grad`] writing the gradient into `grad`, which is
    /// reshaped only if its shape differs: allocation-free once warmed up.
    pub fn value_and_grad_into<T: Float>(
        &self,
        pred: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        grad: &mut ArrayD<T>,
    ) -> T {
        assert!(
            !pred.is_empty(),
            "{}: the mean over an empty batch is undefined (prediction of shape {:?})",
            self.kernel_name(),
            pred.shape()
        );
        crate::layers::ensure_shape(grad, pred.shape());
        let g = grad.view_mut();
        // Per-sample losses average over all axes but the last.
        let samples = pred.len() / pred.shape().last().copied().unwrap_or(1).max(1);
        let elements = pred.len();
        match *self {
            Loss::CrossEntropy => k::cross_entropy_mean_into(pred, expect_labels(*self, target), g),
            Loss::SparseCategoricalCrossEntropy => {
                let labels = expect_labels(*self, target);
                k::sparse_categorical_cross_entropy_mean_into(pred, labels, g)
            }
            _ => {
                let t = expect_values(*self, target);
                let op = self.kernel_name();
                match *self {
                    Loss::CategoricalCrossEntropy => {
                        k::mean_into(op, pred, t, g, samples, k::categorical_cross_entropy_elem)
                    }
                    Loss::KlDivergence => {
                        k::mean_into(op, pred, t, g, samples, k::kl_divergence_elem)
                    }
                    Loss::BinaryCrossEntropy => {
                        k::mean_into(op, pred, t, g, elements, k::binary_cross_entropy_elem)
                    }
                    Loss::BinaryCrossEntropyWithLogits => k::mean_into(
                        op,
                        pred,
                        t,
                        g,
                        elements,
                        k::binary_cross_entropy_with_logits_elem,
                    ),
                    Loss::Mse => k::mean_into(op, pred, t, g, elements, k::mse_elem),
                    Loss::Mae => k::mean_into(op, pred, t, g, elements, k::mae_elem),
                    Loss::Huber { delta } => {
                        let delta = T::lit(delta);
                        k::mean_into(op, pred, t, g, elements, |p, t| k::huber_elem(p, t, delta))
                    }
                    Loss::CrossEntropy | Loss::SparseCategoricalCrossEntropy => unreachable!(),
                }
            }
        }
    }

    /// For a prediction `probs = softmax(z)`: the mean loss and its gradient with
    /// respect to the logits `z`, fused as `(p - y) / batch`.
    ///
    /// # Panics
    /// If the loss does not [fuse with softmax](Loss::fuses_with_softmax).
    pub fn softmax_fused<T: Float>(
        &self,
        probs: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
    ) -> (T, ArrayD<T>) {
        let mut grad = ArrayD::zeros(probs.raw_dim());
        let value = self.softmax_fused_into(probs, target, &mut grad);
        (value, grad)
    }

    /// [`Loss::softmax_fused`] writing the gradient into `grad`, which is
    /// reshaped only if its shape differs: allocation-free once warmed up.
    ///
    /// # Panics
    /// If the loss does not [fuse with softmax](Loss::fuses_with_softmax).
    pub fn softmax_fused_into<T: Float>(
        &self,
        probs: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        grad: &mut ArrayD<T>,
    ) -> T {
        assert!(
            self.fuses_with_softmax(),
            "{self:?} does not fuse with softmax"
        );
        crate::layers::ensure_shape(grad, probs.shape());
        match target {
            Target::Labels(labels) => {
                k::softmax_cross_entropy_mean_into(probs, labels, grad.view_mut())
            }
            Target::Values(t) => {
                k::softmax_categorical_cross_entropy_mean_into(probs, t.view(), grad.view_mut())
            }
        }
    }

    /// The same loss on the tape (mean reduction).
    #[track_caller]
    pub fn apply<T: Float>(&self, pred: &Var<T>, target: &Target<'_, T>) -> Var<T> {
        let r = Reduction::Mean;
        let values = || {
            pred.tape()
                .constant(expect_values(*self, target).to_owned())
        };
        match *self {
            Loss::CrossEntropy => cross_entropy(pred, expect_labels(*self, target), r),
            Loss::SparseCategoricalCrossEntropy => {
                sparse_categorical_cross_entropy(pred, expect_labels(*self, target), r)
            }
            Loss::CategoricalCrossEntropy => categorical_cross_entropy(pred, &values(), r),
            Loss::BinaryCrossEntropy => binary_cross_entropy(pred, &values(), r),
            Loss::BinaryCrossEntropyWithLogits => {
                binary_cross_entropy_with_logits(pred, &values(), r)
            }
            Loss::Mse => mse(pred, &values(), r),
            Loss::Mae => mae(pred, &values(), r),
            Loss::Huber { delta } => huber(pred, &values(), delta, r),
            Loss::KlDivergence => kl_divergence(pred, &values(), r),
        }
    }
}

crate::instances!(fn mse, mae, huber, binary_cross_entropy, binary_cross_entropy_with_logits, categorical_cross_entropy, kl_divergence, cross_entropy, sparse_categorical_cross_entropy);
