//! Metrics: what [`fit`](super::fit) reports beside the loss, batch by batch
//! and per epoch, under Keras's names ([`Accuracy`], [`BinaryAccuracy`], [`TopKAccuracy`],
//! [`MeanAbsoluteError`], [`MeanSquaredError`], [`RootMeanSquaredError`]) —
//! and your own, by implementing [`Metric`].

use nn_core::loss::{Loss, Target};
use nn_core::ndarray::{ArrayView1, ArrayViewD, Axis};
use nn_core::Float;

/// A metric accumulated over the batches of an epoch, as Keras's stateful
/// metrics: [`Metric::reset`] at the start, [`Metric::update`] per batch,
/// [`Metric::result`] at any time.
///
/// ```
/// use nn::prelude::*;
/// use nn::train::Metric;
/// use nn::ndarray::ArrayViewD;
///
/// /// The largest absolute error seen.
/// #[derive(Default)]
/// struct MaxError(f64);
///
/// impl Metric<f32> for MaxError {
///     fn name(&self) -> &str { "max_error" }
///     fn reset(&mut self) { self.0 = 0.0 }
///     fn update(&mut self, pred: ArrayViewD<'_, f32>, target: &Target<'_, f32>) {
///         let Target::Values(t) = target else { return };
///         for (p, t) in pred.iter().zip(t.iter()) {
///             self.0 = self.0.max(f64::from((p - t).abs()));
///         }
///     }
///     fn result(&self) -> f64 { self.0 }
/// }
/// ```
pub trait Metric<T: Float> {
    /// The name in logs, History and callbacks (`val_` is prefixed for validation).
    fn name(&self) -> &str;

    /// Forgets everything seen (called at the start of each epoch and of validation).
    fn reset(&mut self);

    /// Adds one batch's predictions (the model's outputs) and targets.
    fn update(&mut self, pred: ArrayViewD<'_, T>, target: &Target<'_, T>);

    /// The value over everything seen since the last reset.
    fn result(&self) -> f64;

    /// The running sums the result is made from (counts, sums), for adding
    /// up over the ranks of a data-parallel run; empty (the default) when
    /// they cannot be added, and the ranks' results are then averaged,
    /// weighted by their samples.
    fn totals(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Replaces the running sums by `totals` (the ranks' [`Metric::totals`]
    /// added up).
    fn set_totals(&mut self, _totals: &[f64]) {}
}

/// The index of the largest value (the first of ties).
fn argmax<T: Float>(row: ArrayView1<'_, T>) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, T::neg_infinity()),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        )
        .0
}

/// Correct predictions in a batch, as Keras's `accuracy` chooses: the arg-max
/// class against integer labels or one-hot rows; for a single output, the
/// output above `threshold` against the target above 0.5.
pub fn count_correct<T: Float>(
    out: ArrayViewD<'_, T>,
    target: &Target<'_, T>,
    threshold: f64,
) -> usize {
    let last = Axis(out.ndim() - 1);
    match target {
        Target::Labels(labels) => out
            .lanes(last)
            .into_iter()
            .zip(labels.iter())
            .filter(|(r, &l)| argmax(r.view()) == l)
            .count(),
        Target::Values(t) if out.shape()[out.ndim() - 1] > 1 => out
            .lanes(last)
            .into_iter()
            .zip(t.lanes(last))
            .filter(|(r, tr)| argmax(r.view()) == argmax(tr.view()))
            .count(),
        Target::Values(t) => {
            let cut = T::lit(threshold);
            out.iter()
                .zip(t.iter())
                .filter(|(&o, &y)| (o > cut) == (y > T::lit(0.5)))
                .count()
        }
    }
}

/// Right answers out of those seen: what the accuracies add up, batch by
/// batch and over the ranks of a data-parallel run.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    correct: usize,
    seen: usize,
}

impl Tally {
    fn add(&mut self, correct: usize, seen: usize) {
        self.correct += correct;
        self.seen += seen;
    }
    fn result(&self) -> f64 {
        self.correct as f64 / self.seen.max(1) as f64
    }
    fn totals(&self) -> Vec<f64> {
        vec![self.correct as f64, self.seen as f64]
    }
    fn from_totals(totals: &[f64]) -> Self {
        Tally {
            correct: totals[0] as usize,
            seen: totals[1] as usize,
        }
    }
}

/// Keras's `accuracy`: the share of samples whose arg-max class is the
/// label (or the one-hot row's); for one output per sample, whether the
/// output is above the threshold (0.5 for probabilities, 0 for logits) as
/// the target is above 0.5. As in Keras 3, several outputs against rows of
/// values are compared by arg-max even under a binary cross-entropy: for
/// multi-label targets, where several outputs may be on, use
/// [`BinaryAccuracy`].
#[derive(Clone, Debug)]
pub struct Accuracy {
    threshold: f64,
    tally: Tally,
}

impl Default for Accuracy {
    fn default() -> Self {
        Accuracy::new()
    }
}

impl Accuracy {
    /// Accuracy on probabilities (binary threshold 0.5).
    pub fn new() -> Self {
        Accuracy {
            threshold: 0.5,
            tally: Tally::default(),
        }
    }

    /// Accuracy on logits (binary threshold 0).
    pub fn from_logits() -> Self {
        Accuracy {
            threshold: 0.0,
            ..Accuracy::new()
        }
    }

    /// The accuracy that suits `loss` (Keras's `metrics=["accuracy"]`).
    pub fn for_loss(loss: Loss) -> Self {
        if matches!(loss, Loss::BinaryCrossEntropyWithLogits) {
            Accuracy::from_logits()
        } else {
            Accuracy::new()
        }
    }
}

impl<T: Float> Metric<T> for Accuracy {
    fn name(&self) -> &str {
        "accuracy"
    }
    fn reset(&mut self) {
        self.tally = Tally::default();
    }
    fn update(&mut self, pred: ArrayViewD<'_, T>, target: &Target<'_, T>) {
        let seen = match target {
            Target::Values(t) if pred.shape()[pred.ndim() - 1] == 1 => t.len(),
            _ => pred.len() / pred.shape()[pred.ndim() - 1].max(1),
        };
        self.tally
            .add(count_correct(pred.view(), target, self.threshold), seen);
    }
    fn result(&self) -> f64 {
        self.tally.result()
    }
    fn totals(&self) -> Vec<f64> {
        self.tally.totals()
    }
    fn set_totals(&mut self, totals: &[f64]) {
        self.tally = Tally::from_totals(totals);
    }
}

/// Keras's `binary_accuracy`: the share of outputs on the same side of the
/// threshold (0.5 for probabilities, 0 for logits) as their targets are of
/// 0.5, every output counted on its own — the accuracy of multi-label
/// outputs. Against integer labels, a single output per sample is compared
/// with label 1.
#[derive(Clone, Debug)]
pub struct BinaryAccuracy {
    threshold: f64,
    tally: Tally,
}

impl Default for BinaryAccuracy {
    fn default() -> Self {
        BinaryAccuracy::new()
    }
}

impl BinaryAccuracy {
    /// On probabilities (threshold 0.5).
    pub fn new() -> Self {
        BinaryAccuracy {
            threshold: 0.5,
            tally: Tally::default(),
        }
    }

    /// On logits (threshold 0).
    pub fn from_logits() -> Self {
        BinaryAccuracy {
            threshold: 0.0,
            ..BinaryAccuracy::new()
        }
    }
}

impl<T: Float> Metric<T> for BinaryAccuracy {
    fn name(&self) -> &str {
        "binary_accuracy"
    }
    fn reset(&mut self) {
        self.tally = Tally::default();
    }
    fn update(&mut self, pred: ArrayViewD<'_, T>, target: &Target<'_, T>) {
        let cut = T::lit(self.threshold);
        match target {
            Target::Values(t) => {
                assert_eq!(
                    pred.shape(),
                    t.shape(),
                    "binary_accuracy: outputs {:?} against targets {:?}",
                    pred.shape(),
                    t.shape()
                );
                let correct = pred
                    .iter()
                    .zip(t.iter())
                    .filter(|(&p, &y)| (p > cut) == (y > T::lit(0.5)))
                    .count();
                self.tally.add(correct, pred.len());
            }
            Target::Labels(labels) => {
                assert!(
                    pred.len() == labels.len(),
                    "binary_accuracy: {} outputs for {} labels (one output per sample, \
                     compared with label 1; for classes, use Accuracy)",
                    pred.len(),
                    labels.len()
                );
                let correct = pred
                    .iter()
                    .zip(labels.iter())
                    .filter(|(&p, &l)| (p > cut) == (l == 1))
                    .count();
                self.tally.add(correct, labels.len());
            }
        }
    }
    fn result(&self) -> f64 {
        self.tally.result()
    }
    fn totals(&self) -> Vec<f64> {
        self.tally.totals()
    }
    fn set_totals(&mut self, totals: &[f64]) {
        self.tally = Tally::from_totals(totals);
    }
}

/// Whether the target class is among the `k` highest scores (Keras's
/// `top_k_categorical_accuracy`, sparse or one-hot): ties count in the
/// target's favour, as `tf.math.in_top_k` does.
#[derive(Clone, Debug)]
pub struct TopKAccuracy {
    k: usize,
    name: String,
    tally: Tally,
}

impl TopKAccuracy {
    /// Top-`k` accuracy, named `top_{k}_accuracy`.
    pub fn new(k: usize) -> Self {
        assert!(k > 0, "TopKAccuracy: k must be positive");
        TopKAccuracy {
            k,
            name: format!("top_{k}_accuracy"),
            tally: Tally::default(),
        }
    }
}

impl<T: Float> Metric<T> for TopKAccuracy {
    fn name(&self) -> &str {
        &self.name
    }
    fn reset(&mut self) {
        self.tally = Tally::default();
    }
    fn update(&mut self, pred: ArrayViewD<'_, T>, target: &Target<'_, T>) {
        let last = Axis(pred.ndim() - 1);
        let in_top_k = |row: ArrayView1<'_, T>, class: usize| {
            let score = row[class];
            row.iter().filter(|&&v| v > score).count() < self.k
        };
        let rows = pred.lanes(last).into_iter();
        let correct = match target {
            Target::Labels(labels) => rows
                .zip(labels.iter())
                .filter(|(row, &class)| in_top_k(row.view(), class))
                .count(),
            Target::Values(t) => rows
                .zip(t.lanes(last))
                .filter(|(row, t_row)| in_top_k(row.view(), argmax(t_row.view())))
                .count(),
        };
        self.tally
            .add(correct, pred.len() / pred.shape()[pred.ndim() - 1].max(1));
    }
    fn result(&self) -> f64 {
        self.tally.result()
    }
    fn totals(&self) -> Vec<f64> {
        self.tally.totals()
    }
    fn set_totals(&mut self, totals: &[f64]) {
        self.tally = Tally::from_totals(totals);
    }
}

/// A mean over every element of `f(prediction, target)`.
#[derive(Clone, Debug, Default)]
struct ElementMean {
    sum: f64,
    count: usize,
}

impl ElementMean {
    fn update<T: Float>(
        &mut self,
        metric: &str,
        pred: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        f: impl Fn(f64) -> f64,
    ) {
        let Target::Values(t) = target else {
            panic!("{metric}: needs target values, not labels");
        };
        assert!(
            pred.shape() == t.shape(),
            "{metric}: prediction {:?} and target {:?} differ in shape",
            pred.shape(),
            t.shape()
        );
        for (&p, &y) in pred.iter().zip(t.iter()) {
            self.sum += f(p.as_f64() - y.as_f64());
        }
        self.count += pred.len();
    }

    fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }
}

macro_rules! element_metric {
    ($(#[$doc:meta])* $name:ident, $keras:literal, |$d:ident| $f:expr, |$m:ident| $result:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $name(ElementMean);

        impl<T: Float> Metric<T> for $name {
            fn name(&self) -> &str {
                $keras
            }
            fn reset(&mut self) {
                self.0 = ElementMean::default();
            }
            fn update(&mut self, pred: ArrayViewD<'_, T>, target: &Target<'_, T>) {
                self.0.update($keras, pred, target, |$d| $f);
            }
            fn result(&self) -> f64 {
                let $m = self.0.mean();
                $result
            }
            fn totals(&self) -> Vec<f64> {
                vec![self.0.sum, self.0.count as f64]
            }
            fn set_totals(&mut self, totals: &[f64]) {
                self.0 = ElementMean { sum: totals[0], count: totals[1] as usize };
            }
        }
    };
}

element_metric!(
    /// Mean absolute error over every element (Keras's `mae`).
    MeanAbsoluteError, "mae", |d| d.abs(), |m| m
);
element_metric!(
    /// Mean squared error over every element (Keras's `mse`).
    MeanSquaredError, "mse", |d| d * d, |m| m
);
element_metric!(
    /// The square root of the mean squared error over the epoch (Keras's `rmse`,
    /// not the mean of per-batch roots).
    RootMeanSquaredError, "rmse", |d| d * d, |m| m.sqrt()
);

#[cfg(test)]
mod tests {
    use super::*;
    use nn_core::ndarray::{array, ArrayD};

    fn values(a: ArrayD<f64>) -> ArrayD<f64> {
        a
    }

    #[test]
    fn accuracy_counts_arg_max_labels_and_thresholds() {
        let pred = array![[0.1, 0.7, 0.2], [0.5, 0.4, 0.1]].into_dyn();
        let mut acc = Accuracy::new();
        Metric::<f64>::update(&mut acc, pred.view(), &Target::Labels(&[1, 2]));
        assert_eq!(Metric::<f64>::result(&acc), 0.5);
        let probs = array![[0.9], [0.2], [0.6]].into_dyn();
        let t = values(array![[1.0], [0.0], [0.0]].into_dyn());
        let mut acc = Accuracy::new();
        acc.update(probs.view(), &Target::Values(t.view()));
        assert!((Metric::<f64>::result(&acc) - 2.0 / 3.0).abs() < 1e-15);
    }

    /// Multi-label rows: Keras 3's `accuracy` compares arg-maxes (1 of 2
    /// rows here), `binary_accuracy` every output (5 of 6), counted by hand.
    #[test]
    fn binary_accuracy_counts_every_output() {
        let probs = array![[0.9, 0.8, 0.2], [0.3, 0.6, 0.7]].into_dyn();
        let t = values(array![[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]].into_dyn());
        let mut arg_max = Accuracy::new();
        arg_max.update(probs.view(), &Target::Values(t.view()));
        assert_eq!(Metric::<f64>::result(&arg_max), 0.5);
        let mut binary = BinaryAccuracy::new();
        binary.update(probs.view(), &Target::Values(t.view()));
        assert!((Metric::<f64>::result(&binary) - 5.0 / 6.0).abs() < 1e-15);
        // Logits: the threshold is 0; one output per sample against labels.
        let logits = array![[1.5], [-0.2], [0.3]].into_dyn();
        let mut binary = BinaryAccuracy::from_logits();
        Metric::<f64>::update(&mut binary, logits.view(), &Target::Labels(&[1, 0, 0]));
        assert!((Metric::<f64>::result(&binary) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(Metric::<f64>::name(&binary), "binary_accuracy");
    }

    #[test]
    fn top_k_counts_ties_in_the_targets_favour() {
        let pred = array![[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]].into_dyn();
        let mut top2 = TopKAccuracy::new(2);
        Metric::<f64>::update(&mut top2, pred.view(), &Target::Labels(&[2, 0, 2]));
        // row 0: class 2 is second; row 1: class 0 ties for second; row 2: class 2 is last.
        assert!((Metric::<f64>::result(&top2) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(Metric::<f64>::name(&top2), "top_2_accuracy");
    }

    #[test]
    fn error_metrics_follow_their_formulas_across_batches() {
        let (mut mae, mut mse, mut rmse) = (
            MeanAbsoluteError::default(),
            MeanSquaredError::default(),
            RootMeanSquaredError::default(),
        );
        let batches = [
            (array![[1.0, 2.0]], array![[0.0, 4.0]]),
            (array![[3.0, 3.0]], array![[3.0, 0.0]]),
        ];
        for (p, t) in &batches {
            let (p, t) = (p.clone().into_dyn(), t.clone().into_dyn());
            for m in [
                &mut mae as &mut dyn Metric<f64>,
                &mut mse as &mut dyn Metric<f64>,
                &mut rmse as &mut dyn Metric<f64>,
            ] {
                m.update(p.view(), &Target::Values(t.view()));
            }
        }
        // Differences 1, -2, 0, 3: |d| sums to 6, d² to 14, over 4 elements.
        assert_eq!(Metric::<f64>::result(&mae), 1.5);
        assert_eq!(Metric::<f64>::result(&mse), 3.5);
        assert_eq!(Metric::<f64>::result(&rmse), 3.5f64.sqrt());
        Metric::<f64>::reset(&mut mae);
        assert_eq!(Metric::<f64>::result(&mae), 0.0);
    }
}
