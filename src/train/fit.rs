//! `fit`, `evaluate`, `predict`, and the [`Fit`] trait that lets one loop train
//! both kinds of model.

use std::time::Instant;

use nn_core::data::Dataset;
use nn_core::loss::{Loss, Target};
use nn_core::ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use nn_core::{Float, Model, Parameters, Tape, Var};
use nn_optim::Optimizer;

use super::callbacks::{Callback, Context, Control};
use super::history::{EpochLogs, History};
use super::progress::Progress;
use super::TrainError;

/// One batch's loss (mean) and how many predictions were right.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchStats {
    /// Mean loss over the batch.
    pub loss: f64,
    /// Correct predictions (see [`count_correct`]).
    pub correct: usize,
    /// Samples in the batch.
    pub count: usize,
}

/// What the training loop needs of a model.
pub trait Fit<T: Float> {
    /// The parameters the optimizer updates.
    fn parameters(&self) -> &dyn Parameters<T>;

    /// Forward and backward on one batch; gradients accumulate into the parameters.
    fn train_batch(
        &mut self,
        x: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        loss: Loss,
    ) -> BatchStats;

    /// Outputs for a batch, in evaluation mode.
    fn predict_batch(&self, x: ArrayViewD<'_, T>) -> ArrayD<T>;

    /// Training or evaluation mode (dropout).
    fn set_training(&mut self, training: bool);
}

/// One training batch of a `sequential!` model through its static path (no
/// tape): what the macro's [`Fit`] implementation calls.
pub fn static_train_batch<T: Float, M: Model<T>>(
    model: &mut M,
    x: ArrayViewD<'_, T>,
    target: &Target<'_, T>,
    loss: Loss,
) -> BatchStats {
    let count = x.shape()[0];
    let correct = count_correct(model.forward_train(x).view(), target, loss);
    let value = model.backward_loss(loss, target);
    BatchStats {
        loss: value.as_f64(),
        correct,
        count,
    }
}

/// A research model written on the tape: its forward pass and its parameters.
pub trait TapeModel<T: Float>: Parameters<T> {
    /// The forward pass, recorded on `x`'s tape.
    fn forward(&self, x: &Var<T>) -> Var<T>;

    /// Training or evaluation mode, if the model has dropout or the like.
    fn set_training(&mut self, _training: bool) {}
}

/// Wraps a [`TapeModel`] (kept for code written before every tape model
/// trained with [`fit`] as it is): trains exactly as the model itself does.
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
        loss: Loss,
    ) -> BatchStats {
        let tape = Tape::new();
        let out = self.forward(&tape.constant(x.to_owned()));
        let correct = out.with_value(|v| count_correct(v.view(), target, loss));
        let l = loss.apply(&out, target);
        l.backward();
        BatchStats {
            loss: l.item().as_f64(),
            correct,
            count: x.shape()[0],
        }
    }

    fn predict_batch(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let tape = Tape::new();
        let _no_grad = tape.no_grad();
        self.forward(&tape.constant(x.to_owned())).value()
    }

    fn set_training(&mut self, training: bool) {
        TapeModel::set_training(self, training);
    }
}

/// Correct predictions in a batch, as Keras's `accuracy` chooses: the arg-max
/// class against integer labels or one-hot rows; for a single output, the
/// output above 0.5 (0 for losses on logits) against the target above 0.5.
pub fn count_correct<T: Float>(
    out: ArrayViewD<'_, T>,
    target: &Target<'_, T>,
    loss: Loss,
) -> usize {
    let last = Axis(out.ndim() - 1);
    let argmax = |row: ndarray::ArrayView1<'_, T>| {
        row.iter()
            .enumerate()
            .fold(
                (0, T::neg_infinity()),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0
    };
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
            let cut = if matches!(loss, Loss::BinaryCrossEntropyWithLogits) {
                T::zero()
            } else {
                T::lit(0.5)
            };
            out.iter()
                .zip(t.iter())
                .filter(|(&o, &y)| (o > cut) == (y > T::lit(0.5)))
                .count()
        }
    }
}

/// How [`fit`] reports progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// A progress bar per epoch when stdout is a terminal, else one line per epoch.
    #[default]
    Auto,
    /// Always one plain line per epoch.
    Lines,
    /// Nothing.
    Silent,
}

/// Settings of [`fit`], with Keras-like defaults (32-sample batches, one epoch,
/// shuffling every epoch).
pub struct FitOptions<'a, T: Float> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// The loss to minimize.
    pub loss: Loss,
    /// Shuffle each epoch, from this seed (epoch `e` uses `seed + e`); `None` keeps the order.
    pub shuffle_seed: Option<u64>,
    /// Skip a final partial batch.
    pub drop_last: bool,
    /// Data evaluated after each epoch (`val_loss`, `val_accuracy`).
    pub validation: Option<&'a Dataset<T>>,
    /// Progress display.
    pub verbosity: Verbosity,
    /// Called after each epoch, in order.
    pub callbacks: Vec<Box<dyn Callback<T> + 'a>>,
}

impl<T: Float> Default for FitOptions<'_, T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            loss: Loss::SparseCategoricalCrossEntropy,
            shuffle_seed: Some(0),
            drop_last: false,
            validation: None,
            verbosity: Verbosity::Auto,
            callbacks: Vec::new(),
        }
    }
}

/// Trains `model` on `data` with `optimizer`, epoch by epoch, and returns the
/// per-epoch metrics. Stops early when a callback asks or the loss becomes NaN
/// (the reason is in [`History::stopped`]).
pub fn fit<T: Float, M: Fit<T>>(
    model: &mut M,
    optimizer: &mut dyn Optimizer<T>,
    data: &Dataset<T>,
    mut options: FitOptions<'_, T>,
) -> Result<History, TrainError> {
    let mut history = History::default();
    let mut callbacks = std::mem::take(&mut options.callbacks);
    for cb in callbacks.iter_mut() {
        cb.on_train_begin(&mut Context {
            params: model.parameters(),
            optimizer: &mut *optimizer,
        })?;
    }
    'epochs: for epoch in 0..options.epochs {
        model.set_training(true);
        let seed = options.shuffle_seed.map(|s| s.wrapping_add(epoch as u64));
        let mut batches = data.batches(options.batch_size, seed, options.drop_last);
        let mut progress = Progress::new(options.verbosity, epoch, options.epochs, batches.count());
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        let mut batch_index = 0;
        while let Some((x, y)) = batches.next_batch() {
            let stats = model.train_batch(x, &Target::Labels(y), options.loss);
            if stats.loss.is_nan() {
                let reason = format!(
                    "loss became NaN at epoch {}, batch {}: stopping (a smaller learning rate usually helps)",
                    epoch + 1,
                    batch_index + 1
                );
                progress.abandon(&reason);
                history.stopped = Some(reason);
                break 'epochs;
            }
            optimizer.step(model.parameters());
            optimizer.zero_grad(model.parameters());
            loss_sum += stats.loss * stats.count as f64;
            correct += stats.correct;
            seen += stats.count;
            batch_index += 1;
            progress.batch(
                seen,
                loss_sum / seen as f64,
                correct as f64 / seen as f64,
                start.elapsed().as_secs_f64(),
            );
        }
        let seconds = start.elapsed().as_secs_f64();
        let mut logs = EpochLogs {
            epoch: epoch + 1,
            loss: loss_sum / seen.max(1) as f64,
            accuracy: correct as f64 / seen.max(1) as f64,
            val_loss: None,
            val_accuracy: None,
            lr: optimizer.learning_rate(),
            seconds,
            samples_per_sec: seen as f64 / seconds.max(1e-9),
            outputs: Vec::new(),
        };
        if let Some(val) = options.validation {
            let (l, a) = evaluate(model, val, options.batch_size.max(256), options.loss);
            logs.val_loss = Some(l);
            logs.val_accuracy = Some(a);
        }
        progress.finish(&logs);
        history.epochs.push(logs.clone());
        for cb in callbacks.iter_mut() {
            let ctx = &mut Context {
                params: model.parameters(),
                optimizer: &mut *optimizer,
            };
            if let Control::Stop(reason) = cb.on_epoch_end(&logs, ctx)? {
                if options.verbosity != Verbosity::Silent {
                    println!("{reason}");
                }
                history.stopped = Some(reason);
                break 'epochs;
            }
        }
    }
    Ok(history)
}

/// Mean loss and accuracy of `model` on `data`, in evaluation mode.
pub fn evaluate<T: Float, M: Fit<T>>(
    model: &mut M,
    data: &Dataset<T>,
    batch_size: usize,
    loss: Loss,
) -> (f64, f64) {
    model.set_training(false);
    let mut batches = data.batches(batch_size, None, false);
    let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
    while let Some((x, y)) = batches.next_batch() {
        let out = model.predict_batch(x);
        let target = Target::Labels(y);
        let (l, _) = loss.value_and_grad(out.view(), &target);
        loss_sum += l.as_f64() * y.len() as f64;
        correct += count_correct(out.view(), &target, loss);
        seen += y.len();
    }
    model.set_training(true);
    (
        loss_sum / seen.max(1) as f64,
        correct as f64 / seen.max(1) as f64,
    )
}

/// Outputs of `model` for every sample of `inputs` (`[n, …]`), in batches, in
/// evaluation mode.
pub fn predict<T: Float, M: Fit<T>>(
    model: &mut M,
    inputs: ArrayViewD<'_, T>,
    batch_size: usize,
) -> ArrayD<T> {
    model.set_training(false);
    let n = inputs.shape()[0];
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + batch_size).min(n);
        parts.push(model.predict_batch(inputs.slice_axis(Axis(0), (start..end).into())));
        start = end;
    }
    model.set_training(true);
    if parts.is_empty() {
        return ArrayD::zeros(IxDyn(&[0]));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    nn_core::ndarray::concatenate(Axis(0), &views).expect("batches share their shape")
}
