//! The training loop: [`fit`], [`evaluate`] and [`predict`] for `sequential!`
//! models and graphs (through their static path) and research models on the
//! tape ([`TapeModel`]), on any [`Data`](nn_core::data::Data) — class labels
//! or target values — with built-in or tape-written losses ([`TrainLoss`]),
//! [`Metric`]s, per-batch hooks, gradient clipping, per-step schedules, a
//! progress display, callbacks and a [`History`]; [`fit_custom`] for a train
//! step of your own.

mod callbacks;
mod checks;
mod custom;
mod epochs;
mod fit;
mod graph;
mod history;
mod metrics;
mod model;
mod objective;
mod progress;

pub use callbacks::{
    BatchLogs, Callback, Context, Control, CsvLogger, EarlyStopping, ModelCheckpoint, Monitor,
    PlateauOnMetric, ScheduleEachEpoch,
};
pub use custom::{fit_custom, TrainStep};
pub use fit::{evaluate, evaluate_metrics, fit, predict, FitOptions, Verbosity};
pub use graph::{
    evaluate_graph, fit_graph, predict_graph, GraphData, GraphDataError, GraphFitOptions,
    GraphMetrics,
};
pub use history::{EpochLogs, History};
pub use metrics::{
    count_correct, Accuracy, MeanAbsoluteError, MeanSquaredError, Metric, RootMeanSquaredError,
    TopKAccuracy,
};
pub use model::{static_train_batch, Fit, OnTape, TapeModel, Taped};
pub use nn_core::data::Targets;
pub use objective::{TapeLossFn, TrainLoss};

/// Why training could not start or go on: a misconfiguration found when
/// `fit` starts, a callback's file could not be written, or a plot could not
/// be drawn.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// `fit` was set up so that it could not train (empty data, a loss that
    /// cannot take the targets, a monitored metric never logged, …).
    #[error("fit: {0}")]
    Config(String),
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

/// Writes `contents` to `path` atomically: a temporary file beside it, then a rename.
pub(crate) fn write_atomic(path: &std::path::Path, contents: &[u8]) -> Result<(), TrainError> {
    use std::io::Write;
    let err = |source| TrainError::File {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}
