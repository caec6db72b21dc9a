//! The MNIST digits from their four IDX files (plain or `.gz`), validated
//! before use: every problem is an error naming the file, never a panic.
//!
//! Files are treated as untrusted: header arithmetic is checked, a file is
//! read only as far as its header declares (so a small hostile file cannot
//! claim, or decompress into, gigabytes), trailing bytes and extra gzip
//! members are rejected, and the contents must be MNIST: 28×28 images, at
//! least one, as many labels as images, each a digit 0–9.
//!
//! ```no_run
//! use nn_core::data::mnist::Mnist;
//!
//! let mnist = Mnist::load_default()?;             // $MNIST_DIR, else data/mnist, ../shared/data/mnist
//! assert_eq!(mnist.train.len(), 60_000);
//! let train = mnist.train.reshaped(&[784]);       // for a model with input(784)
//! # Ok::<(), nn_core::data::mnist::MnistError>(())
//! ```

mod dirs;
mod error;
mod idx;
mod stream;

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

use super::Dataset;
pub use dirs::default_dirs;
pub use error::MnistError;
pub use idx::read_idx;
use idx::IdxFile;

/// The four files, without the optional `.gz`.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// MNIST's images are this many pixels high and wide.
const SIDE: usize = 28;

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
        let [train_images, train_labels, test_images, test_labels] = FILES.map(|name| {
            dirs::find(dir, name).ok_or_else(|| match dirs::not_a_file(dir, name) {
                // A directory (or another non-file) under the file's name.
                Some(path) => MnistError::Io {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a file (the IDX file, plain or gzipped, belongs here)",
                    ),
                },
                None => MnistError::MissingFile {
                    dir: dir.to_path_buf(),
                    name: name.to_string(),
                },
            })
        });
        // Every file is looked for before any is read, so a missing one is
        // reported before time goes into decompressing the others.
        let (train_images, train_labels) = (train_images?, train_labels?);
        let (test_images, test_labels) = (test_images?, test_labels?);
        let train = pair(&train_images, &train_labels)?;
        let test = pair(&test_images, &test_labels)?;
        Ok(Mnist { train, test })
    }

    /// Loads from `$MNIST_DIR` when it is set (and not empty): only there, and
    /// it is an error naming the directory if the files are not in it.
    /// Otherwise from the first of these that holds the files: `data/mnist`
    /// in the current directory, then at the workspace root, then
    /// `../shared/data/mnist` beside the repository (where CI keeps it; tried
    /// from the current directory and from the workspace root). See
    /// [`default_dirs`].
    pub fn load_default() -> Result<Mnist, MnistError> {
        Mnist::load(dirs::locate()?)
    }
}

/// One set: its images and labels, checked against each other and MNIST's
/// shape before any data is read.
fn pair(image_path: &Path, label_path: &Path) -> Result<Dataset<f32>, MnistError> {
    let images = IdxFile::open(image_path, 3)?;
    let labels = IdxFile::open(label_path, 1)?;
    let corrupt = |path: &Path, problem: String| MnistError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let (n, rows, cols) = (images.dims()[0], images.dims()[1], images.dims()[2]);
    if (rows, cols) != (SIDE, SIDE) {
        return Err(corrupt(
            image_path,
            format!("images are {rows}×{cols} pixels; MNIST's are {SIDE}×{SIDE}"),
        ));
    }
    if n == 0 {
        return Err(corrupt(
            image_path,
            "holds no images (0 in its header)".into(),
        ));
    }
    if labels.dims()[0] != n {
        return Err(corrupt(
            label_path,
            format!(
                "{} labels for {n} images in {}",
                labels.dims()[0],
                image_path.display()
            ),
        ));
    }
    // Labels first: they are small, and a bad one spares reading the images.
    let (_, labels) = labels.read_data()?;
    if let Some((i, bad)) = labels.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(corrupt(
            label_path,
            format!("label {bad} is not a digit 0-9 (image {i})"),
        ));
    }
    // Scaled to [0, 1] as they arrive: no byte copy beside the floats.
    let (dims, pixels) = images.read_data_as(|p| f32::from(p) / 255.0)?;
    to_dataset(image_path, &dims, pixels, labels)
}

/// The scaled pixels with their labels. Both were checked; an error here
/// would still be reported, not panicked on.
fn to_dataset(
    path: &Path,
    dims: &[usize],
    pixels: Vec<f32>,
    labels: Vec<u8>,
) -> Result<Dataset<f32>, MnistError> {
    let corrupt = |problem: String| MnistError::Corrupt {
        path: PathBuf::from(path),
        problem,
    };
    let inputs = ArrayD::from_shape_vec(IxDyn(dims), pixels).map_err(|e| corrupt(e.to_string()))?;
    let labels = labels.into_iter().map(usize::from).collect();
    Dataset::classification(inputs, labels, 10).map_err(|e| corrupt(e.to_string()))
}
