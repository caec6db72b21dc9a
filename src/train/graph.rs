//! Training a model of several inputs and outputs (a `functional!` graph, any
//! [`GraphModel`]): [`GraphData`] holds each input's samples and each
//! output's targets, [`fit_graph`] trains with one loss per output and their
//! weights, as Keras's `compile(loss=[…], loss_weights=[…])`, through the
//! model's static path.

use std::path::PathBuf;
use std::time::Instant;

use nn_core::data::{share, Targets};
use nn_core::loss::{Loss, Target};
use nn_core::ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use nn_core::rand::seq::SliceRandom;
use nn_core::rand::SeedableRng;
use nn_core::{Float, GraphModel};
use nn_optim::{Optimizer, Schedule};

use super::callbacks::{epoch_end_hooks, train_end_hooks, BatchLogs, Callback, Context};
use super::checkpoint::run;
use super::checks;
use super::data_parallel;
use super::history::{EpochLogs, History};
use super::metrics::{count_correct, Metric};
use super::progress::Progress;
use super::step::{batch_begin_hooks, batch_end_hooks, defer, finish_step, Clipping};
use super::{TrainError, Verbosity};
use crate::distributed::{self, Collective};
use output_metrics::OutputMetrics;

mod output_metrics;

/// Why [`GraphData::new`] refused its arrays.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphDataError {
    /// No inputs, or no targets.
    #[error("a graph's data needs at least one input and one target; got {inputs} inputs and {targets} targets")]
    Empty {
        /// Inputs given.
        inputs: usize,
        /// Targets given.
        targets: usize,
    },
    /// An input or target holds another number of samples than the first input.
    #[error("{what} holds {found} samples, but input 0 holds {expected}")]
    SampleCount {
        /// `input 1`, `target 0`.
        what: String,
        /// The first input's samples.
        expected: usize,
        /// This one's.
        found: usize,
    },
}

/// Samples for a model of several inputs and outputs: for each input an
/// array `[n, …]`, for each output its targets, in the model's order.
#[derive(Clone, Debug)]
pub struct GraphData<T: Float = f32> {
    pub(crate) inputs: Vec<ArrayD<T>>,
    pub(crate) targets: Vec<Targets<T>>,
}

impl<T: Float> GraphData<T> {
    /// Data from each input's samples and each output's targets, checking
    /// that they all hold the same number of samples.
    pub fn new(inputs: Vec<ArrayD<T>>, targets: Vec<Targets<T>>) -> Result<Self, GraphDataError> {
        if inputs.is_empty() || targets.is_empty() {
            return Err(GraphDataError::Empty {
                inputs: inputs.len(),
                targets: targets.len(),
            });
        }
        let n = inputs[0].shape().first().copied().unwrap_or(0);
        let counts = inputs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                (
                    format!("input {i}"),
                    x.shape().first().copied().unwrap_or(0),
                )
            })
            .chain(
                targets
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("target {i}"), t.len())),
            );
        for (what, found) in counts {
            if found != n {
                return Err(GraphDataError::SampleCount {
                    what,
                    expected: n,
                    found,
                });
            }
        }
        let inputs = inputs
            .into_iter()
            .map(|x| x.as_standard_layout().into_owned())
            .collect();
        Ok(GraphData { inputs, targets })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs[0].shape()[0]
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input `i`'s samples.
    pub fn input(&self, i: usize) -> ArrayViewD<'_, T> {
        self.inputs[i].view()
    }

    /// Output `i`'s targets.
    pub fn targets(&self, i: usize) -> &Targets<T> {
        &self.targets[i]
    }

    /// Samples `range`, as a new data set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let part = |x: &ArrayD<T>| x.slice_axis(Axis(0), range.clone().into()).to_owned();
        GraphData {
            inputs: self.inputs.iter().map(part).collect(),
            targets: self
                .targets
                .iter()
                .map(|t| match t {
                    Targets::Labels(l) => Targets::Labels(l[range.clone()].to_vec()),
                    Targets::Values(v) => Targets::Values(part(v)),
                })
                .collect(),
        }
    }

    /// The first `⌊len · (1 − fraction)⌋` samples and the rest, as Keras's
    /// `validation_split` cuts them.
    ///
    /// # Panics
    /// If `fraction` is not in `[0, 1)`.
    #[track_caller]
    pub fn split(&self, fraction: f64) -> (Self, Self) {
        let cut = nn_core::data::split_point("GraphData::split", self.len(), fraction);
        (self.slice(0..cut), self.slice(cut..self.len()))
    }
}

/// Copies the rows `idx` of `src` into `dst` (resized only when the batch
/// size changes).
fn gather<T: Float>(src: &ArrayD<T>, idx: &[usize], dst: &mut ArrayD<T>) {
    let mut shape = src.shape().to_vec();
    shape[0] = idx.len();
    if dst.shape() != shape.as_slice() {
        *dst = ArrayD::zeros(IxDyn(&shape));
    }
    let per: usize = shape[1..].iter().product();
    let (Some(s), Some(d)) = (src.as_slice(), dst.as_slice_mut()) else {
        for (k, &i) in idx.iter().enumerate() {
            dst.index_axis_mut(Axis(0), k)
                .assign(&src.index_axis(Axis(0), i));
        }
        return;
    };
    for (k, &i) in idx.iter().enumerate() {
        d[k * per..(k + 1) * per].copy_from_slice(&s[i * per..(i + 1) * per]);
    }
}

/// A batch's inputs and targets, in buffers reused from batch to batch.
struct Batch<T: Float> {
    inputs: Vec<ArrayD<T>>,
    values: Vec<ArrayD<T>>,
    labels: Vec<Vec<usize>>,
}

impl<T: Float> Batch<T> {
    fn new(data: &GraphData<T>) -> Self {
        let empty = || ArrayD::zeros(IxDyn(&[0]));
        Batch {
            inputs: data.inputs.iter().map(|_| empty()).collect(),
            values: data.targets.iter().map(|_| empty()).collect(),
            labels: data.targets.iter().map(|_| Vec::new()).collect(),
        }
    }

    fn fill(&mut self, data: &GraphData<T>, idx: &[usize]) {
        for (dst, src) in self.inputs.iter_mut().zip(&data.inputs) {
            gather(src, idx, dst);
        }
        for (i, t) in data.targets.iter().enumerate() {
            match t {
                Targets::Labels(l) => {
                    self.labels[i].clear();
                    self.labels[i].extend(idx.iter().map(|&k| l[k]));
                }
                Targets::Values(v) => gather(v, idx, &mut self.values[i]),
            }
        }
    }

    fn target(&self, data: &GraphData<T>, i: usize) -> Target<'_, T> {
        match data.targets[i] {
            Targets::Labels(_) => Target::Labels(&self.labels[i]),
            Targets::Values(_) => Target::Values(self.values[i].view()),
        }
    }
}

/// Settings of [`fit_graph`]: [`super::FitOptions`]'s, with one loss per
/// output and their weights.
pub struct GraphFitOptions<'a, T: Float> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per batch (per rank with `distributed`).
    pub batch_size: usize,
    /// One loss per output, in the model's order.
    pub losses: Vec<Loss>,
    /// Each output's weight in the total loss; empty means 1 each.
    pub loss_weights: Vec<f64>,
    /// Metrics of single outputs, by the output's name (Keras's
    /// `metrics={"value": ["mae"]}`), logged as `value_mae` and
    /// `val_value_mae`, beside each output's loss and accuracy.
    pub metrics: Vec<(&'a str, Box<dyn Metric<T> + 'a>)>,
    /// Shuffle each epoch, from this seed (epoch `e` shuffles with
    /// [`nn_core::data::epoch_seed`]`(seed, e)`); `None` keeps the order.
    pub shuffle_seed: Option<u64>,
    /// Data evaluated after each epoch.
    pub validation: Option<&'a GraphData<T>>,
    /// Progress display.
    pub verbosity: Verbosity,
    /// Called at the start, around each batch and after each epoch, in
    /// order (as in [`super::fit`]).
    pub callbacks: Vec<Box<dyn Callback<T> + 'a>>,
    /// Rescale the gradients before each step so their global norm is at
    /// most this (as [`super::FitOptions::clip_grad_norm`]).
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to `[-v, v]` before each step (as
    /// [`super::FitOptions::clip_grad_value`]).
    pub clip_grad_value: Option<f64>,
    /// A per-step learning-rate schedule (as
    /// [`super::FitOptions::lr_schedule`]): step `s` trains at
    /// `schedule.lr(base, s)`, `base` the optimizer's rate when the run began.
    pub lr_schedule: Option<Box<dyn Schedule + 'a>>,
    /// Write a checkpoint here after every epoch (as
    /// [`super::FitOptions::checkpoint_dir`]).
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue the run checkpointed here, if there is one (as
    /// [`super::FitOptions::resume_from`]).
    pub resume_from: Option<PathBuf>,
    /// Train data-parallel, as this rank of `group` (as
    /// [`super::FitOptions::distributed`]): rank 0's weights go to every
    /// rank first; each step shares `batch_size × ranks` samples out, every
    /// rank taking `batch_size`; gradients are averaged over the ranks after
    /// backward, in buckets started as soon as their layers' backward has
    /// run (see `bucket_mb`); the logs hold over all ranks. Only rank 0
    /// prints, writes checkpoints and runs the callbacks that write files.
    pub distributed: Option<&'a dyn Collective>,
    /// With `distributed`: batch normalization in training uses every
    /// rank's share of the batch (as [`super::FitOptions::sync_batch_norm`]).
    pub sync_batch_norm: bool,
    /// With `distributed`: the gradient buckets' size in MiB (as
    /// [`super::FitOptions::bucket_mb`]): a layer's gradients are final after
    /// the backward of its first application (a shared layer's last).
    pub bucket_mb: f64,
    /// With `distributed`: split the optimizer's work over the ranks (as
    /// [`super::FitOptions::shard_optimizer`]).
    pub shard_optimizer: bool,
}

impl<T: Float> Default for GraphFitOptions<'_, T> {
    fn default() -> Self {
        GraphFitOptions {
            epochs: 1,
            batch_size: 32,
            losses: Vec::new(),
            loss_weights: Vec::new(),
            metrics: Vec::new(),
            shuffle_seed: Some(0),
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

/// What [`evaluate_graph`] measured: the weighted total loss and each
/// output's loss and accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphMetrics {
    /// `Σ weightᵢ · lossᵢ`.
    pub loss: f64,
    /// Each output's mean loss.
    pub losses: Vec<f64>,
    /// Each output's accuracy (as [`count_correct`] counts) where it
    /// classifies (its loss a cross-entropy or KL divergence), `None` for a
    /// regression output (Keras reports none there either).
    pub accuracies: Vec<Option<f64>>,
}

/// Trains `model` on `data`: each batch through the static path, the loss
/// `Σ weightᵢ · lossᵢ(outputᵢ, targetᵢ)` (a softmax output with a
/// categorical cross-entropy takes the fused gradient `p − y`, as in
/// [`super::fit`]). The history's `loss` is the total, `accuracy` the first
/// output's when it classifies; every output's loss, and the accuracy of
/// each that classifies (its loss a cross-entropy), are in
/// [`EpochLogs::metrics`] under Keras's names (`aux_loss`,
/// `val_out_accuracy`). A callback monitoring a name never logged is a
/// [`TrainError::Config`], as in `fit`. With
/// [`GraphFitOptions::distributed`] it trains data-parallel as `fit` does.
pub fn fit_graph<T: Float, M: GraphModel<T>>(
    model: &mut M,
    optimizer: &mut dyn Optimizer<T>,
    data: &GraphData<T>,
    mut options: GraphFitOptions<'_, T>,
) -> Result<History, TrainError> {
    let weights = checks::check_graph(model, &options, data, "training")?;
    checks::check_clipping(options.clip_grad_norm, options.clip_grad_value)?;
    checks::check_schedules(options.lr_schedule.is_some(), &options.callbacks)?;
    data_parallel::check_shardable(options.shard_optimizer, optimizer, &*model)?;
    if let Some(val) = options.validation {
        checks::check_graph(model, &options, val, "validation")?;
    }
    let group = options.distributed;
    let run_settings = data_parallel::RunSettings {
        samples: data.len(),
        batch_size: options.batch_size,
        epochs: options.epochs,
        shuffle_seed: options.shuffle_seed,
        sync_batch_norm: options.sync_batch_norm,
        bucket_mb: options.bucket_mb,
        shard_optimizer: data_parallel::sharding(group, options.shard_optimizer).is_some(),
    };
    // Ranks with other losses or weights would each step another way: they
    // agree on a digest of each loss's name and weight too.
    let loss_facts = options.losses.iter().zip(&weights).fold(0u64, |h, (l, w)| {
        let kind = format!("{l:?}")
            .bytes()
            .fold(h, |h, b| h.rotate_left(5) ^ u64::from(b));
        kind.rotate_left(7) ^ w.to_bits()
    });
    // What the epochs log, for the callbacks' monitors: each output's loss,
    // the accuracy of those that classify.
    let classifies: Vec<bool> = options
        .losses
        .iter()
        .map(|l| l.is_classification())
        .collect();
    let mut metrics = Vec::new();
    for_each_metric(&output_names::<T, M>(), &classifies, |name, _, _| {
        metrics.push(name)
    });
    let output_metrics = OutputMetrics::new(
        std::mem::take(&mut options.metrics),
        &output_names::<T, M>(),
    )?;
    metrics.extend(output_metrics.names.iter().cloned());
    let logged = super::fit::logged_names(metrics.into_iter(), options.validation.is_some());
    checks::check_monitors(&options.callbacks, &logged)?;
    let callbacks = std::mem::take(&mut options.callbacks);
    let callbacks = data_parallel::join_run(
        group,
        &*model,
        &run_settings,
        &[("losses and their weights", loss_facts)],
        &mut options.verbosity,
        callbacks,
    )?;
    // Training-mode batch norm sums its statistics over the ranks until the
    // run ends (evaluation uses running statistics and sums nothing).
    let synced = group.filter(|_| options.sync_batch_norm);
    let train = || {
        let epochs = Epochs {
            options: &options,
            weights: &weights,
            callbacks,
            output_metrics,
        };
        train_epochs(model, optimizer, data, epochs)
    };
    match synced {
        Some(g) => distributed::with_sync_batch_norm(g, train),
        None => train(),
    }
}

/// Each output's loss (summed over its samples) and correct count, and the
/// samples seen, of an epoch so far on this rank.
struct EpochSums {
    outputs: Vec<(f64, usize)>,
    seen: usize,
}

impl EpochSums {
    fn new(outputs: usize) -> Self {
        EpochSums {
            outputs: vec![(0.0, 0); outputs],
            seen: 0,
        }
    }

    /// The sums over every rank of `group`.
    fn over_ranks(self, group: Option<&dyn Collective>) -> Self {
        let Some(g) = group else { return self };
        let mut all: Vec<f64> = self
            .outputs
            .iter()
            .flat_map(|&(l, c)| [l, c as f64])
            .chain([self.seen as f64])
            .collect();
        distributed::sum(g, &mut all);
        EpochSums {
            outputs: all.chunks_exact(2).map(|p| (p[0], p[1] as usize)).collect(),
            seen: all[all.len() - 1] as usize,
        }
    }

    /// `Σ weightᵢ · lossᵢ` per sample.
    fn total(&self, weights: &[f64]) -> f64 {
        let n = self.seen.max(1) as f64;
        self.outputs
            .iter()
            .zip(weights)
            .map(|((l, _), w)| w * l / n)
            .sum()
    }

    /// The first output's accuracy.
    fn accuracy(&self) -> f64 {
        self.outputs[0].1 as f64 / self.seen.max(1) as f64
    }
}

/// What [`train_epochs`] runs with, besides the model, optimizer and data.
struct Epochs<'o, 'a, T: Float> {
    options: &'o GraphFitOptions<'a, T>,
    weights: &'o [f64],
    callbacks: Vec<Box<dyn Callback<T> + 'a>>,
    output_metrics: OutputMetrics<'a, T>,
}

/// [`fit_graph`]'s epochs, once the ranks agree on the run.
fn train_epochs<T: Float, M: GraphModel<T>>(
    model: &mut M,
    optimizer: &mut dyn Optimizer<T>,
    data: &GraphData<T>,
    run: Epochs<'_, '_, T>,
) -> Result<History, TrainError> {
    let Epochs {
        options,
        weights,
        mut callbacks,
        mut output_metrics,
    } = run;
    let losses = &options.losses;
    let names = output_names::<T, M>();
    // Accuracy is logged for the outputs that classify, as `fit` logs it.
    let classifies: Vec<bool> = losses.iter().map(|l| l.is_classification()).collect();
    let group = options.distributed;
    let shards = data_parallel::sharding(group, options.shard_optimizer);
    let root = group.is_none_or(|g| g.is_root());
    let (rank, ranks) = group.map_or((0, 1), |g| (g.rank(), g.size()));
    let parallel = group.is_some();
    let resumed = match &options.resume_from {
        Some(dir) => {
            let ctx = Context {
                params: &*model,
                optimizer: &mut *optimizer,
            };
            run::resume(ctx, dir, &mut callbacks)
        }
        None => Ok(None),
    };
    // The rate a per-step schedule scales: the optimizer's at the start of
    // the run, not its scheduled rate at a resumed epoch.
    let mut lr_base = optimizer.learning_rate();
    let (mut history, start_epoch, mut steps) = match data_parallel::agree(group, resumed)? {
        Some(r) => {
            lr_base = r.lr_base;
            (r.history, r.epoch, r.step)
        }
        None => (History::default(), 0, 0),
    };
    let clipping = Clipping {
        norm: options.clip_grad_norm,
        value: options.clip_grad_value,
    };
    data_parallel::check_resumed_alike(group, start_epoch, steps, &history)?;
    if history.stopped.is_some() {
        return Ok(history);
    }
    if let Some(g) = group {
        distributed::broadcast_parameters(g, &*model);
    }
    let mut begun = match options.checkpoint_dir.as_ref().filter(|_| root) {
        Some(dir) => run::prepare_dir(dir),
        None => Ok(()),
    };
    for cb in callbacks.iter_mut() {
        if begun.is_ok() {
            begun = cb.on_train_begin(&mut Context {
                params: &*model,
                optimizer: &mut *optimizer,
            });
        }
    }
    data_parallel::agree(group, begun)?;
    let mut batch = Batch::new(data);
    let mut grads: Vec<ArrayD<T>> = (0..M::OUTPUTS)
        .map(|_| ArrayD::zeros(IxDyn(&[0])))
        .collect();
    let mut order: Vec<usize> = (0..data.len()).collect();
    // Each step shares `batch_size × ranks` samples out over the ranks (a
    // last batch too small to give every rank a sample is skipped).
    let global = options.batch_size.max(1) * ranks;
    let mut deferred = None;
    let mut stopped_at = None;
    'epochs: for epoch in start_epoch..options.epochs {
        model.set_training(true);
        order.sort_unstable();
        if let Some(seed) = options.shuffle_seed {
            let mut epoch_seed = nn_core::layers::mix_seed(seed, epoch as u64);
            if group.is_some() {
                // Each rank masks its own samples with masks of its own.
                epoch_seed = nn_core::layers::mix_seed(epoch_seed, rank as u64);
            }
            model.reseed(epoch_seed);
            order.shuffle(&mut nn_core::rand::rngs::StdRng::seed_from_u64(
                nn_core::data::epoch_seed(seed, epoch),
            ));
        }
        let batches = order
            .chunks(global)
            .filter_map(|whole| Some((whole, share(whole.len(), rank, ranks)?)));
        let mut progress = Progress::new(
            options.verbosity,
            epoch,
            options.epochs,
            batches.clone().count(),
        );
        let start = Instant::now();
        let mut sums = EpochSums::new(M::OUTPUTS);
        output_metrics.reset();
        // This rank's running `Σ batch loss · its samples`, for the progress line.
        let mut shown = 0.0f64;
        for (b, (whole, mine)) in batches.enumerate() {
            let idx = &whole[mine];
            if let Some(schedule) = &options.lr_schedule {
                optimizer.set_learning_rate(schedule.lr(lr_base, steps));
            }
            let mut logs = BatchLogs {
                epoch: epoch + 1,
                batch: b,
                step: steps,
                size: idx.len(),
                loss: f64::NAN,
                lr: optimizer.learning_rate(),
            };
            // As in `fit`: one process stops at an error at once; a rank
            // keeps it until the batch's end, where every rank learns of it.
            let mut failure = None;
            let ctx = &mut Context {
                params: &*model,
                optimizer: &mut *optimizer,
            };
            batch_begin_hooks(&mut callbacks, &logs, ctx, parallel, &mut failure)?;
            batch.fill(data, idx);
            let views: Vec<ArrayViewD<'_, T>> = batch.inputs.iter().map(|x| x.view()).collect();
            model.forward_train(&views);
            let mut fused = vec![false; M::OUTPUTS];
            let mut local_loss = 0.0;
            for i in 0..M::OUTPUTS {
                let target = batch.target(data, i);
                let out = model.output(i);
                fused[i] = losses[i].fuses_with_softmax() && model.softmax_output(i);
                let value = if fused[i] {
                    losses[i].softmax_fused_into(out.view(), &target, &mut grads[i])
                } else {
                    losses[i].value_and_grad_into(out.view(), &target, &mut grads[i])
                };
                output_metrics.update(i, out.view(), &target);
                let correct = count_correct(out, &target, threshold(losses[i]));
                grads[i].mapv_inplace(|g| g * T::lit(weights[i]));
                let v = value.as_f64();
                sums.outputs[i].0 += v * idx.len() as f64;
                sums.outputs[i].1 += correct;
                local_loss += weights[i] * v;
            }
            let grad_views: Vec<ArrayViewD<'_, T>> = grads.iter().map(|g| g.view()).collect();
            // The whole batch's mean loss and gradient, on every rank: every
            // rank takes the same step or stops with the others.
            let buckets = group.map(|g| {
                data_parallel::step_sums(g, &*model, idx.len(), options.bucket_mb, shards.is_some())
            });
            let mut backward = || {
                model.backward(&grad_views, &fused);
                local_loss
            };
            let loss = match buckets {
                Some(buckets) => data_parallel::averaged_step(buckets, idx.len(), backward),
                None => backward(),
            };
            logs.loss = loss;
            if !loss.is_finite() {
                // A rank's deferred error waits for the agreement after
                // the epochs, which every rank reaches.
                if let Some(e) = failure {
                    deferred = Some(e);
                }
                let reason = format!(
                    "loss became {loss} at epoch {}, batch {} (samples {:?}…): stopping (check \
                     those samples for values that are not finite; if they are finite, a \
                     smaller learning rate or gradient clipping usually helps)",
                    epoch + 1,
                    b + 1,
                    &whole[..whole.len().min(4)]
                );
                // The weights stay as the last finite step left them.
                optimizer.zero_grad(&*model);
                progress.abandon(&reason);
                history.stopped = Some(reason);
                break 'epochs;
            }
            let stepped = finish_step(
                &*model,
                &mut *optimizer,
                &logs,
                &mut callbacks,
                clipping,
                shards,
            );
            defer(parallel, &mut failure, stepped)?;
            steps += 1;
            sums.seen += idx.len();
            shown += loss * idx.len() as f64;
            let (running, accuracy) = (shown / sums.seen as f64, sums.accuracy());
            let ctx = &mut Context {
                params: &*model,
                optimizer: &mut *optimizer,
            };
            let stop = batch_end_hooks(&mut callbacks, &logs, ctx, parallel, &mut failure)?;
            let stop = data_parallel::agree_on_batch(group, failure, stop)?;
            progress.batch(sums.seen, start.elapsed().as_secs_f64(), &mut || {
                let mut shown = vec![("loss".into(), running)];
                if classifies[0] {
                    shown.push(("accuracy".into(), accuracy));
                }
                shown
            });
            if let Some(reason) = stop {
                progress.abandon(&reason);
                history.stopped = Some(reason);
                break 'epochs;
            }
        }
        let local_seen = sums.seen;
        let sums = sums.over_ranks(group);
        let metrics_of_outputs = match group {
            None => output_metrics.results(),
            Some(g) => output_metrics.over_ranks(g, local_seen),
        };
        if let Some(g) = group {
            // Validation and checkpoints with rank 0's buffers (batch
            // norm's statistics).
            distributed::broadcast_buffers(g, &*model);
        }
        // Callbacks and checkpoints see the optimizer's whole state.
        data_parallel::gather_optimizer_state(&mut *optimizer, shards)?;
        let seconds = start.elapsed().as_secs_f64();
        let n = sums.seen.max(1) as f64;
        let per_output: Vec<(f64, f64)> = (sums.outputs.iter())
            .map(|&(l, c)| (l / n, c as f64 / n))
            .collect();
        let mut logs = EpochLogs {
            epoch: epoch + 1,
            loss: sums.total(weights),
            metrics: [
                epoch_metrics(&names, &classifies, &per_output),
                metrics_of_outputs,
            ]
            .concat(),
            lr: optimizer.learning_rate(),
            seconds,
            samples_per_sec: sums.seen as f64 / seconds.max(1e-9),
            ..EpochLogs::default()
        };
        if let Some(val) = options.validation {
            output_metrics.reset();
            let mut observe = |i: usize, out: ArrayViewD<'_, T>, target: &Target<'_, T>| {
                output_metrics.update(i, out, target)
            };
            let batch_size = options.batch_size.max(256);
            let m = evaluate_observing(model, val, batch_size, losses, weights, &mut observe);
            logs.val_loss = Some(m.loss);
            // Accuracies are read only for the outputs that classify.
            let per_output: Vec<(f64, f64)> = (m.losses.iter().copied())
                .zip(m.accuracies.iter().map(|a| a.unwrap_or(f64::NAN)))
                .collect();
            logs.val_metrics = [
                epoch_metrics(&names, &classifies, &per_output),
                output_metrics.results(),
            ]
            .concat()
            .into_iter()
            .map(|(name, v)| (format!("val_{name}"), v))
            .collect();
            if !m.loss.is_finite() {
                // As `fit`: the epoch that trained stays in the History. Every
                // rank validates the same weights on the same data, so every
                // rank stops here.
                let reason = format!(
                    "validation loss became {} at epoch {}: stopping (check the validation \
                     data for values that are not finite; if they are finite, the model's \
                     outputs overflow)",
                    m.loss,
                    epoch + 1
                );
                progress.abandon(&reason);
                history.epochs.push(logs);
                history.stopped = Some(reason);
                break 'epochs;
            }
        }
        progress.finish(&logs);
        history.epochs.push(logs.clone());
        // Every callback sees the epoch; then the first request to stop wins,
        // on every rank.
        let ctx = &mut Context {
            params: &*model,
            optimizer: &mut *optimizer,
        };
        let (stop, mut ended) = epoch_end_hooks(&mut callbacks, &logs, ctx);
        let stop = data_parallel::agree_to_stop(group, stop);
        if let Some(dir) = options
            .checkpoint_dir
            .as_ref()
            .filter(|_| root && ended.is_ok())
        {
            let mut saved = history.clone();
            saved.stopped = stop.clone();
            let state = run::RunState {
                history: saved,
                epoch: epoch + 1,
                step: steps,
                // As `fit`: the schedule's base, or without one the current rate.
                lr_base: match options.lr_schedule {
                    Some(_) => lr_base,
                    None => optimizer.learning_rate(),
                },
            };
            let ctx = Context {
                params: &*model,
                optimizer: &mut *optimizer,
            };
            // Stopping here: the loop ends after this save.
            stopped_at = stop.is_some().then(|| state.clone());
            ended = run::save(ctx, dir, state, &callbacks);
        }
        data_parallel::agree(group, ended)?;
        if let Some(reason) = stop {
            if options.verbosity != Verbosity::Silent {
                println!("{reason}");
            }
            history.stopped = Some(reason);
            break 'epochs;
        }
    }
    let ended = match deferred {
        Some(e) => Err(e),
        None => train_end_hooks(
            &mut callbacks,
            &mut Context {
                params: &*model,
                optimizer: &mut *optimizer,
            },
        ),
    };
    data_parallel::agree(group, ended)?;
    data_parallel::gather_optimizer_state(&mut *optimizer, shards)?;
    let ctx = Context {
        params: &*model,
        optimizer: &mut *optimizer,
    };
    let dir = options.checkpoint_dir.as_deref();
    let rewritten = run::save_stopped(ctx, dir, stopped_at, &callbacks);
    data_parallel::agree(group, rewritten)?;
    Ok(history)
}

/// What an epoch logs besides its loss, under Keras's names: the first
/// output's `accuracy` when it classifies, then each output's `{name}_loss`
/// and, for those that classify, `{name}_accuracy`. `f` gets each name, its
/// output's index and whether it is the accuracy (else the loss).
fn for_each_metric(names: &[String], classifies: &[bool], mut f: impl FnMut(String, usize, bool)) {
    for (i, (name, &classifies)) in names.iter().zip(classifies).enumerate() {
        if i == 0 && classifies {
            f("accuracy".to_string(), i, true);
        }
        f(format!("{name}_loss"), i, false);
        if classifies {
            f(format!("{name}_accuracy"), i, true);
        }
    }
}

/// [`for_each_metric`]'s names with their values, from each output's
/// (loss, accuracy).
fn epoch_metrics(
    names: &[String],
    classifies: &[bool],
    per_output: &[(f64, f64)],
) -> Vec<(String, f64)> {
    assert_eq!(
        per_output.len(),
        names.len(),
        "a loss and an accuracy per output"
    );
    let mut metrics = Vec::new();
    for_each_metric(names, classifies, |name, i, accuracy| {
        let (loss, acc) = per_output[i];
        metrics.push((name, if accuracy { acc } else { loss }));
    });
    metrics
}

/// The outputs' names for metrics: the model's (a graph's `-> (..)`
/// names), else `output_0`, `output_1`, ….
pub(crate) fn output_names<T: Float, M: GraphModel<T>>() -> Vec<String> {
    (0..M::OUTPUTS)
        .map(|i| {
            M::OUTPUT_NAMES
                .get(i)
                .map_or_else(|| format!("output_{i}"), |n| n.to_string())
        })
        .collect()
}

/// Loss and accuracy of every output of `model` on `data`, in evaluation
/// mode, with `weights` (empty: 1 each) for the total.
///
/// # Panics
/// If the losses, weights or data do not fit the model's inputs and
/// outputs, or `data` holds no samples.
#[track_caller]
pub fn evaluate_graph<T: Float, M: GraphModel<T>>(
    model: &mut M,
    data: &GraphData<T>,
    batch_size: usize,
    losses: &[Loss],
    weights: &[f64],
) -> GraphMetrics {
    let weights = checks::graph_counts::<T, M>(losses, weights, data)
        .unwrap_or_else(|e| panic!("evaluate_graph: {e}"));
    assert!(
        !data.is_empty(),
        "evaluate_graph: the data holds no samples"
    );
    evaluate_observing(model, data, batch_size, losses, &weights, &mut |_, _, _| {})
}

/// What sees each batch's output `i` and its target during an evaluation.
type Observer<'a, T> = dyn FnMut(usize, ArrayViewD<'_, T>, &Target<'_, T>) + 'a;

/// [`evaluate_graph`] once its arguments were checked, showing `observe`
/// each batch's output `i` and its target (for per-output metrics).
fn evaluate_observing<T: Float, M: GraphModel<T>>(
    model: &mut M,
    data: &GraphData<T>,
    batch_size: usize,
    losses: &[Loss],
    weights: &[f64],
    observe: &mut Observer<'_, T>,
) -> GraphMetrics {
    let was_training = model.is_training();
    model.set_training(false);
    let mut batch = Batch::new(data);
    let order: Vec<usize> = (0..data.len()).collect();
    let mut sums = vec![(0.0f64, 0usize); M::OUTPUTS];
    for idx in order.chunks(batch_size.max(1)) {
        batch.fill(data, idx);
        let views: Vec<ArrayViewD<'_, T>> = batch.inputs.iter().map(|x| x.view()).collect();
        let outs = model.predict(&views);
        for (i, out) in outs.iter().enumerate() {
            let target = batch.target(data, i);
            observe(i, out.view(), &target);
            let (l, _) = losses[i].value_and_grad(out.view(), &target);
            sums[i].0 += l.as_f64() * idx.len() as f64;
            sums[i].1 += count_correct(out.view(), &target, threshold(losses[i]));
        }
    }
    model.set_training(was_training);
    let n = data.len().max(1) as f64;
    let accuracies = (sums.iter().zip(losses))
        .map(|((_, c), loss)| loss.is_classification().then_some(*c as f64 / n))
        .collect();
    let losses: Vec<f64> = sums.iter().map(|(l, _)| l / n).collect();
    GraphMetrics {
        loss: losses.iter().zip(weights).map(|(l, w)| l * w).sum(),
        accuracies,
        losses,
    }
}

/// Every output of `model` for every sample of `inputs` (one array `[n, …]`
/// per input), in batches, in evaluation mode. No samples give each output's
/// shape with no rows, `[0, …]`.
pub fn predict_graph<T: Float, M: GraphModel<T>>(
    model: &mut M,
    inputs: &[ArrayViewD<'_, T>],
    batch_size: usize,
) -> Vec<ArrayD<T>> {
    let was_training = model.is_training();
    model.set_training(false);
    let n = inputs.first().map_or(0, |x| x.shape()[0]);
    let mut parts: Vec<Vec<ArrayD<T>>> = (0..M::OUTPUTS).map(|_| Vec::new()).collect();
    let mut start = 0;
    // No samples still make one (empty) batch: each output `[0, …]`.
    while start < n || parts.first().is_some_and(Vec::is_empty) {
        let end = (start + batch_size.max(1)).min(n);
        let views: Vec<ArrayViewD<'_, T>> = inputs
            .iter()
            .map(|x| x.slice_axis(Axis(0), (start..end).into()))
            .collect();
        for (i, out) in model.predict(&views).into_iter().enumerate() {
            parts[i].push(out);
        }
        start = end;
    }
    model.set_training(was_training);
    parts
        .iter()
        .map(|p| {
            let views: Vec<_> = p.iter().map(|a| a.view()).collect();
            nn_core::ndarray::concatenate(Axis(0), &views).expect("batches share their shape")
        })
        .collect()
}

/// The binary threshold Keras's accuracy uses with `loss`: 0 on logits, else 0.5.
fn threshold(loss: Loss) -> f64 {
    if matches!(loss, Loss::BinaryCrossEntropyWithLogits) {
        0.0
    } else {
        0.5
    }
}
