//! Callbacks: hooks into [`fit`](super::fit) at the start, around every
//! batch (with the gradients before the optimizer's step) and after each
//! epoch — checkpoints, early stopping, learning-rate schedules, CSV logging.

use std::any::Any;
use std::io::Write;
use std::path::PathBuf;

use nn_core::io::{collect_state, save_params};
use nn_core::ndarray::ArrayD;
use nn_core::{Float, Param, Parameters};
use nn_optim::{Optimizer, ReduceLrOnPlateau, Schedule};

use super::file_template;
use super::history::EpochLogs;
use super::TrainError;

/// What a callback sees: the model's parameters (their gradients too, in
/// [`Callback::on_before_optimizer_step`]) and the optimizer.
pub struct Context<'a, T: Float> {
    /// The model's parameters.
    pub params: &'a dyn Parameters<T>,
    /// The optimizer (to change its learning rate, or save its state).
    pub optimizer: &'a mut dyn Optimizer<T>,
}

/// Whether training goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Next batch or epoch.
    Continue,
    /// Stop, for this reason.
    Stop(String),
}

/// Where training is, for the per-batch hooks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLogs {
    /// 1-based epoch.
    pub epoch: usize,
    /// 0-based batch within the epoch.
    pub batch: usize,
    /// 0-based optimizer step since `fit` began (batches of earlier epochs included).
    pub step: usize,
    /// Samples in the batch.
    pub size: usize,
    /// The batch's mean loss (NaN before the batch has run).
    pub loss: f64,
    /// The learning rate of this batch's step.
    pub lr: f64,
}

/// Hooks into [`fit`](super::fit). Every hook has a default that does
/// nothing, so a callback implements only what it needs.
pub trait Callback<T: Float> {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        Ok(())
    }

    /// Before each batch's forward pass (after a per-step schedule set its rate).
    fn on_train_batch_begin(
        &mut self,
        _batch: &BatchLogs,
        _ctx: &mut Context<'_, T>,
    ) -> Result<(), TrainError> {
        Ok(())
    }

    /// After backward, before gradient clipping and the optimizer's step:
    /// the gradients are in `ctx.params` (read them, log them, change them).
    fn on_before_optimizer_step(
        &mut self,
        _batch: &BatchLogs,
        _ctx: &mut Context<'_, T>,
    ) -> Result<(), TrainError> {
        Ok(())
    }

    /// After the optimizer's step.
    fn on_train_batch_end(
        &mut self,
        _batch: &BatchLogs,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        Ok(Control::Continue)
    }

    /// After each epoch (validation included).
    fn on_epoch_end(
        &mut self,
        _logs: &EpochLogs,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        Ok(Control::Continue)
    }

    /// When training ends, after the last epoch's hooks: whether the epochs
    /// ran out or training was stopped (Keras's `on_train_end`); not after
    /// an error.
    fn on_train_end(&mut self, _ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        Ok(())
    }

    /// The metrics this callback reads from the epoch's logs: `fit` refuses to
    /// start when one of them will never be logged.
    fn monitors(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Whether it sets the optimizer's learning rate: `fit` refuses to start
    /// it beside a per-step `lr_schedule`, which would overwrite its rate.
    fn sets_learning_rate(&self) -> bool {
        false
    }

    /// What the callback must remember when a run resumes (a best value,
    /// epochs waited), saved in each checkpoint (after a stop at an epoch's
    /// end, as it stands after `on_train_end`); `None` when nothing.
    fn state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Takes back what [`Callback::state`] saved, before `on_train_begin`
    /// of the resumed run; an error says why the state does not fit.
    fn restore(&mut self, _state: &serde_json::Value) -> Result<(), String> {
        Ok(())
    }

    /// Whether only rank 0 of a data-parallel run calls this callback's
    /// hooks: those that write files (logs, weights) say so, to write them
    /// once. The others run on every rank, with the same logs everywhere.
    fn root_only(&self) -> bool {
        false
    }
}

/// Every callback's `on_epoch_end`, in order, until one fails: the first
/// stop asked for (if any) and the first error (if any).
pub(crate) fn epoch_end_hooks<T: Float>(
    callbacks: &mut [Box<dyn Callback<T> + '_>],
    logs: &EpochLogs,
    ctx: &mut Context<'_, T>,
) -> (Option<String>, Result<(), TrainError>) {
    let mut stop = None;
    for cb in callbacks.iter_mut() {
        match cb.on_epoch_end(logs, ctx) {
            Ok(Control::Stop(reason)) => {
                stop.get_or_insert(reason);
            }
            Ok(Control::Continue) => {}
            Err(e) => return (stop, Err(e)),
        }
    }
    (stop, Ok(()))
}

/// Every callback's `on_train_end`, in order, until one fails.
pub(crate) fn train_end_hooks<T: Float>(
    callbacks: &mut [Box<dyn Callback<T> + '_>],
    ctx: &mut Context<'_, T>,
) -> Result<(), TrainError> {
    callbacks.iter_mut().try_for_each(|cb| cb.on_train_end(ctx))
}

/// A root-only callback on another rank of a data-parallel run: it keeps
/// its state (a checkpoint's count of callbacks still matches) but does
/// nothing.
pub(crate) struct Muted<'a, T: Float>(pub Box<dyn Callback<T> + 'a>);

impl<T: Float> Callback<T> for Muted<'_, T> {
    fn monitors(&self) -> Vec<&str> {
        self.0.monitors()
    }
    fn sets_learning_rate(&self) -> bool {
        self.0.sets_learning_rate()
    }
    fn state(&self) -> Option<serde_json::Value> {
        self.0.state()
    }
    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.0.restore(state)
    }
}

/// A float as JSON that parses back to the same bits.
fn float_state(v: Option<f64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |v| v.to_bits().into())
}

/// Reads [`float_state`]'s JSON.
fn float_from(v: Option<&serde_json::Value>) -> Result<Option<f64>, String> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|b| Some(f64::from_bits(b)))
            .ok_or_else(|| format!("not a saved float: {v}")),
    }
}

/// A metric to watch and which direction is better.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitor {
    /// Keras's metric name (`"val_loss"`, `"val_accuracy"`, …).
    pub metric: String,
    /// Whether higher is better (by default, for names containing `accuracy`).
    pub higher_is_better: bool,
}

impl Monitor {
    /// Watches `metric`, with Keras's "auto" direction: accuracies up, the rest down.
    pub fn new(metric: &str) -> Self {
        Monitor {
            metric: metric.to_string(),
            higher_is_better: metric.contains("accuracy"),
        }
    }

    fn value(&self, logs: &EpochLogs) -> Option<f64> {
        logs.get(&self.metric)
    }

    fn improves(&self, value: f64, best: Option<f64>, min_delta: f64) -> bool {
        match best {
            None => true,
            Some(b) if self.higher_is_better => value > b + min_delta,
            Some(b) => value < b - min_delta,
        }
    }
}

/// Saves the model's weights (and the optimizer's state beside them, as
/// `<name>.optim.safetensors`, unless [`ModelCheckpoint::weights_only`])
/// after each epoch, or only when the monitored
/// metric improves. Files are written atomically (temporary file, then
/// rename), into a directory made when training starts if missing.
///
/// As in Keras, the file name may hold the epoch and the logged metrics in
/// Python's format: `"w.{epoch:02d}-{val_loss:.2f}.safetensors"` writes
/// `w.03-0.12.safetensors` after the third epoch (a file per epoch, or per
/// improvement); specs are `[0][width][.precision][d|f|e]`, `{{` a brace.
/// `fit` refuses a name it cannot fill before training.
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: Monitor,
    save_best_only: bool,
    best: Option<f64>,
    /// Leave out the optimizer's state (Keras's `save_weights_only=True`).
    weights_only: bool,
}

impl ModelCheckpoint {
    /// Saves to `path` whenever `metric` improves (Keras's `save_best_only=True`).
    pub fn best(path: impl Into<PathBuf>, metric: &str) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: Monitor::new(metric),
            save_best_only: true,
            best: None,
            weights_only: false,
        }
    }

    /// Saves to `path` after every epoch.
    pub fn every_epoch(path: impl Into<PathBuf>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: Monitor::new("loss"),
            save_best_only: false,
            best: None,
            weights_only: false,
        }
    }

    /// Writes the weights alone, without the optimizer's state beside them
    /// (Keras's `save_weights_only=True`): smaller files, for inference or
    /// for picking the best epoch, not for resuming training.
    ///
    /// ```
    /// let best = nn::train::ModelCheckpoint::best("best.safetensors", "val_loss").weights_only();
    /// ```
    pub fn weights_only(mut self) -> Self {
        self.weights_only = true;
        self
    }

    /// Where the optimizer's state goes, beside the weights' file `path`
    /// (the file name as filled for an epoch, or as given).
    pub fn optimizer_path_of(path: &std::path::Path) -> PathBuf {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!("{stem}.optim.safetensors"))
    }

    /// Where the optimizer's state goes, for a file name without fields.
    pub fn optimizer_path(&self) -> PathBuf {
        Self::optimizer_path_of(&self.path)
    }

    /// The file name as text, for filling its fields.
    fn template(&self) -> std::borrow::Cow<'_, str> {
        self.path.to_string_lossy()
    }

    /// The weights' file after the epoch of `logs`.
    fn path_for(&self, logs: &EpochLogs) -> Result<PathBuf, TrainError> {
        file_template::fill(&self.template(), logs)
            .map(PathBuf::from)
            .map_err(TrainError::Config)
    }
}

impl<T: Float> Callback<T> for ModelCheckpoint {
    fn root_only(&self) -> bool {
        true
    }

    /// The monitored metric, and those the file name reads.
    fn monitors(&self) -> Vec<&str> {
        let mut read: Vec<&str> = match self.save_best_only {
            true => vec![&self.monitor.metric],
            false => Vec::new(),
        };
        if let std::borrow::Cow::Borrowed(template) = self.template() {
            read.extend(file_template::metrics_named(template).unwrap_or_default());
        }
        read
    }

    /// Makes the file's directory (as Keras does) before the first epoch,
    /// so that a path that cannot be written fails before any training, and
    /// refuses a file name whose fields cannot be filled.
    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        file_template::metrics_named(&self.template()).map_err(TrainError::Config)?;
        // A directory named by fields is made when its file is saved.
        let fixed = |d: &&std::path::Path| !d.to_string_lossy().contains(['{', '}']);
        match (self.path.parent())
            .filter(|d| !d.as_os_str().is_empty())
            .filter(fixed)
        {
            Some(dir) => nn_core::io::create_dir_all(dir).map_err(|source| TrainError::File {
                path: dir.to_path_buf(),
                source,
            }),
            None => Ok(()),
        }
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "best": float_state(self.best) }))
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.best = float_from(state.get("best"))?;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        let value = self.monitor.value(logs);
        let save =
            !self.save_best_only || value.is_some_and(|v| self.monitor.improves(v, self.best, 0.0));
        if save {
            if self.save_best_only {
                self.best = value;
            }
            let path = self.path_for(logs)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                // A field in the directory's name makes a directory per file.
                nn_core::io::create_dir_all(dir).map_err(|source| TrainError::File {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            save_params(&path, &collect_state(ctx.params))?;
            if !self.weights_only {
                ctx.optimizer.state().save(Self::optimizer_path_of(&path))?;
            }
        }
        Ok(Control::Continue)
    }
}

/// Stops when the monitored metric has not improved by more than `min_delta`
/// for `patience` epochs (Keras's `EarlyStopping`); with
/// [`EarlyStopping::restore_best_weights`], the model ends with the weights
/// of its best epoch.
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    min_delta: f64,
    best: Option<f64>,
    waited: usize,
    /// The weights and buffers at the end of the best epoch so far (a
    /// `Vec<ArrayD<T>>`), and that epoch, when restoring.
    best_weights: Option<(Box<dyn Any>, usize)>,
    restore_best_weights: bool,
}

impl EarlyStopping {
    /// Watches `metric` with the given patience and no minimum improvement.
    pub fn new(metric: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: Monitor::new(metric),
            patience,
            min_delta: 0.0,
            best: None,
            waited: 0,
            best_weights: None,
            restore_best_weights: false,
        }
    }

    /// Requires improvements larger than `min_delta`.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// When training ends, stopped or not, puts back the parameters and
    /// buffers (BatchNorm's running statistics) of the epoch with the best
    /// value of the metric (Keras's `restore_best_weights=True`). They are
    /// copied at each improvement; a run resumed from a checkpoint restores
    /// only an epoch it trained itself that beat the best before the resume
    /// (else it keeps the last epoch's). After a stop at an epoch's end,
    /// `fit` (and `fit_custom`, `fit_graph`) writes its checkpoint once more
    /// with the restored weights, so running the stopped run again gives
    /// them; a run whose epochs ran out, or that stopped inside an epoch,
    /// keeps its last epoch's checkpoint as it was, so that resuming it goes
    /// on exactly.
    ///
    /// ```
    /// let stop = nn::train::EarlyStopping::new("val_loss", 5).restore_best_weights();
    /// ```
    pub fn restore_best_weights(mut self) -> Self {
        self.restore_best_weights = true;
        self
    }
}

/// Copies of every distinct parameter's value and every buffer, in visit order.
fn weights_of<T: Float>(params: &dyn Parameters<T>) -> Vec<ArrayD<T>> {
    let mut all = Vec::new();
    nn_core::visit_distinct_params(params, &mut |_, p| all.push(p.value().clone()));
    params.visit_buffers(&mut |_, b| all.push(b.value().clone()));
    all
}

/// Writes [`weights_of`]'s copies back, in the same order.
fn put_back<T: Float>(params: &dyn Parameters<T>, saved: &[ArrayD<T>]) {
    let mut saved = saved.iter();
    let mut next = |p: &Param<T>| {
        let v = saved
            .next()
            .expect("the model's parameters changed since the copy");
        p.value_mut().assign(v);
    };
    nn_core::visit_distinct_params(params, &mut |_, p| next(p));
    params.visit_buffers(&mut |_, b| next(b));
}

impl<T: Float> Callback<T> for EarlyStopping {
    fn monitors(&self) -> Vec<&str> {
        vec![&self.monitor.metric]
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "best": float_state(self.best), "waited": self.waited }))
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.best = float_from(state.get("best"))?;
        self.waited = state
            .get("waited")
            .and_then(|w| w.as_u64())
            .ok_or("no `waited`")? as usize;
        Ok(())
    }

    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        // Another `fit` with the same callback starts without old weights.
        self.best_weights = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        let Some(v) = self.monitor.value(logs) else {
            return Ok(Control::Continue);
        };
        let improves = self.monitor.improves(v, self.best, self.min_delta);
        // The first epoch with a value improves on nothing, so it is copied;
        // after a resume, only an epoch better than the best before it.
        if self.restore_best_weights && improves {
            let copy: Box<dyn Any> = Box::new(weights_of(ctx.params));
            self.best_weights = Some((copy, logs.epoch));
        }
        if improves {
            self.best = Some(v);
            self.waited = 0;
            return Ok(Control::Continue);
        }
        self.waited += 1;
        if self.waited >= self.patience {
            let restoring = match &self.best_weights {
                Some((_, epoch)) => format!("; restoring the weights of epoch {epoch}"),
                None => String::new(),
            };
            return Ok(Control::Stop(format!(
                "early stopping: {} did not improve for {} epochs (best {:.4}){restoring}",
                self.monitor.metric,
                self.patience,
                self.best.unwrap_or(f64::NAN)
            )));
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        if let Some((copy, _)) = self.best_weights.take() {
            let saved = copy
                .downcast::<Vec<ArrayD<T>>>()
                .expect("EarlyStopping: the weights were copied from this element type");
            put_back(ctx.params, &saved);
        }
        Ok(())
    }
}

/// Sets the learning rate from a [`Schedule`] at the start of each epoch
/// (epoch `e`, counting from 0, gets `schedule.lr(base, e)`).
pub struct ScheduleEachEpoch<S> {
    schedule: S,
    base: Option<f64>,
}

impl<S: Schedule> ScheduleEachEpoch<S> {
    /// Drives `schedule` from the optimizer's learning rate at the start.
    pub fn new(schedule: S) -> Self {
        ScheduleEachEpoch {
            schedule,
            base: None,
        }
    }
}

impl<T: Float, S: Schedule> Callback<T> for ScheduleEachEpoch<S> {
    fn sets_learning_rate(&self) -> bool {
        true
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        // A resumed run keeps its base; the optimizer already has its rate.
        if self.base.is_none() {
            let base = ctx.optimizer.learning_rate();
            self.base = Some(base);
            ctx.optimizer.set_learning_rate(self.schedule.lr(base, 0));
        }
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "base": float_state(self.base) }))
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.base = float_from(state.get("base"))?;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        let base = self.base.expect("on_train_begin ran");
        ctx.optimizer
            .set_learning_rate(self.schedule.lr(base, logs.epoch));
        Ok(Control::Continue)
    }
}

/// Lowers the learning rate when a metric plateaus ([`ReduceLrOnPlateau`]).
pub struct PlateauOnMetric {
    plateau: ReduceLrOnPlateau,
    metric: String,
}

impl PlateauOnMetric {
    /// Feeds `metric` (e.g. `"val_loss"`) to `plateau` after each epoch.
    pub fn new(plateau: ReduceLrOnPlateau, metric: &str) -> Self {
        PlateauOnMetric {
            plateau,
            metric: metric.to_string(),
        }
    }
}

impl<T: Float> Callback<T> for PlateauOnMetric {
    fn monitors(&self) -> Vec<&str> {
        vec![&self.metric]
    }

    fn sets_learning_rate(&self) -> bool {
        true
    }

    fn state(&self) -> Option<serde_json::Value> {
        let st = self.plateau.state();
        Some(serde_json::json!({
            "best": float_state(Some(st.best)),
            "bad_steps": st.bad_steps,
            "cooldown_left": st.cooldown_left,
        }))
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        let count = |key: &str| {
            state
                .get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| format!("no `{key}`"))
        };
        self.plateau.restore(nn_optim::PlateauState {
            best: float_from(state.get("best"))?.ok_or("no `best`")?,
            bad_steps: count("bad_steps")?,
            cooldown_left: count("cooldown_left")?,
        });
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        if let Some(v) = logs.get(&self.metric) {
            self.plateau.step(v, ctx.optimizer);
        }
        Ok(Control::Continue)
    }
}

/// Whether the byte before `at` in the file at `path` is a newline.
fn ends_a_row(path: &std::path::Path, at: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(at - 1))?;
    let mut byte = [0u8];
    f.read_exact(&mut byte)?;
    Ok(byte[0] == b'\n')
}

/// Writes each epoch's metrics to a CSV file (the header, from the first
/// epoch's metrics, first), flushed every epoch.
pub struct CsvLogger {
    path: PathBuf,
    file: Option<std::fs::File>,
    wrote_header: bool,
    /// Bytes written so far; a resumed run cuts the file back to them (rows
    /// written after the checkpoint belong to the epoch being redone).
    written: u64,
    resumed: bool,
}

impl CsvLogger {
    /// Logs to `path` (replacing it).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            file: None,
            wrote_header: false,
            written: 0,
            resumed: false,
        }
    }
}

impl<T: Float> Callback<T> for CsvLogger {
    fn root_only(&self) -> bool {
        true
    }

    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        let err = |source| TrainError::File {
            path: self.path.clone(),
            source,
        };
        // A resumed run continues the rows the checkpointed epochs wrote; a
        // log removed or emptied since starts afresh; one cut shorter is not
        // extended with zeros to the recorded length, nor one rewritten
        // since cut mid-row.
        let found = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(err(e)),
        };
        let keep = if self.resumed && found > 0 {
            self.written
        } else {
            0
        };
        let changed = |problem: String| {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{problem}: it was changed since (move it away to start a new log)"),
            ))
        };
        if keep > found {
            return Err(changed(format!(
                "the log holds {found} bytes, fewer than the {keep} it held at the checkpoint"
            )));
        }
        // The rows after the checkpoint are cut off, at a row's end.
        if keep > 0 && keep < found && !ends_a_row(&self.path, keep).map_err(err)? {
            return Err(changed(format!(
                "byte {keep}, where the checkpoint's rows end, does not end a row"
            )));
        }
        self.written = keep;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&self.path)
            .map_err(err)?;
        f.set_len(keep).map_err(err)?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(err)?;
        self.file = Some(f);
        self.wrote_header = keep > 0;
        Ok(())
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "bytes": self.written }))
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), String> {
        self.written = state
            .get("bytes")
            .and_then(|b| b.as_u64())
            .ok_or("no `bytes`")?;
        self.resumed = true;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        let err = |source| TrainError::File {
            path: self.path.clone(),
            source,
        };
        let f = self.file.as_mut().expect("on_train_begin opened the file");
        // The columns are known once the first epoch's metrics are.
        let mut text = String::new();
        if !self.wrote_header {
            text.push_str(&logs.csv_header());
            text.push('\n');
            self.wrote_header = true;
        }
        text.push_str(&logs.csv_row());
        text.push('\n');
        f.write_all(text.as_bytes()).map_err(err)?;
        f.flush().map_err(err)?;
        self.written += text.len() as u64;
        Ok(Control::Continue)
    }
}
