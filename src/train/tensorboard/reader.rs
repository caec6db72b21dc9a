//! Reading event files back: [`read_events`] and [`event_files`].

use std::path::{Path, PathBuf};

use super::codec::decode_event;
use super::event::Event;
use super::record::split_records;

/// Why an event file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventFileError {
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid event file: a CRC does not match, a record
    /// is cut short, or a record is not an `Event` message.
    #[error("{path}: corrupt event file at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Every event in the event file at `path`, in order, with both CRCs of every
/// record checked: the file-version event first, then the scalars and
/// histograms a [`TensorBoard`](super::TensorBoard) callback wrote (or any
/// TensorFlow event file: values of kinds this reader does not decode come
/// back as [`SummaryData::Unsupported`](super::SummaryData::Unsupported)).
///
/// A file still being written may end in a partial record, which is an error
/// here: read it after training, or after an epoch's flush.
///
/// ```no_run
/// use nn::train::{event_files, read_events};
///
/// # fn main() -> Result<(), nn::train::EventFileError> {
/// for path in event_files("logs/validation")? {
///     for event in read_events(&path)? {
///         if let Some(loss) = event.scalar("epoch_loss") {
///             println!("epoch {}: val_loss {loss}", event.step);
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>, EventFileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| EventFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |offset, reason| EventFileError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let records = split_records(&bytes).map_err(|e| corrupt(e.offset, e.reason))?;
    records
        .into_iter()
        .map(|(offset, data)| decode_event(data).map_err(|reason| corrupt(offset, reason)))
        .collect()
}

/// The event files in `dir` (those whose name holds `tfevents`, as
/// TensorBoard finds them), sorted by name: by creation time, to the second,
/// as the name starts with it. A [`TensorBoard`](super::TensorBoard) callback writes one per
/// run in `log_dir/train` and `log_dir/validation`.
///
/// ```no_run
/// # fn main() -> Result<(), nn::train::EventFileError> {
/// let runs = nn::train::event_files("logs/train")?;
/// println!("{} training runs logged", runs.len());
/// # Ok(())
/// # }
/// ```
pub fn event_files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, EventFileError> {
    let dir = dir.as_ref();
    let io = |source| EventFileError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let is_event_file = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("tfevents"));
        if is_event_file && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
