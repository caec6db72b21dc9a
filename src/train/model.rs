//! The [`Fit`] trait that lets one training loop drive both kinds of model:
//! `sequential!` models and graphs through their static path, research
//! models ([`TapeModel`]) on the tape.

use nn_core::loss::Target;
use nn_core::ndarray::{ArrayD, ArrayViewD};
use nn_core::{Float, Model, Parameters, Tape, Var};

use super::objective::TrainLoss;

/// What the training loop needs of a model.
pub trait Fit<T: Float> {
    /// The parameters the optimizer updates.
    fn parameters(&self) -> &dyn Parameters<T>;

    /// Forward and backward on one batch: gradients accumulate into the
    /// parameters. `outputs` sees the batch's outputs (for metrics) before
    /// the backward pass. Returns the batch's mean loss.
    fn train_batch(
        &mut self,
        x: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        loss: &TrainLoss<'_, T>,
        outputs: &mut dyn FnMut(ArrayViewD<'_, T>),
    ) -> f64;

    /// Outputs for a batch, in evaluation mode.
    fn predict_batch(&self, x: ArrayViewD<'_, T>) -> ArrayD<T>;

    /// Training or evaluation mode (dropout).
    fn set_training(&mut self, training: bool);

    /// Restarts the model's random draws (dropout masks) from `seed`: `fit`
    /// calls it at the start of each epoch.
    fn reseed(&self, _seed: u64) {}

    /// Whether the model is in training mode: `predict` and `evaluate` put
    /// it back as they found it. A model that cannot tell (a
    /// `#[derive(Module)]` struct: its parts keep their own modes) says
    /// `true`, and is left in training mode.
    fn is_training(&self) -> bool {
        true
    }

    /// One sample's shape, when the model declares it (a `sequential!`
    /// model's `input(…)`): `fit` checks its data against it before
    /// training. `None` (the default): `fit` learns it from the model's
    /// first forward pass, whose shape check panics.
    fn input_shape(&self) -> Option<&[usize]> {
        None
    }
}

/// One training batch of a `sequential!` model or graph through its static
/// path: what the macros' [`Fit`] implementations call. A built-in loss takes
/// its fused kernels (no tape); a loss on the tape gets a tape of its own
/// over the outputs, whose gradient the static backward pass then carries.
pub fn static_train_batch<T: Float, M: Model<T>>(
    model: &mut M,
    x: ArrayViewD<'_, T>,
    target: &Target<'_, T>,
    loss: &TrainLoss<'_, T>,
    outputs: &mut dyn FnMut(ArrayViewD<'_, T>),
) -> f64 {
    // `x` outlives the step: the model reads it again in the backward pass
    // instead of keeping a copy.
    let out = model.forward_train_lent(x.view());
    outputs(out.view());
    match loss {
        TrainLoss::Builtin(l) => model.backward_loss_lent(x, *l, target).as_f64(),
        TrainLoss::Tape { loss, .. } => {
            let tape = Tape::new();
            let pred = tape.var(out.to_owned());
            let value = loss(&pred, target);
            value.backward();
            let grad = pred
                .grad()
                .unwrap_or_else(|| ArrayD::zeros(pred.with_value(|v| v.raw_dim())));
            model.backward_lent(x, grad.view());
            value.item().as_f64()
        }
    }
}

/// A research model written on the tape: its forward pass and its parameters.
pub trait TapeModel<T: Float>: Parameters<T> {
    /// The forward pass, recorded on `x`'s tape.
    fn forward(&self, x: &Var<T>) -> Var<T>;

    /// Training or evaluation mode, if the model has dropout or the like.
    fn set_training(&mut self, _training: bool) {}

    /// Restarts the model's random draws (dropout masks) from `seed`.
    fn reseed(&self, _seed: u64) {}
}

/// Wraps a [`TapeModel`] (kept for code written before every tape model
/// trained with [`fit`](super::fit) as it is): trains exactly as the model itself does.
pub struct OnTape<M>(pub M);

impl<T: Float, M: Parameters<T>> Parameters<T> for OnTape<M> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &nn_core::Param<T>)) {
        self.0.visit_params(f)
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &nn_core::Param<T>)) {
        self.0.visit_buffers(f)
    }
}

impl<T: Float, M: TapeModel<T>> TapeModel<T> for OnTape<M> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.0.forward(x)
    }
    fn set_training(&mut self, training: bool) {
        self.0.set_training(training)
    }
    fn reseed(&self, seed: u64) {
        self.0.reseed(seed)
    }
}

/// Trains a `sequential!` model (any [`Model`]) through its tape path rather
/// than its static one, to compare the two or to add tape-only terms around
/// it: `fit(&mut Taped(model), ..)`. Both paths give the same gradients.
pub struct Taped<M>(pub M);

impl<T: Float, M: Model<T>> Parameters<T> for Taped<M> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &nn_core::Param<T>)) {
        self.0.visit_params(f)
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &nn_core::Param<T>)) {
        self.0.visit_buffers(f)
    }
}

impl<T: Float, M: Model<T>> TapeModel<T> for Taped<M> {
    fn forward(&self, x: &Var<T>) -> Var<T> {
        Model::forward(&self.0, x)
    }
    fn set_training(&mut self, training: bool) {
        Model::set_training(&mut self.0, training)
    }
    fn reseed(&self, seed: u64) {
        Model::reseed(&self.0, seed)
    }
}

/// Every [`TapeModel`] (a `#[derive(Module)]` struct with its `forward`, or
/// your own) trains with the same loop: each batch records a fresh tape.
impl<T: Float, M: TapeModel<T>> Fit<T> for M {
    fn parameters(&self) -> &dyn Parameters<T> {
        self
    }

    fn train_batch(
        &mut self,
        x: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        loss: &TrainLoss<'_, T>,
        outputs: &mut dyn FnMut(ArrayViewD<'_, T>),
    ) -> f64 {
        let tape = Tape::new();
        let out = self.forward(&tape.constant(x.to_owned()));
        out.with_value(|v| outputs(v.view()));
        let l = match loss {
            TrainLoss::Builtin(l) => l.apply(&out, target),
            TrainLoss::Tape { loss, .. } => loss(&out, target),
        };
        l.backward();
        l.item().as_f64()
    }

    fn predict_batch(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let tape = Tape::new();
        let _no_grad = tape.no_grad();
        self.forward(&tape.constant(x.to_owned())).value()
    }

    fn set_training(&mut self, training: bool) {
        TapeModel::set_training(self, training);
    }

    fn reseed(&self, seed: u64) {
        TapeModel::reseed(self, seed);
    }
}
