//! [`fit`], [`evaluate`] and [`predict`]: the training loop for any model
//! that implements [`Fit`], on any [`Data`].

use nn_core::data::{Batches, Data, TargetKind};
use nn_core::loss::{Loss, Target};
use nn_core::ndarray::{ArrayD, ArrayViewD, Axis};
use nn_core::Float;
use nn_optim::{Optimizer, Schedule};

use super::callbacks::{BatchLogs, Callback, Context};
use super::checks;
use super::data_parallel;
use super::epochs::{run_epochs, Trainer, Validation};
use super::history::History;
use super::metrics::{Accuracy, Metric};
use super::model::Fit;
use super::objective::TrainLoss;
use super::step::{finish_step, Clipping};
use super::TrainError;
use crate::distributed::Collective;

/// How [`fit`] reports progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// A progress bar per epoch when stdout is a terminal, else one line per
    /// epoch; one line per epoch on a rank of a data-parallel run too (its
    /// launcher gives it a terminal even when the output goes to a file).
    #[default]
    Auto,
    /// Always one plain line per epoch.
    Lines,
    /// Nothing.
    Silent,
}

/// Settings of [`fit`], with Keras-like defaults (32-sample batches, one epoch,
/// shuffling every epoch, sparse categorical cross-entropy).
pub struct FitOptions<'a, T: Float> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// The loss to minimize: a built-in (`Loss::Mse.into()`) or your own on
    /// the tape ([`TrainLoss::tape`]).
    pub loss: TrainLoss<'a, T>,
    /// Metrics reported beside the loss, in this order. Empty (the default)
    /// means Keras's `accuracy` for classification losses and none for
    /// regression losses (MSE, MAE, Huber).
    pub metrics: Vec<Box<dyn Metric<T> + 'a>>,
    /// Shuffle each epoch, from this seed (epoch `e` shuffles with
    /// [`nn_core::data::epoch_seed`]`(seed, e)`: no two seeds share an
    /// epoch's order), and reseed the model's dropout from it at each epoch;
    /// `None` keeps the order and the model's own random streams.
    pub shuffle_seed: Option<u64>,
    /// Skip a final partial batch.
    pub drop_last: bool,
    /// Data evaluated after each epoch (`val_loss` and `val_` metrics).
    pub validation: Option<&'a dyn Data<T>>,
    /// Progress display.
    pub verbosity: Verbosity,
    /// Called at the start, around each batch and after each epoch, in order.
    pub callbacks: Vec<Box<dyn Callback<T> + 'a>>,
    /// Rescale the gradients before each step so their global norm is at most
    /// this (PyTorch's `clip_grad_norm_`, after the callbacks' gradient hooks).
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to `[-v, v]` before each step (after
    /// norm clipping when both are set).
    pub clip_grad_value: Option<f64>,
    /// A per-step learning-rate schedule: step `s` (counted from 0 over the
    /// whole run) trains at `schedule.lr(base, s)`, `base` the optimizer's rate
    /// when `fit` starts — as [`nn_optim::LrScheduler`] stepped once per batch.
    /// Not beside a callback that sets the rate ([`super::ScheduleEachEpoch`],
    /// [`super::PlateauOnMetric`]): `fit` refuses the two together.
    pub lr_schedule: Option<Box<dyn Schedule + 'a>>,
    /// Save a [`Checkpoint`](super::Checkpoint) into this directory after
    /// every epoch (one file, replaced atomically); when a callback stops
    /// the run at an epoch's end, once more after the train-end hooks, with
    /// the weights the run ends with (a restoring [`super::EarlyStopping`]'s
    /// best).
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Continue the run checkpointed in this directory, up to `epochs`
    /// (Keras's `BackupAndRestore`): the model, optimizer, epoch, History and
    /// callbacks' state come back; a missing directory or file starts afresh.
    /// Resuming is exact when `shuffle_seed` is set (the default).
    pub resume_from: Option<std::path::PathBuf>,
    /// Train data-parallel, as this rank of `group` (PyTorch's DDP; see
    /// [`crate::distributed`]): rank 0's weights go to every rank first; each
    /// batch of `batch_size × ranks` samples is shared out, every rank
    /// taking `batch_size`; gradients are averaged before every step; the
    /// logs hold over all ranks. Only rank 0 prints, writes checkpoints and
    /// runs the callbacks that write files; BatchNorm's running statistics
    /// are rank 0's (see also `sync_batch_norm`).
    pub distributed: Option<&'a dyn Collective>,
    /// With `distributed`: batch normalization in training computes its
    /// statistics over every rank's share of the batch (PyTorch's
    /// `SyncBatchNorm`), so the run normalizes as one process with the whole
    /// batch does; by default each rank uses its own share's.
    pub sync_batch_norm: bool,
    /// With `distributed`: gradients are summed over the ranks in buckets of
    /// about this many MiB (PyTorch DDP's `bucket_cap_mb`, 25 there; 1 here,
    /// where models have megabytes of gradients, not hundreds), each started
    /// as soon as backward has finished its parameters — for `sequential!`
    /// and `functional!` models, layer by layer — while the layers before
    /// still compute; 0 makes every parameter a bucket of its own,
    /// `f64::INFINITY` sums everything in one message after backward.
    pub bucket_mb: f64,
    /// With `distributed`: split the optimizer's work over the ranks (ZeRO's
    /// sharded optimizer, PyTorch's `ZeroRedundancyOptimizer` with DDP): each
    /// rank sums only its share of every gradient (a reduce-scatter), updates
    /// that share of every parameter ([`Optimizer::step_share`]), and the
    /// ranks then exchange the updated shares. The same messages' worth as
    /// one all-reduce, 1/N of the optimizer's work on each rank (its memory
    /// is not split: every rank keeps whole gradients and buffers), and the
    /// steps of the unsharded run: the same bits with two ranks, unless
    /// `clip_grad_norm` adds its squares in another order. Needs an
    /// element-wise optimizer (all of nn-optim's are) and row-major
    /// parameters. The callbacks' gradient hook sees each rank's own
    /// gradients, summed only in its share; the optimizer's state is put
    /// together at each epoch's end (for callbacks and checkpoints) and when
    /// `fit` returns `Ok` (after an error each rank's is current in its own
    /// share only). Off by default; without `distributed`, or with one rank,
    /// there is nothing to split and it changes nothing (an optimizer that
    /// is not element-wise is refused all the same).
    pub shard_optimizer: bool,
}

impl<T: Float> Default for FitOptions<'_, T> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            loss: Loss::SparseCategoricalCrossEntropy.into(),
            metrics: Vec::new(),
            shuffle_seed: Some(0),
            drop_last: false,
            validation: None,
            verbosity: Verbosity::Auto,
            callbacks: Vec::new(),
            clip_grad_norm: None,
            clip_grad_value: None,
            lr_schedule: None,
            checkpoint_dir: None,
            resume_from: None,
            distributed: None,
            sync_batch_norm: false,
            bucket_mb: 1.0,
            shard_optimizer: false,
        }
    }
}

/// The metrics `fit` reports when none are asked for: accuracy for a
/// classification loss (or, with a loss on the tape, for class labels).
fn default_metrics<'a, T: Float>(
    loss: &TrainLoss<'_, T>,
    kind: &TargetKind,
) -> Vec<Box<dyn Metric<T> + 'a>> {
    let classify = match loss.builtin() {
        Some(l) => l.is_classification(),
        None => matches!(kind, TargetKind::Labels { .. }),
    };
    if classify {
        let acc = loss
            .builtin()
            .map_or_else(Accuracy::new, Accuracy::for_loss);
        vec![Box::new(acc)]
    } else {
        Vec::new()
    }
}

/// `fit`'s own step: forward and backward through the model, the callbacks'
/// gradient hooks, clipping, the optimizer's step.
struct Standard<'m, 'a, T: Float, M> {
    model: &'m mut M,
    optimizer: &'m mut dyn Optimizer<T>,
    loss: TrainLoss<'a, T>,
    metrics: Vec<Box<dyn Metric<T> + 'a>>,
    clip_norm: Option<f64>,
    clip_value: Option<f64>,
    schedule: Option<(Box<dyn Schedule + 'a>, f64)>,
    group: Option<&'a dyn Collective>,
    bucket_mb: f64,
    /// The ranks that split the optimizer's work, if they do.
    shards: Option<&'a dyn Collective>,
}

impl<T: Float, M: Fit<T>> Trainer<T> for Standard<'_, '_, T, M> {
    fn context(&mut self) -> Context<'_, T> {
        Context {
            params: self.model.parameters(),
            optimizer: &mut *self.optimizer,
        }
    }

    fn set_training(&mut self, training: bool) {
        self.model.set_training(training);
    }

    fn begin_epoch(&mut self) {
        self.metrics.iter_mut().for_each(|m| m.reset());
    }

    fn reseed(&mut self, seed: u64) {
        self.model.reseed(seed);
    }

    fn lr_base(&self) -> f64 {
        self.schedule
            .as_ref()
            .map_or_else(|| self.optimizer.learning_rate(), |(_, base)| *base)
    }

    fn set_lr_base(&mut self, base: f64) {
        if let Some((_, b)) = &mut self.schedule {
            *b = base;
        }
    }

    fn set_step(&mut self, step: usize) -> f64 {
        if let Some((schedule, base)) = &self.schedule {
            self.optimizer.set_learning_rate(schedule.lr(*base, step));
        }
        self.optimizer.learning_rate()
    }

    fn batch(
        &mut self,
        x: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        logs: &mut BatchLogs,
        callbacks: &mut [Box<dyn Callback<T> + '_>],
    ) -> Result<Option<f64>, TrainError> {
        let metrics = &mut self.metrics;
        let mut outputs = |out: ArrayViewD<'_, T>| {
            metrics
                .iter_mut()
                .for_each(|m| m.update(out.view(), target))
        };
        logs.loss = match self.group {
            None => self.model.train_batch(x, target, &self.loss, &mut outputs),
            Some(group) => {
                let sums = data_parallel::step_sums(
                    group,
                    self.model.parameters(),
                    logs.size,
                    self.bucket_mb,
                    self.shards.is_some(),
                );
                data_parallel::averaged_step(sums, logs.size, || {
                    self.model.train_batch(x, target, &self.loss, &mut outputs)
                })
            }
        };
        let clipping = Clipping {
            norm: self.clip_norm,
            value: self.clip_value,
        };
        let params = self.model.parameters();
        finish_step(
            params,
            &mut *self.optimizer,
            logs,
            callbacks,
            clipping,
            self.shards,
        )
        .map(|()| Some(logs.loss))
    }

    fn gather_optimizer_state(&mut self) -> Result<(), TrainError> {
        data_parallel::gather_optimizer_state(&mut *self.optimizer, self.shards)
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        self.metrics
            .iter()
            .map(|m| (m.name().to_string(), m.result()))
            .collect()
    }

    fn reduced_metrics(&mut self, group: &dyn Collective, samples: usize) -> Vec<(String, f64)> {
        data_parallel::reduce_metrics(group, &mut self.metrics, samples)
    }

    fn validate(&mut self, data: &dyn Data<T>, batch_size: usize) -> Validation {
        let (loss, metrics) =
            evaluate_into(self.model, data, batch_size, &self.loss, &mut self.metrics);
        Some((loss, metrics))
    }

    fn metric_names(&self, validation: bool) -> Option<Vec<String>> {
        Some(logged_names(
            self.metrics.iter().map(|m| m.name().to_string()),
            validation,
        ))
    }
}

/// Every name a run logs: `loss` and `names`, their `val_` twins when
/// validation runs, and `lr`, `seconds`, `samples_per_sec`.
pub(crate) fn logged_names(names: impl Iterator<Item = String>, validation: bool) -> Vec<String> {
    let train: Vec<String> = std::iter::once("loss".to_string()).chain(names).collect();
    let mut all = train.clone();
    if validation {
        all.extend(train.iter().map(|n| format!("val_{n}")));
    }
    all.extend(["lr", "seconds", "samples_per_sec"].map(String::from));
    all
}

/// Trains `model` on `data` with `optimizer`, epoch by epoch, and returns the
/// per-epoch metrics.
///
/// Before the first batch it checks what would otherwise fail mid-run, and
/// returns [`TrainError::Config`] naming the problem: empty data, a batch
/// size of 0, a loss that cannot take the data's targets (MSE on labels), a
/// model whose output does not fit the targets, a callback monitoring a
/// metric that is never logged (`val_acc` for `val_accuracy`). It stops early
/// when a callback asks or the loss becomes NaN (the reason is in
/// [`History::stopped`]).
pub fn fit<T: Float, M: Fit<T>, D: Data<T>>(
    model: &mut M,
    optimizer: &mut dyn Optimizer<T>,
    data: &D,
    mut options: FitOptions<'_, T>,
) -> Result<History, TrainError> {
    let data: &dyn Data<T> = data;
    checks::check_training_data(data, &options)?;
    if let Some(val) = options.validation {
        checks::check_data(val, options.batch_size, "validation")?;
        let kinds = (val.target_kind(), data.target_kind());
        if std::mem::discriminant(&kinds.0) != std::mem::discriminant(&kinds.1) {
            return Err(TrainError::Config(format!(
                "the training data holds {} but the validation data {}",
                kinds.1, kinds.0
            )));
        }
    }
    checks::check_clipping(options.clip_grad_norm, options.clip_grad_value)?;
    checks::check_schedules(options.lr_schedule.is_some(), &options.callbacks)?;
    data_parallel::check_shardable(options.shard_optimizer, optimizer, model.parameters())?;
    checks::check_model_and_loss(model, data, &options.loss, "training")?;
    if let Some(val) = options.validation {
        checks::check_model_and_loss(model, val, &options.loss, "validation")?;
    }
    let loss = std::mem::replace(&mut options.loss, Loss::CrossEntropy.into());
    let metrics = match std::mem::take(&mut options.metrics) {
        none if none.is_empty() => default_metrics(&loss, &data.target_kind()),
        chosen => chosen,
    };
    let base = optimizer.learning_rate();
    let mut trainer = Standard {
        model,
        optimizer,
        loss,
        metrics,
        clip_norm: options.clip_grad_norm,
        clip_value: options.clip_grad_value,
        schedule: options.lr_schedule.take().map(|s| (s, base)),
        group: options.distributed,
        bucket_mb: options.bucket_mb,
        shards: data_parallel::sharding(options.distributed, options.shard_optimizer),
    };
    run_epochs(&mut trainer, data, options)
}

/// Mean loss and Keras's accuracy of `model` on `data`, in evaluation mode
/// (for other metrics, [`evaluate_metrics`]). Every batch's outputs are new
/// arrays, so it keeps freed memory for reuse as a tape does
/// ([`nn_core::memory::keep_freed_memory`]).
///
/// # Panics
/// If `data` holds no samples: there is no mean to report (Keras raises);
/// if `NN_KEEP_FREED_MEMORY` is set to anything but 0 or 1.
#[track_caller]
pub fn evaluate<T: Float, M: Fit<T>, D: Data<T>>(
    model: &mut M,
    data: &D,
    batch_size: usize,
    loss: Loss,
) -> (f64, f64) {
    let mut acc: Vec<Box<dyn Metric<T>>> = vec![Box::new(Accuracy::for_loss(loss))];
    let (l, m) = evaluate_into(model, data, batch_size, &loss.into(), &mut acc);
    (l, m[0].1)
}

/// Mean loss and `metrics` of `model` on `data`, in evaluation mode, as
/// Keras's `evaluate` returns them: the metrics under their names (freed
/// memory kept, as [`evaluate`]).
///
/// # Panics
/// If `data` holds no samples, or as [`evaluate`].
#[track_caller]
pub fn evaluate_metrics<'a, T: Float, M: Fit<T>, D: Data<T>>(
    model: &mut M,
    data: &D,
    batch_size: usize,
    loss: impl Into<TrainLoss<'a, T>>,
    metrics: &mut [Box<dyn Metric<T> + 'a>],
) -> (f64, Vec<(String, f64)>) {
    evaluate_into(model, data, batch_size, &loss.into(), metrics)
}

#[track_caller]
fn evaluate_into<T: Float, M: Fit<T>>(
    model: &mut M,
    data: &dyn Data<T>,
    batch_size: usize,
    loss: &TrainLoss<'_, T>,
    metrics: &mut [Box<dyn Metric<T> + '_>],
) -> (f64, Vec<(String, f64)>) {
    // Not a loss of 0 and an accuracy of 0, which read as results.
    assert!(!data.is_empty(), "evaluate: the data holds no samples");
    // Every batch's outputs are new arrays: keep the freed ones' pages.
    nn_core::memory::keep_freed_memory();
    let was_training = model.is_training();
    model.set_training(false);
    metrics.iter_mut().for_each(|m| m.reset());
    let mut batches = Batches::new(data, batch_size.max(1), None, false);
    let (mut loss_sum, mut seen) = (0.0, 0usize);
    while let Some((x, y)) = batches.next_batch() {
        let out = model.predict_batch(x);
        loss_sum += loss.value(out.view(), &y) * y.len() as f64;
        metrics.iter_mut().for_each(|m| m.update(out.view(), &y));
        seen += y.len();
    }
    model.set_training(was_training);
    let results = metrics
        .iter()
        .map(|m| (m.name().to_string(), m.result()))
        .collect();
    (loss_sum / seen.max(1) as f64, results)
}

/// Outputs of `model` for every sample of `inputs` (`[n, …]`), in batches, in
/// evaluation mode (the model's own mode restored after; freed memory kept,
/// as [`evaluate`]). No samples give the outputs' shape with no rows, `[0, …]`.
///
/// # Panics
/// If `NN_KEEP_FREED_MEMORY` is set to anything but 0 or 1.
pub fn predict<T: Float, M: Fit<T>>(
    model: &mut M,
    inputs: ArrayViewD<'_, T>,
    batch_size: usize,
) -> ArrayD<T> {
    // Every batch's outputs are new arrays: keep the freed ones' pages.
    nn_core::memory::keep_freed_memory();
    let was_training = model.is_training();
    model.set_training(false);
    let n = inputs.shape()[0];
    let mut parts = Vec::new();
    let mut start = 0;
    // No samples still make one (empty) batch, so the result has the
    // outputs' shape `[0, …]`, as a PyTorch module gives for an empty batch.
    while start < n || parts.is_empty() {
        let end = (start + batch_size.max(1)).min(n);
        parts.push(model.predict_batch(inputs.slice_axis(Axis(0), (start..end).into())));
        start = end;
    }
    model.set_training(was_training);
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    nn_core::ndarray::concatenate(Axis(0), &views).expect("batches share their shape")
}
