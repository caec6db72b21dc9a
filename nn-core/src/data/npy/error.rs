//! What can go wrong reading `.npy`/`.npz` files, each error naming the file
//! (and the array inside an archive).

use std::fmt;
use std::path::PathBuf;

/// Where an array lives: an `.npy` file, or an array of an `.npz` archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayLocation {
    /// The file.
    pub path: PathBuf,
    /// The array's name inside an `.npz` archive; `None` for an `.npy` file.
    pub name: Option<String>,
}

impl ArrayLocation {
    /// An `.npy` file.
    pub fn npy(path: impl Into<PathBuf>) -> Self {
        ArrayLocation {
            path: path.into(),
            name: None,
        }
    }

    /// The array `name` of the `.npz` archive at `path`.
    pub fn npz(path: impl Into<PathBuf>, name: &str) -> Self {
        ArrayLocation {
            path: path.into(),
            name: Some(name.to_string()),
        }
    }
}

impl fmt::Display for ArrayLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.path.display()),
            Some(name) => write!(f, "{}, array '{name}'", self.path.display()),
        }
    }
}

/// Why an array or a dataset could not be read from `.npy`/`.npz` files.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file does not exist.
    #[error("{}: no such file", .path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Reading (or decompressing) failed.
    #[error("{at}: {source}")]
    Io {
        /// The file, or the array being read.
        at: ArrayLocation,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The contents are not an `.npy` array (bad magic string or header,
    /// truncated or overlong data).
    #[error("{at}: not a valid .npy array: {problem}")]
    NotNpy {
        /// The array.
        at: ArrayLocation,
        /// What is wrong.
        problem: String,
    },
    /// The file is not a zip archive as `np.savez` writes.
    #[error("{}: not a valid .npz archive: {problem}", .path.display())]
    NotNpz {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The archive has no array of that name.
    #[error("{}: no array '{name}' in the archive; it holds: {}", .path.display(), .names.join(", "))]
    NoSuchArray {
        /// The archive.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names it holds.
        names: Vec<String>,
    },
    /// The array holds something other than floats, integers or bools.
    #[error(
        "{at}: unsupported dtype {dtype} (descriptor {descr}); expected floats, integers or bools"
    )]
    UnsupportedDtype {
        /// The array.
        at: ArrayLocation,
        /// NumPy's name for it (`complex128`, `str`, `float16`, …).
        dtype: String,
        /// The descriptor as the header spells it (`'<c16'`).
        descr: String,
    },
    /// Labels are not one per sample (`[n]` or a column `[n, 1]`).
    #[error("{at}: labels must be 1-D (or a column [n, 1]); the array has shape {shape:?}")]
    LabelShape {
        /// The array.
        at: ArrayLocation,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A label is negative or not a whole number.
    #[error("{at}: label {value} of sample {sample} is not a class index (a whole number >= 0)")]
    InvalidLabel {
        /// The array.
        at: ArrayLocation,
        /// The sample (0-based).
        sample: usize,
        /// The label as stored.
        value: f64,
    },
    /// A label is not below the declared number of classes.
    #[error("{at}: label {label} of sample {sample} is not a class of 0..{classes}")]
    LabelOutOfRange {
        /// The array.
        at: ArrayLocation,
        /// The sample (0-based).
        sample: usize,
        /// Its label.
        label: usize,
        /// The declared number of classes.
        classes: usize,
    },
    /// Inputs and targets hold different numbers of samples.
    #[error("{inputs} holds {input_count} samples but {targets} holds {target_count} targets")]
    SampleCount {
        /// The inputs.
        inputs: ArrayLocation,
        /// Samples along their first axis.
        input_count: usize,
        /// The targets.
        targets: ArrayLocation,
        /// Targets there.
        target_count: usize,
    },
    /// Inputs or value targets are a scalar, with no sample axis.
    #[error("{at}: a dataset needs a sample axis first; the array is a scalar")]
    NoSampleAxis {
        /// The array.
        at: ArrayLocation,
    },
    /// A dataset's input or target value is NaN or infinite.
    #[error("{at}: the value at {index:?} is {value}")]
    NotFinite {
        /// The array.
        at: ArrayLocation,
        /// Its index (the sample first).
        index: Vec<usize>,
        /// The value.
        value: f64,
    },
}
