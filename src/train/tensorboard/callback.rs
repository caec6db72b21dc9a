//! The [`TensorBoard`] callback: Keras's `keras.callbacks.TensorBoard` for
//! [`fit`](crate::train::fit).

use std::path::PathBuf;

use nn_core::Float;

use super::event::{SummaryData, SummaryValue};
use super::parameters::{gradient_histograms, weight_histograms};
use super::writer::EventFileWriter;
use crate::train::callbacks::{BatchLogs, Callback, Context, Control};
use crate::train::history::EpochLogs;
use crate::train::TrainError;

/// Logs training to event files that `tensorboard --logdir DIR` shows, laid
/// out as Keras's `TensorBoard` callback lays them out:
///
/// - `DIR/train/events.out.tfevents.…`: each epoch's loss and metrics
///   (`epoch_loss`, `epoch_accuracy`, …) and learning rate
///   (`epoch_learning_rate`) at step `epoch − 1` (epochs count from 0, as in
///   Keras); every [`TensorBoard::update_freq_batches`] batches the epoch's
///   running loss and the learning rate (`batch_loss`, `batch_learning_rate`) at the
///   optimizer step (from 0, over the whole run); every
///   [`TensorBoard::histogram_freq`] epochs a histogram of each parameter,
///   tagged with its name (`dense.weight`), and of its gradient in the
///   epoch's last batch (`dense.weight_grad`).
/// - `DIR/validation/events.out.tfevents.…`: the validation loss and metrics,
///   their `val_` prefix dropped (`epoch_loss`, `epoch_accuracy`), so
///   TensorBoard draws them over the training curves. Written only when
///   `fit` validates.
///
/// Each run (each `fit`) opens new files, flushed at every epoch's end so a
/// running TensorBoard shows the progress. Failing to write is a
/// [`TrainError::File`] naming the file. [`read_events`](super::read_events)
/// reads the files back.
///
/// Gradients come from [`Callback::on_before_optimizer_step`], which
/// [`fit`](crate::train::fit) calls; with [`fit_custom`](crate::train::fit_custom)
/// and [`fit_graph`](crate::train::fit_graph) the histograms hold the
/// parameters only.
///
/// ```no_run
/// use nn::prelude::*;
/// use nn::train::TensorBoard;
///
/// sequential! {
///     struct Net: input(2) {
///         Dense(8, activation = relu),
///         Dense(2),
///     }
/// }
///
/// # fn main() -> Result<(), nn::train::TrainError> {
/// let x = nn::ndarray::array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let data = Dataset::new(x.into_dyn(), vec![0, 1, 1, 0]);
/// let mut model = Net::with_seed(0);
/// let mut opt = Adam::new(AdamConfig::default()).unwrap();
/// fit(
///     &mut model,
///     &mut opt,
///     &data,
///     FitOptions {
///         epochs: 20,
///         loss: Loss::CrossEntropy.into(),
///         validation: Some(&data),
///         callbacks: vec![Box::new(
///             TensorBoard::new("logs/xor").histogram_freq(5).update_freq_batches(10),
///         )],
///         ..Default::default()
///     },
/// )?;
/// // Then, in a shell: tensorboard --logdir logs
/// # Ok(())
/// # }
/// ```
pub struct TensorBoard {
    log_dir: PathBuf,
    /// Log `batch_` scalars every this many optimizer steps (`None`: per epoch only).
    batch_period: Option<usize>,
    /// Log histograms every this many epochs (0: never).
    histogram_freq: usize,
    write_grads: bool,
    write_throughput: bool,
    train: Option<EventFileWriter>,
    /// Opened at the first validation result, so a run without validation
    /// leaves no empty `validation` directory.
    validation: Option<EventFileWriter>,
    /// The gradient histograms of the latest batch of an epoch that logs
    /// histograms: `fit` clears gradients after each step, so the epoch's end
    /// cannot read them.
    latest_gradients: Vec<SummaryValue>,
    /// The epoch's losses so far, each times its batch's size, and the
    /// samples: `batch_loss` is their mean, as Keras's.
    epoch_loss: (f64, usize),
}

impl TensorBoard {
    /// Logs under `log_dir` (`log_dir/train`, `log_dir/validation`): the
    /// scalars once per epoch, no histograms (Keras's defaults).
    ///
    /// ```no_run
    /// let callback = nn::train::TensorBoard::new("logs/run1");
    /// ```
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        TensorBoard {
            log_dir: log_dir.into(),
            batch_period: None,
            histogram_freq: 0,
            write_grads: true,
            write_throughput: false,
            train: None,
            validation: None,
            latest_gradients: Vec::new(),
            epoch_loss: (0.0, 0),
        }
    }

    /// Also logs the loss and learning rate of every `n`-th batch
    /// (`batch_loss` and `batch_learning_rate` at steps 0, n, 2n, … counted
    /// over the whole run; Keras's `update_freq=n`). The loss is Keras's
    /// running mean over the epoch's batches so far (each weighted by its
    /// samples), so the epoch's last batch logs the epoch's loss. `fit`
    /// refuses to start when `n` is 0.
    ///
    /// ```no_run
    /// let callback = nn::train::TensorBoard::new("logs/run1").update_freq_batches(100);
    /// ```
    pub fn update_freq_batches(mut self, n: usize) -> Self {
        self.batch_period = Some(n);
        self
    }

    /// Logs a histogram of every parameter, and of its gradient, every
    /// `epochs` epochs: epochs 0, `epochs`, 2 · `epochs`, … counted from 0 as
    /// Keras counts them; 0 (the default) logs none. Histograms have 30
    /// equal-width buckets, as TensorFlow 2's `tf.summary.histogram`.
    ///
    /// ```no_run
    /// let callback = nn::train::TensorBoard::new("logs/run1").histogram_freq(1);
    /// ```
    pub fn histogram_freq(mut self, epochs: usize) -> Self {
        self.histogram_freq = epochs;
        self
    }

    /// Whether histograms include the gradients (true by default). Capturing
    /// them reads every gradient after each batch of an epoch that logs
    /// histograms, as the last batch is not known in advance; `false` saves
    /// that pass.
    ///
    /// ```no_run
    /// let callback = nn::train::TensorBoard::new("logs/run1")
    ///     .histogram_freq(1)
    ///     .write_grads(false);
    /// ```
    pub fn write_grads(mut self, write: bool) -> Self {
        self.write_grads = write;
        self
    }

    /// Whether to log each epoch's duration and throughput (`epoch_seconds`,
    /// `epoch_samples_per_sec`; false by default, like Keras's
    /// `write_steps_per_second`).
    ///
    /// ```no_run
    /// let callback = nn::train::TensorBoard::new("logs/run1").write_throughput(true);
    /// ```
    pub fn write_throughput(mut self, write: bool) -> Self {
        self.write_throughput = write;
        self
    }

    /// Whether the epoch counted `epoch_index` (from 0) logs histograms.
    fn logs_histograms(&self, epoch_index: usize) -> bool {
        self.histogram_freq > 0 && epoch_index.is_multiple_of(self.histogram_freq)
    }

    fn train_writer(&mut self) -> &mut EventFileWriter {
        self.train
            .as_mut()
            .expect("on_train_begin opened the training event file")
    }

    fn validation_writer(&mut self) -> Result<&mut EventFileWriter, TrainError> {
        if self.validation.is_none() {
            self.validation = Some(EventFileWriter::create(&self.log_dir.join("validation"))?);
        }
        Ok(self.validation.as_mut().expect("opened above"))
    }

    fn flush(&mut self) -> Result<(), TrainError> {
        for writer in [&mut self.train, &mut self.validation]
            .into_iter()
            .flatten()
        {
            writer.flush()?;
        }
        Ok(())
    }
}

/// Which file an epoch's value goes to.
#[derive(Debug, PartialEq, Eq)]
enum Split {
    Train,
    Validation,
}

/// The file and tag of an epoch's value by its [`EpochLogs::entries`] name
/// (Keras's tags: `epoch_` before the name, `val_` dropped in the
/// validation file), or `None` when it is not logged.
fn epoch_tag(name: &str, write_throughput: bool) -> Option<(Split, String)> {
    match name {
        "lr" => Some((Split::Train, "epoch_learning_rate".into())),
        "seconds" | "samples_per_sec" if !write_throughput => None,
        _ => Some(match name.strip_prefix("val_") {
            Some(metric) => (Split::Validation, format!("epoch_{metric}")),
            None => (Split::Train, format!("epoch_{name}")),
        }),
    }
}

fn scalar(tag: impl Into<String>, value: f64) -> SummaryValue {
    SummaryValue {
        tag: tag.into(),
        // Event files hold 32-bit scalars.
        data: SummaryData::Scalar(value as f32),
    }
}

impl<T: Float> Callback<T> for TensorBoard {
    fn root_only(&self) -> bool {
        true
    }

    fn on_train_begin(&mut self, _ctx: &mut Context<'_, T>) -> Result<(), TrainError> {
        if self.batch_period == Some(0) {
            return Err(TrainError::Config(
                "TensorBoard: update_freq_batches(0): log every 1 batch or more".into(),
            ));
        }
        self.train = Some(EventFileWriter::create(&self.log_dir.join("train"))?);
        self.validation = None;
        self.latest_gradients.clear();
        Ok(())
    }

    fn on_before_optimizer_step(
        &mut self,
        batch: &BatchLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<(), TrainError> {
        if self.write_grads && self.logs_histograms(batch.epoch - 1) {
            self.latest_gradients.clear();
            gradient_histograms(ctx.params, &mut self.latest_gradients);
        }
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: &BatchLogs,
        _ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        if batch.batch == 0 {
            self.epoch_loss = (0.0, 0);
        }
        let (sum, samples) = &mut self.epoch_loss;
        *sum += batch.loss * batch.size as f64;
        *samples += batch.size;
        let running_mean = *sum / *samples as f64;
        if let Some(period) = self.batch_period {
            if batch.step.is_multiple_of(period) {
                let values = vec![
                    scalar("batch_loss", running_mean),
                    scalar("batch_learning_rate", batch.lr),
                ];
                self.train_writer()
                    .write_summary(batch.step as i64, values)?;
            }
        }
        Ok(Control::Continue)
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        let epoch_index = logs.epoch - 1;
        let step = epoch_index as i64;
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for (name, value) in logs.entries() {
            match epoch_tag(name, self.write_throughput) {
                Some((Split::Train, tag)) => train.push(scalar(tag, value)),
                Some((Split::Validation, tag)) => validation.push(scalar(tag, value)),
                None => {}
            }
        }
        self.train_writer().write_summary(step, train)?;
        if !validation.is_empty() {
            self.validation_writer()?.write_summary(step, validation)?;
        }
        if self.logs_histograms(epoch_index) {
            let mut histograms = weight_histograms(ctx.params);
            histograms.append(&mut self.latest_gradients);
            self.train_writer().write_summary(step, histograms)?;
        }
        self.latest_gradients.clear();
        self.flush()?;
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_values_take_keras_tags() {
        let tag = |name| epoch_tag(name, false);
        assert_eq!(tag("loss"), Some((Split::Train, "epoch_loss".into())));
        assert_eq!(
            tag("accuracy"),
            Some((Split::Train, "epoch_accuracy".into()))
        );
        assert_eq!(
            tag("val_loss"),
            Some((Split::Validation, "epoch_loss".into()))
        );
        assert_eq!(
            tag("val_out_accuracy"),
            Some((Split::Validation, "epoch_out_accuracy".into()))
        );
        assert_eq!(
            tag("lr"),
            Some((Split::Train, "epoch_learning_rate".into()))
        );
        assert_eq!(tag("seconds"), None);
        assert_eq!(
            epoch_tag("samples_per_sec", true),
            Some((Split::Train, "epoch_samples_per_sec".into()))
        );
    }

    #[test]
    fn histograms_follow_keras_epoch_counting() {
        let every_two = TensorBoard::new("unused").histogram_freq(2);
        let logged: Vec<usize> = (0..6).filter(|&e| every_two.logs_histograms(e)).collect();
        assert_eq!(logged, [0, 2, 4]);
        assert!(!TensorBoard::new("unused").logs_histograms(0));
    }
}
