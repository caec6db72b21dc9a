//! What [`fit`](super::fit) minimizes: a built-in [`Loss`] or your own loss
//! written on the tape.

use nn_core::data::TargetKind;
use nn_core::loss::{Loss, Target};
use nn_core::ndarray::ArrayViewD;
use nn_core::{Float, Tape, Var};

/// A loss written on the tape: the prediction (a [`Var`] on a tape) and the
/// batch's target; returns the scalar to minimize.
pub type TapeLossFn<'a, T> = Box<dyn Fn(&Var<T>, &Target<'_, T>) -> Var<T> + 'a>;

/// The loss [`fit`](super::fit) trains with: a built-in [`Loss`] (`Loss::Mse.into()`),
/// or your own function on the tape ([`TrainLoss::tape`]).
pub enum TrainLoss<'a, T: Float> {
    /// A built-in loss: its fused kernels, on the model's static path.
    Builtin(Loss),
    /// A loss of yours on the tape. Its gradient with respect to the model's
    /// output comes from the tape; a `sequential!` model still runs its static
    /// path before and after it (a [`TapeModel`](super::TapeModel) runs on the tape).
    Tape {
        /// The name in logs.
        name: String,
        /// The loss.
        loss: TapeLossFn<'a, T>,
    },
}

impl<T: Float> From<Loss> for TrainLoss<'_, T> {
    fn from(loss: Loss) -> Self {
        TrainLoss::Builtin(loss)
    }
}

impl<'a, T: Float> TrainLoss<'a, T> {
    /// A loss written on the tape, e.g. cross-entropy plus an activation penalty:
    ///
    /// ```
    /// use nn::prelude::*;
    /// use nn::train::TrainLoss;
    ///
    /// let loss = TrainLoss::<f32>::tape(|pred, target| {
    ///     cross_entropy(pred, target.labels(), Reduction::Mean) + pred.pow(2.0).mean() * 1e-3
    /// });
    /// ```
    pub fn tape(loss: impl Fn(&Var<T>, &Target<'_, T>) -> Var<T> + 'a) -> Self {
        TrainLoss::Tape {
            name: "custom".into(),
            loss: Box::new(loss),
        }
    }

    /// The built-in loss, if it is one.
    pub fn builtin(&self) -> Option<Loss> {
        match self {
            TrainLoss::Builtin(l) => Some(*l),
            TrainLoss::Tape { .. } => None,
        }
    }

    /// The loss's name (Keras's for built-ins).
    pub fn name(&self) -> &str {
        match self {
            TrainLoss::Builtin(l) => l.name(),
            TrainLoss::Tape { name, .. } => name,
        }
    }

    /// The mean loss of `pred` against `target`, without gradients.
    pub fn value(&self, pred: ArrayViewD<'_, T>, target: &Target<'_, T>) -> f64 {
        match self {
            TrainLoss::Builtin(l) => l.value_and_grad(pred, target).0.as_f64(),
            TrainLoss::Tape { loss, .. } => {
                let tape = Tape::new();
                let _no_grad = tape.no_grad();
                loss(&tape.constant(pred.to_owned()), target)
                    .item()
                    .as_f64()
            }
        }
    }

    /// Whether the loss can take targets of `kind`: an error naming both when not.
    pub(crate) fn check_targets(&self, kind: &TargetKind) -> Result<(), String> {
        let Some(loss) = self.builtin() else {
            return Ok(());
        };
        let labels = matches!(kind, TargetKind::Labels { .. });
        if loss.takes_labels() == labels {
            return Ok(());
        }
        let needs = if loss.takes_labels() {
            "integer class labels"
        } else {
            "target values"
        };
        let hint = if loss.takes_labels() {
            "(for one-hot or probability targets use CategoricalCrossEntropy)"
        } else if matches!(loss, Loss::CategoricalCrossEntropy | Loss::KlDivergence) {
            "(for integer labels use SparseCategoricalCrossEntropy, or Dataset::one_hot)"
        } else if matches!(
            loss,
            Loss::BinaryCrossEntropy | Loss::BinaryCrossEntropyWithLogits
        ) {
            "(give 0/1 labels as the values 0.0 and 1.0: Dataset::with_values, or \
             Targets::Values for an output of GraphData)"
        } else {
            "(give them as values: Dataset::with_values, or Targets::Values for an output \
             of GraphData)"
        };
        Err(format!(
            "the loss {} needs {needs}, but the data holds {kind} {hint}",
            loss.name()
        ))
    }
}
