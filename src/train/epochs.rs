//! The epoch loop shared by [`fit`](super::fit) and
//! [`fit_custom`](super::fit_custom): shuffling, batches, the callbacks'
//! hooks, the NaN stop, validation, progress and the [`History`].

use std::time::Instant;

use nn_core::data::{Batches, Data};
use nn_core::loss::Target;
use nn_core::ndarray::ArrayViewD;
use nn_core::Float;

use super::callbacks::{epoch_end_hooks, train_end_hooks, BatchLogs, Callback, Context};
use super::checkpoint::run;
use super::checks;
use super::data_parallel;
use super::fit::{FitOptions, Verbosity};
use super::history::{EpochLogs, History};
use super::progress::Progress;
use super::step::{batch_begin_hooks, batch_end_hooks, defer};
use super::TrainError;
use crate::distributed::{self, Collective};

/// Validation's loss and metrics (unprefixed), or `None` when the trainer
/// has nothing to validate with.
pub(crate) type Validation = Option<(f64, Vec<(String, f64)>)>;

/// What the epoch loop drives: `fit`'s standard step or a user's [`TrainStep`](super::TrainStep).
pub(crate) trait Trainer<T: Float> {
    /// The parameters and optimizer, for callbacks.
    fn context(&mut self) -> Context<'_, T>;
    /// Training or evaluation mode.
    fn set_training(&mut self, training: bool);
    /// Resets the running metrics.
    fn begin_epoch(&mut self);
    /// Restarts the model's random draws (dropout) from `seed`.
    fn reseed(&mut self, seed: u64);
    /// The rate a per-step schedule is relative to (saved in checkpoints).
    fn lr_base(&self) -> f64;
    /// Restores [`Trainer::lr_base`] from a checkpoint.
    fn set_lr_base(&mut self, base: f64);
    /// Sets the learning rate for optimizer step `step`; returns it.
    fn set_step(&mut self, step: usize) -> f64;
    /// One batch, calling the callbacks' hooks that fall inside it; sets
    /// `logs.loss` and returns it, or `None` when a step produced no loss.
    fn batch(
        &mut self,
        x: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        logs: &mut BatchLogs,
        callbacks: &mut [Box<dyn Callback<T> + '_>],
    ) -> Result<Option<f64>, TrainError>;
    /// The running training metrics.
    fn metrics(&self) -> Vec<(String, f64)>;
    /// The training metrics over every rank of `group` (`samples`: this
    /// rank's); by default the ranks' values averaged by samples.
    fn reduced_metrics(&mut self, group: &dyn Collective, samples: usize) -> Vec<(String, f64)> {
        data_parallel::weighted_means(group, &self.metrics(), samples)
    }
    /// Loss and metrics on `data`, in evaluation mode.
    fn validate(&mut self, data: &dyn Data<T>, batch_size: usize) -> Validation;
    /// Every name the run will log, validation's included when `validation`;
    /// `None` until known (a custom step's, after its first batch).
    fn metric_names(&self, validation: bool) -> Option<Vec<String>>;

    /// Puts a sharded optimizer's state together from the ranks' shares
    /// (every rank calls it at the same points).
    fn gather_optimizer_state(&mut self) -> Result<(), TrainError> {
        Ok(())
    }
}

/// Runs the epochs; see [`fit`](super::fit).
pub(crate) fn run_epochs<T: Float>(
    trainer: &mut dyn Trainer<T>,
    data: &dyn Data<T>,
    mut settings: FitOptions<'_, T>,
) -> Result<History, TrainError> {
    // The step took what is its own (loss, metrics, clipping, schedule);
    // the loop runs on the rest.
    let callbacks = std::mem::take(&mut settings.callbacks);
    let group = settings.distributed;
    let root = group.is_none_or(|g| g.is_root());
    let validating = settings.validation.is_some();
    let run_settings = data_parallel::RunSettings {
        samples: data.len(),
        batch_size: settings.batch_size,
        epochs: settings.epochs,
        shuffle_seed: settings.shuffle_seed,
        sync_batch_norm: settings.sync_batch_norm,
        bucket_mb: settings.bucket_mb,
        shard_optimizer: data_parallel::sharding(group, settings.shard_optimizer).is_some(),
    };
    let mut callbacks = data_parallel::join_run(
        group,
        trainer.context().params,
        &run_settings,
        &[],
        &mut settings.verbosity,
        callbacks,
    )?;
    // Training-mode batch norm sums its statistics over the ranks until the
    // run ends (evaluation uses running statistics and sums nothing).
    let synced = group.filter(|_| settings.sync_batch_norm);
    let mut train = || -> Result<History, TrainError> {
        let mut monitors_checked = false;
        if let Some(names) = trainer.metric_names(validating) {
            checks::check_monitors(&callbacks, &names)?;
            monitors_checked = true;
        }
        let resumed = match &settings.resume_from {
            Some(dir) => run::resume(trainer.context(), dir, &mut callbacks),
            None => Ok(None),
        };
        let (mut history, start_epoch, mut step) = match data_parallel::agree(group, resumed)? {
            Some(r) => {
                trainer.set_lr_base(r.lr_base);
                (r.history, r.epoch, r.step)
            }
            None => (History::default(), 0, 0),
        };
        data_parallel::check_resumed_alike(group, start_epoch, step, &history)?;
        if history.stopped.is_some() {
            return Ok(history);
        }
        if let Some(g) = group {
            distributed::broadcast_parameters(g, trainer.context().params);
        }
        let mut begun = match settings.checkpoint_dir.as_ref().filter(|_| root) {
            Some(dir) => run::prepare_dir(dir),
            None => Ok(()),
        };
        for cb in callbacks.iter_mut() {
            if begun.is_ok() {
                begun = cb.on_train_begin(&mut trainer.context());
            }
        }
        data_parallel::agree(group, begun)?;
        let mut deferred = None;
        let mut stopped_at = None;
        'epochs: for epoch in start_epoch..settings.epochs {
            trainer.set_training(true);
            trainer.begin_epoch();
            if let Some(s) = settings.shuffle_seed {
                // Each epoch's dropout masks from the seed and the epoch alone, so
                // a run resumed at an epoch draws what the uninterrupted one did.
                let mut epoch_seed = nn_core::layers::mix_seed(s, epoch as u64);
                if let Some(g) = group {
                    // Each rank masks its own samples with masks of its own.
                    epoch_seed = nn_core::layers::mix_seed(epoch_seed, g.rank() as u64);
                }
                trainer.reseed(epoch_seed);
                // And the masks a tape model draws from its tapes' sources.
                nn_core::tape::reseed_new_tapes(epoch_seed);
            }
            let seed = settings
                .shuffle_seed
                .map(|s| nn_core::data::epoch_seed(s, epoch));
            let mut batches = Batches::new(data, settings.batch_size, seed, settings.drop_last);
            if let Some(g) = group {
                batches = batches.sharded(g.rank(), g.size());
            }
            let mut progress =
                Progress::new(settings.verbosity, epoch, settings.epochs, batches.count());
            let start = Instant::now();
            let (mut loss_sum, mut seen) = (0.0, 0usize);
            let mut batch = 0;
            let mut not_finite = None;
            while let Some((x, y)) = batches.next_batch() {
                let mut logs = BatchLogs {
                    epoch: epoch + 1,
                    batch,
                    step,
                    size: y.len(),
                    loss: f64::NAN,
                    lr: trainer.set_step(step),
                };
                // One process stops at an error at once; a rank of a
                // data-parallel run keeps it until the batch's end, where
                // every rank learns of it (the others would wait for its sums).
                let parallel = group.is_some();
                let mut failure = None;
                let ctx = &mut trainer.context();
                batch_begin_hooks(&mut callbacks, &logs, ctx, parallel, &mut failure)?;
                let loss = trainer.batch(x.view(), &y, &mut logs, &mut callbacks);
                let loss = defer(parallel, &mut failure, loss)?;
                if let Some(l) = loss.filter(|l| !l.is_finite()) {
                    // Every rank has the whole batch's loss: all stop here.
                    // A rank's deferred error waits for the agreement after
                    // the epochs, which every rank reaches.
                    if let Some(e) = failure {
                        deferred = Some(e);
                    }
                    not_finite = Some((batch, l, first_not_finite(x.view(), &y)));
                    break;
                }
                if !monitors_checked {
                    if let Some(names) = trainer.metric_names(validating) {
                        checks::check_monitors(&callbacks, &names)?;
                        monitors_checked = true;
                    }
                }
                loss_sum += logs.loss * logs.size as f64;
                seen += logs.size;
                step += 1;
                batch += 1;
                let ctx = &mut trainer.context();
                let stop = batch_end_hooks(&mut callbacks, &logs, ctx, parallel, &mut failure)?;
                let stop = data_parallel::agree_on_batch(group, failure, stop)?;
                progress.batch(seen, start.elapsed().as_secs_f64(), &mut || {
                    let mut shown = vec![("loss".to_string(), loss_sum / seen as f64)];
                    shown.extend(trainer.metrics());
                    shown
                });
                if let Some(reason) = stop {
                    progress.abandon(&reason);
                    history.stopped = Some(reason);
                    break 'epochs;
                }
            }
            if let Some((batch, loss, culprit)) = not_finite {
                let reason = non_finite_reason(epoch, batch, loss, culprit, batches.last_indices());
                progress.abandon(&reason);
                history.stopped = Some(reason);
                break 'epochs;
            }
            let (loss_sum, local_seen) = (loss_sum, seen);
            let (loss_sum, seen, metrics) = match group {
                None => (loss_sum, seen, trainer.metrics()),
                Some(g) => {
                    let mut sums = [loss_sum, seen as f64];
                    distributed::sum(g, &mut sums);
                    // Every rank validates and saves with rank 0's buffers.
                    distributed::broadcast_buffers(g, trainer.context().params);
                    let metrics = trainer.reduced_metrics(g, local_seen);
                    // Callbacks and checkpoints see the whole state.
                    trainer.gather_optimizer_state()?;
                    (sums[0], sums[1] as usize, metrics)
                }
            };
            let seconds = start.elapsed().as_secs_f64();
            let mut logs = EpochLogs {
                epoch: epoch + 1,
                loss: loss_sum / seen.max(1) as f64,
                metrics,
                lr: trainer.context().optimizer.learning_rate(),
                seconds,
                samples_per_sec: seen as f64 / seconds.max(1e-9),
                ..EpochLogs::default()
            };
            if let Some(val) = settings.validation {
                if let Some((loss, metrics)) = trainer.validate(val, settings.batch_size.max(256)) {
                    logs.val_loss = Some(loss);
                    logs.val_metrics = metrics
                        .into_iter()
                        .map(|(n, v)| (format!("val_{n}"), v))
                        .collect();
                    if !loss.is_finite() {
                        // The epoch trained: its logs stay in the History,
                        // the validation loss as it came out.
                        let reason = non_finite_validation(epoch, loss, val);
                        progress.abandon(&reason);
                        history.epochs.push(logs);
                        history.stopped = Some(reason);
                        break 'epochs;
                    }
                }
            }
            progress.finish(&logs);
            history.epochs.push(logs.clone());
            // Every callback sees the epoch (a logger after an early stop too);
            // then the first request to stop wins.
            let (stop, mut ended) = epoch_end_hooks(&mut callbacks, &logs, &mut trainer.context());
            let stop = data_parallel::agree_to_stop(group, stop);
            if let Some(dir) = settings
                .checkpoint_dir
                .as_ref()
                .filter(|_| root && ended.is_ok())
            {
                let mut saved = history.clone();
                saved.stopped = stop.clone();
                let state = run::RunState {
                    history: saved,
                    epoch: epoch + 1,
                    step,
                    lr_base: trainer.lr_base(),
                };
                // Stopping here: the loop ends after this save.
                stopped_at = stop.is_some().then(|| state.clone());
                ended = run::save(trainer.context(), dir, state, &callbacks);
            }
            data_parallel::agree(group, ended)?;
            if let Some(reason) = stop {
                if settings.verbosity != Verbosity::Silent {
                    println!("{reason}");
                }
                history.stopped = Some(reason);
                break 'epochs;
            }
        }
        let ended = match deferred {
            Some(e) => Err(e),
            None => train_end_hooks(&mut callbacks, &mut trainer.context()),
        };
        data_parallel::agree(group, ended)?;
        trainer.gather_optimizer_state()?;
        let dir = settings.checkpoint_dir.as_deref();
        let rewritten = run::save_stopped(trainer.context(), dir, stopped_at, &callbacks);
        data_parallel::agree(group, rewritten)?;
        Ok(history)
    };
    match synced {
        Some(g) => distributed::with_sync_batch_norm(g, train),
        None => train(),
    }
}

/// Where a batch holds a value that is not finite: its row, `input` or
/// `target`, and the value.
type Culprit = Option<(usize, &'static str, f64)>;

fn first_not_finite<T: Float>(x: ArrayViewD<'_, T>, y: &Target<'_, T>) -> Culprit {
    let row = |a: &ArrayViewD<'_, T>, what| {
        let per = a.len() / a.shape().first().copied().unwrap_or(1).max(1);
        a.iter().position(|v| !v.is_finite()).map(|i| {
            (
                i / per.max(1),
                what,
                a.iter().nth(i).map_or(f64::NAN, |v| v.as_f64()),
            )
        })
    };
    row(&x, "input").or_else(|| match y {
        Target::Values(v) => row(v, "target"),
        Target::Labels(_) => None,
    })
}

/// Why training stopped at a loss that is not finite: the data's fault
/// (naming the sample) or the training's.
fn non_finite_reason(
    epoch: usize,
    batch: usize,
    loss: f64,
    culprit: Culprit,
    samples: &[usize],
) -> String {
    let at = format!(
        "loss became {loss} at epoch {}, batch {} (samples {:?}…)",
        epoch + 1,
        batch + 1,
        &samples[..samples.len().min(4)]
    );
    match culprit {
        Some((row, what, value)) => format!(
            "{at}: the {what} of sample {} is {value}; stopping (fix or drop that sample)",
            samples.get(row).copied().unwrap_or(row)
        ),
        None => format!(
            "{at}: the batch's inputs and targets are finite, so the model made it (training \
             diverged, or its weights are not finite); stopping (a smaller learning rate or \
             gradient clipping usually helps; for a tape model, nn::tape::detect_anomaly() \
             names the op that made it)"
        ),
    }
}

/// Why training stopped at a validation loss that is not finite.
fn non_finite_validation<T: Float>(epoch: usize, loss: f64, val: &dyn Data<T>) -> String {
    let mut batches = Batches::new(val, 256, None, false);
    while let Some((x, y)) = batches.next_batch() {
        if let Some((row, what, value)) = first_not_finite(x, &y) {
            let sample = batches.last_indices()[row];
            return format!(
                "validation loss became {loss} at epoch {}: the {what} of validation sample {sample} is {value}; stopping",
                epoch + 1
            );
        }
    }
    format!(
        "validation loss became {loss} at epoch {} with finite validation data: the model's outputs overflow; stopping",
        epoch + 1
    )
}
