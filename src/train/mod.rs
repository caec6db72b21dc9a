//! The training loop: [`fit`], [`evaluate`] and [`predict`] for `sequential!`
//! models (through their static path) and for research models on the tape
//! (through [`OnTape`]), with metrics, a progress display, callbacks and a
//! [`History`].

mod callbacks;
mod fit;
mod graph;
mod history;
mod progress;

pub use callbacks::{
    Callback, Context, Control, CsvLogger, EarlyStopping, ModelCheckpoint, Monitor,
    PlateauOnMetric, ScheduleEachEpoch,
};
pub use fit::{
    count_correct, evaluate, fit, predict, static_train_batch, BatchStats, Fit, FitOptions, OnTape,
    TapeModel, Taped, Verbosity,
};
pub use graph::{
    evaluate_graph, fit_graph, predict_graph, GraphData, GraphDataError, GraphFitOptions,
    GraphMetrics, Targets,
};
pub use history::{EpochLogs, History};

/// Why training could not go on: a callback's file could not be written, or a
/// plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
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
