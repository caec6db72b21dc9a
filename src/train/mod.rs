//! The training loop: [`fit`], [`evaluate`] and [`predict`] for `sequential!`
//! models and graphs (through their static path) and research models on the
//! tape ([`TapeModel`]), on any [`Data`](nn_core::data::Data) — class labels
//! or target values — with built-in or tape-written losses ([`TrainLoss`]),
//! [`Metric`]s, per-batch hooks, gradient clipping, per-step schedules, a
//! progress display, callbacks and a [`History`]; [`fit_custom`] for a train
//! step of your own.

mod callbacks;
mod checkpoint;
mod checks;
mod custom;
mod data_parallel;
mod epochs;
mod file_template;
mod fit;
mod graph;
mod history;
mod metrics;
mod model;
mod objective;
mod progress;
mod step;
mod tensorboard;

pub use callbacks::{
    BatchLogs, Callback, Context, Control, CsvLogger, EarlyStopping, ModelCheckpoint, Monitor,
    PlateauOnMetric, ScheduleEachEpoch,
};
pub use checkpoint::{Checkpoint, CheckpointError, CHECKPOINT_FILE};
pub use custom::{fit_custom, TrainStep};
pub use fit::{evaluate, evaluate_metrics, fit, predict, FitOptions, Verbosity};
pub use graph::{
    evaluate_graph, fit_graph, predict_graph, GraphData, GraphDataError, GraphFitOptions,
    GraphMetrics,
};
pub use history::{EpochLogs, History};
pub use metrics::{
    count_correct, Accuracy, BinaryAccuracy, MeanAbsoluteError, MeanSquaredError, Metric,
    RootMeanSquaredError, TopKAccuracy,
};
pub use model::{static_train_batch, Fit, OnTape, TapeModel, Taped};
pub use nn_core::data::Targets;
pub use objective::{TapeLossFn, TrainLoss};
pub use tensorboard::{
    event_files, read_events, Event, EventFileError, Histogram, SummaryData, SummaryValue,
    TensorBoard,
};

/// Why training could not start or go on: a misconfiguration found when
/// `fit` starts, a callback's file could not be written, or a plot could not
/// be drawn.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// `fit` was set up so that it could not train (empty data, a loss that
    /// cannot take the targets, a monitored metric never logged, …).
    #[error("fit: {0}")]
    Config(String),
    /// A checkpoint could not be written, read or restored.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Saving weights or optimizer state failed.
    #[error(transparent)]
    Io(#[from] nn_core::io::IoError),
    /// Writing a log or history file failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("{path}: could not draw the plot: {message}")]
    Plot {
        /// The image file.
        path: std::path::PathBuf,
        /// What the plotting library said.
        message: String,
    },
}

/// Writes `contents` to `path` atomically ([`nn_core::io::write_atomic`]).
pub(crate) fn write_atomic(path: &std::path::Path, contents: &[u8]) -> Result<(), TrainError> {
    Ok(nn_core::io::write_atomic(path, contents)?)
}
