//! The MNIST digits from their four IDX files (plain or `.gz`), validated
//! before use: every problem is an error naming the file.
//!
//! ```no_run
//! use nn_core::data::mnist::Mnist;
//!
//! let mnist = Mnist::load_default()?;             // $MNIST_DIR, data/mnist, ../shared/data/mnist
//! assert_eq!(mnist.train.len(), 60_000);
//! let train = mnist.train.reshaped(&[784]);       // for a model with input(784)
//! # Ok::<(), nn_core::data::mnist::MnistError>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

use super::Dataset;

/// The four files, without the optional `.gz`.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

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
    /// A file is missing from the directory.
    #[error("{}: missing (expected {name} or {name}.gz)", .dir.join(.name).display())]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The file's name without `.gz`.
        name: String,
    },
    /// The file could not be read (or decompressed).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The contents are not what the IDX format says.
    #[error("{path}: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The MNIST training and test sets; pixels are `f32` in `[0, 1]`, samples `[28, 28]`.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: Dataset<f32>,
    /// 10,000 test images.
    pub test: Dataset<f32>,
}

impl Mnist {
    /// Loads the four files from `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist, MnistError> {
        let dir = dir.as_ref();
        let train = pair(dir, FILES[0], FILES[1])?;
        let test = pair(dir, FILES[2], FILES[3])?;
        Ok(Mnist { train, test })
    }

    /// Loads from the first of these that holds the files: `$MNIST_DIR`,
    /// `data/mnist` in the current directory, then at the workspace root, then
    /// `../shared/data/mnist` beside the repository (where CI keeps it; tried
    /// from the current directory and from the workspace root).
    pub fn load_default() -> Result<Mnist, MnistError> {
        let searched = default_dirs();
        match searched.iter().find(|d| has_files(d)) {
            Some(dir) => Mnist::load(dir),
            None => Err(MnistError::NotFound { searched }),
        }
    }
}

/// The directories [`Mnist::load_default`] tries, in order.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("MNIST_DIR") {
        dirs.push(PathBuf::from(d));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    dirs.push(PathBuf::from("data/mnist"));
    dirs.push(workspace.join("data/mnist"));
    dirs.push(PathBuf::from("../shared/data/mnist"));
    dirs.push(workspace.join("../shared/data/mnist"));
    dirs
}

fn has_files(dir: &Path) -> bool {
    FILES.iter().all(|f| find(dir, f).is_some())
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

fn pair(dir: &Path, images: &str, labels: &str) -> Result<Dataset<f32>, MnistError> {
    let missing = |name: &str| MnistError::MissingFile {
        dir: dir.to_path_buf(),
        name: name.to_string(),
    };
    let image_path = find(dir, images).ok_or_else(|| missing(images))?;
    let label_path = find(dir, labels).ok_or_else(|| missing(labels))?;
    let (dims, pixels) = read_idx(&image_path, 3)?;
    let (ldims, labels) = read_idx(&label_path, 1)?;
    if ldims[0] != dims[0] {
        return Err(MnistError::Corrupt {
            path: label_path,
            problem: format!(
                "{} labels for {} images in {}",
                ldims[0],
                dims[0],
                image_path.display()
            ),
        });
    }
    if let Some(&bad) = labels.iter().find(|&&l| l > 9) {
        return Err(MnistError::Corrupt {
            path: label_path,
            problem: format!("label {bad} is not a digit 0-9"),
        });
    }
    let scaled: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    drop(pixels);
    let inputs = ArrayD::from_shape_vec(IxDyn(&dims), scaled)
        .expect("length checked against the dimensions");
    let labels = labels.into_iter().map(usize::from).collect();
    Ok(Dataset::classification(inputs, labels, 10).expect("labels checked to be digits"))
}

/// Reads an IDX file of unsigned bytes with `ndim` dimensions, checking the
/// magic number and that the data length matches the dimensions exactly.
pub fn read_idx(path: &Path, ndim: usize) -> Result<(Vec<usize>, Vec<u8>), MnistError> {
    let io = |source| MnistError::Io {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |problem: String| MnistError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let mut bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    let header = 4 + 4 * ndim;
    let short = |len: usize| {
        corrupt(format!(
            "truncated: {len} bytes, shorter than the {header}-byte IDX header"
        ))
    };
    if bytes.len() < 4 {
        return Err(short(bytes.len()));
    }
    let magic = u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let expected = 0x0800 | ndim as u32;
    if magic != expected {
        return Err(corrupt(format!(
            "bad magic number 0x{magic:08x}: expected 0x{expected:08x} (unsigned bytes, {ndim} dimension{})",
            if ndim == 1 { "" } else { "s" }
        )));
    }
    if bytes.len() < header {
        return Err(short(bytes.len()));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let expected_len: usize = dims.iter().product();
    let len = bytes.len() - header;
    if len != expected_len {
        let what = if len < expected_len {
            "truncated"
        } else {
            "too long"
        };
        return Err(corrupt(format!(
            "{what}: dimensions {dims:?} need {expected_len} data bytes, the file has {len}"
        )));
    }
    // Drop the header in place rather than copying the pixels.
    bytes.drain(..header);
    Ok((dims, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dirs_follow_the_documented_order() {
        std::env::set_var("MNIST_DIR", "/custom/mnist");
        let d = default_dirs();
        std::env::remove_var("MNIST_DIR");
        assert_eq!(d[0], PathBuf::from("/custom/mnist"));
        assert_eq!(d[1], PathBuf::from("data/mnist"));
        assert!(d[2].ends_with("data/mnist") && d[2].is_absolute());
        assert_eq!(d[3], PathBuf::from("../shared/data/mnist"));
        assert!(d[4].ends_with("shared/data/mnist") && d[4].is_absolute());
    }
}
