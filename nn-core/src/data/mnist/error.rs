//! [`MnistError`]: every way loading MNIST can fail, each naming the file (or
//! the directories) involved.

use std::path::PathBuf;

use super::FILES;

/// What went wrong reading MNIST. Every variant names the file (or the places searched).
#[derive(Debug, thiserror::Error)]
pub enum MnistError {
    /// No directory holding the four files was found.
    #[error("MNIST not found; looked in:\n{}\nexpected the files {} (each may end in .gz); set MNIST_DIR to their directory",
        .searched.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"),
        FILES.join(", "))]
    NotFound {
        /// Every directory tried, in order.
        searched: Vec<PathBuf>,
    },
    /// `MNIST_DIR` is set but does not name a directory holding the four files.
    /// It is not searched past: a path set on purpose that is wrong should say
    /// so, not silently load some other copy.
    #[error("MNIST_DIR is set to {}, but {problem}; point MNIST_DIR at the directory holding {} (each may end in .gz), or unset it to search the default places",
        .dir.display(), FILES.join(", "))]
    BadMnistDir {
        /// The value of `MNIST_DIR`.
        dir: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A file is missing from the directory.
    #[error("{}: missing (expected {name} or {name}.gz)", .dir.join(.name).display())]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The file's name without `.gz`.
        name: String,
    },
    /// The file could not be read, or its gzip compression is broken.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The contents are not what the IDX format or MNIST says.
    #[error("{path}: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}
