//! One event file being written: its name, its first (file-version) record,
//! and appending events.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::codec::encode_event;
use super::event::{Event, SummaryValue};
use super::record::put_record;
use crate::train::TrainError;

/// The version TensorBoard expects in a file's first event: version 2 tells it
/// that steps may restart (a resumed run) and older points should be dropped.
pub(crate) const FILE_VERSION: &str = "brain.Event:2";

/// Tells apart the files this process opens within one second.
static FILES_OPENED: AtomicU64 = AtomicU64::new(0);

/// An event file open for appending, buffered until [`EventFileWriter::flush`].
pub(crate) struct EventFileWriter {
    path: PathBuf,
    file: BufWriter<File>,
    /// Reused for each record's bytes.
    record: Vec<u8>,
}

impl EventFileWriter {
    /// Creates `dir` if needed and a new event file in it, named as
    /// TensorFlow names them (`events.out.tfevents.<seconds>.<host>.<pid>.<n>`:
    /// TensorBoard picks up files whose name holds `tfevents`), holding the
    /// file-version event.
    pub(crate) fn create(dir: &Path) -> Result<Self, TrainError> {
        nn_core::io::create_dir_all(dir).map_err(|source| TrainError::File {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(file_name());
        // `create_new`: never append to, or truncate, another run's file.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| TrainError::File {
                path: path.clone(),
                source,
            })?;
        let mut writer = EventFileWriter {
            path,
            file: BufWriter::new(file),
            record: Vec::new(),
        };
        writer.write(&Event {
            wall_time: now(),
            step: 0,
            file_version: Some(FILE_VERSION.into()),
            summary: Vec::new(),
        })?;
        Ok(writer)
    }

    /// Appends an event of `values` at `step`, stamped with the current time
    /// (nothing when `values` is empty).
    pub(crate) fn write_summary(
        &mut self,
        step: i64,
        values: Vec<SummaryValue>,
    ) -> Result<(), TrainError> {
        if values.is_empty() {
            return Ok(());
        }
        self.write(&Event {
            wall_time: now(),
            step,
            file_version: None,
            summary: values,
        })
    }

    fn write(&mut self, event: &Event) -> Result<(), TrainError> {
        self.record.clear();
        put_record(&mut self.record, &encode_event(event));
        let result = self.file.write_all(&self.record);
        result.map_err(|source| self.error(source))
    }

    /// Hands everything written so far to the operating system, so a running
    /// TensorBoard sees it.
    pub(crate) fn flush(&mut self) -> Result<(), TrainError> {
        let result = self.file.flush();
        result.map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> TrainError {
        TrainError::File {
            path: self.path.clone(),
            source,
        }
    }
}

fn file_name() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let n = FILES_OPENED.fetch_add(1, Ordering::Relaxed);
    format!(
        "events.out.tfevents.{seconds}.{}.{}.{n}",
        hostname(),
        std::process::id()
    )
}

/// Seconds since the Unix epoch, as event files record time.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name, as TensorFlow puts it in file names, or `nn` where the
/// standard library offers no way to ask (no new dependency for a file name).
fn hostname() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    // Only characters that are safe in a file name on every platform.
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "nn".into()
    } else {
        name
    }
}
