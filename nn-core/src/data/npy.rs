//! NumPy's `.npy` arrays and `.npz` archives (`np.save`, `np.savez`,
//! `np.savez_compressed`) as arrays, labels or a whole [`Dataset`].
//!
//! Floats, integers and bools of either byte order read as floats; Fortran
//! order reads back in row-major order. Every problem with a file is an
//! [`NpyError`] naming the file (and the array inside an archive).
//!
//! ```no_run
//! use nn_core::data::npy;
//! use nn_core::data::TargetsAs;
//!
//! // np.savez("digits.npz", x=images, y=labels)
//! let data = npy::dataset_from_npz::<f32>("digits.npz", "x", "y", TargetsAs::labels(10))?;
//! // np.save("x.npy", x); np.save("y.npy", y)   (regression targets)
//! let reg = npy::dataset_from_npy::<f64>("x.npy", "y.npy", TargetsAs::Values)?;
//! let images = npy::read_npz_array::<f32>("digits.npz", "x")?;
//! # Ok::<(), nn_core::data::npy::NpyError>(())
//! ```

mod decode;
mod error;
mod header;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, Dimension};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

pub use error::{ArrayLocation, NpyError};

use super::{Dataset, Targets, TargetsAs};
use crate::Float;

/// Reads the `.npy` file at `path` as `T`, whatever its float, integer or
/// bool dtype (integers beyond 2^53 round).
pub fn read_array<T: Float>(path: impl AsRef<Path>) -> Result<ArrayD<T>, NpyError> {
    with_reader(&ArrayLocation::npy(path.as_ref()), decode::read_floats)
}

/// Reads the `.npy` file at `path` as class labels: shape `[n]` (or `[n, 1]`),
/// whole numbers `>= 0` of any integer, float or bool dtype.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<usize>, NpyError> {
    with_reader(&ArrayLocation::npy(path.as_ref()), decode::read_labels)
}

/// The names of the arrays in the `.npz` archive at `path`, in archive order.
pub fn npz_names(path: impl AsRef<Path>) -> Result<Vec<String>, NpyError> {
    let path = path.as_ref();
    Ok(names(&open_zip(path)?))
}

/// Reads the array `name` of the `.npz` archive at `path` as `T`
/// (see [`read_array`]).
pub fn read_npz_array<T: Float>(path: impl AsRef<Path>, name: &str) -> Result<ArrayD<T>, NpyError> {
    with_reader(
        &ArrayLocation::npz(path.as_ref(), name),
        decode::read_floats,
    )
}

/// Reads the array `name` of the `.npz` archive at `path` as class labels
/// (see [`read_labels`]).
pub fn read_npz_labels(path: impl AsRef<Path>, name: &str) -> Result<Vec<usize>, NpyError> {
    with_reader(
        &ArrayLocation::npz(path.as_ref(), name),
        decode::read_labels,
    )
}

/// A dataset from two `.npy` files: inputs `[n, …]` and targets, read as
/// `targets_as` says. Value targets of shape `[n]` become `[n, 1]`, the shape
/// a one-output model predicts. NaN or infinite inputs or value targets are
/// an error ([`NpyError::NotFinite`]); read with [`read_array`] to keep them.
pub fn dataset_from_npy<T: Float>(
    inputs: impl AsRef<Path>,
    targets: impl AsRef<Path>,
    targets_as: TargetsAs,
) -> Result<Dataset<T>, NpyError> {
    dataset(
        ArrayLocation::npy(inputs.as_ref()),
        ArrayLocation::npy(targets.as_ref()),
        targets_as,
    )
}

/// A dataset from the arrays `inputs` and `targets` of one `.npz` archive;
/// see [`dataset_from_npy`].
pub fn dataset_from_npz<T: Float>(
    path: impl AsRef<Path>,
    inputs: &str,
    targets: &str,
    targets_as: TargetsAs,
) -> Result<Dataset<T>, NpyError> {
    let path = path.as_ref();
    dataset(
        ArrayLocation::npz(path, inputs),
        ArrayLocation::npz(path, targets),
        targets_as,
    )
}

fn dataset<T: Float>(
    inputs_at: ArrayLocation,
    targets_at: ArrayLocation,
    targets_as: TargetsAs,
) -> Result<Dataset<T>, NpyError> {
    let inputs = with_reader(&inputs_at, decode::read_floats::<T>)?;
    let input_count = sample_count(&inputs, &inputs_at)?;
    check_finite(&inputs, &inputs_at)?;
    let count_error = |target_count| NpyError::SampleCount {
        inputs: inputs_at.clone(),
        input_count,
        targets: targets_at.clone(),
        target_count,
    };
    match targets_as {
        TargetsAs::Labels { classes } => {
            let labels = with_reader(&targets_at, decode::read_labels)?;
            if labels.len() != input_count {
                return Err(count_error(labels.len()));
            }
            let Some(classes) = classes else {
                return Ok(Dataset::new(inputs, labels));
            };
            if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
                return Err(NpyError::LabelOutOfRange {
                    at: targets_at,
                    sample,
                    label,
                    classes,
                });
            }
            Ok(Dataset::classification(inputs, labels, classes).expect("labels and count checked"))
        }
        TargetsAs::Values => {
            let mut values = with_reader(&targets_at, decode::read_floats::<T>)?;
            let target_count = sample_count(&values, &targets_at)?;
            if target_count != input_count {
                return Err(count_error(target_count));
            }
            if values.ndim() == 1 {
                values.insert_axis_inplace(Axis(1));
            }
            check_finite(&values, &targets_at)?;
            Ok(Dataset::from_targets(inputs, Targets::Values(values)).expect("count checked"))
        }
    }
}

fn sample_count<T: Float>(a: &ArrayD<T>, at: &ArrayLocation) -> Result<usize, NpyError> {
    a.shape()
        .first()
        .copied()
        .ok_or_else(|| NpyError::NoSampleAxis { at: at.clone() })
}

fn check_finite<T: Float>(a: &ArrayD<T>, at: &ArrayLocation) -> Result<(), NpyError> {
    match a.indexed_iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((index, v)) => Err(NpyError::NotFinite {
            at: at.clone(),
            index: index.slice().to_vec(),
            value: v.as_f64(),
        }),
    }
}

/// Runs `read` on the stream of the array at `at` and its length in bytes.
fn with_reader<O>(
    at: &ArrayLocation,
    read: impl FnOnce(&mut dyn Read, u64, &ArrayLocation) -> Result<O, NpyError>,
) -> Result<O, NpyError> {
    let Some(name) = &at.name else {
        let file = open(&at.path)?;
        let len = file
            .metadata()
            .map_err(|source| NpyError::Io {
                at: at.clone(),
                source,
            })?
            .len();
        return read(&mut BufReader::new(file), len, at);
    };
    let mut zip = open_zip(&at.path)?;
    // np.savez stores `name` as `name.npy`; accept either, as np.load does.
    let Some(index) = zip
        .index_for_name(name)
        .or_else(|| zip.index_for_name(&format!("{name}.npy")))
    else {
        return Err(NpyError::NoSuchArray {
            path: at.path.clone(),
            name: name.clone(),
            names: names(&zip),
        });
    };
    let mut entry = zip.by_index(index).map_err(|e| zip_error(&at.path, e))?;
    // The archive declares the entry's size; bound it by deflate's largest
    // ratio (1032:1) so a forged size cannot make us allocate without limit.
    let len = match entry.compression() {
        CompressionMethod::Stored => entry.size().min(entry.compressed_size()),
        _ => entry
            .size()
            .min(entry.compressed_size().saturating_mul(1032)),
    };
    read(&mut entry, len, at)
}

fn open(path: &Path) -> Result<File, NpyError> {
    File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => NpyError::Missing {
            path: path.to_path_buf(),
        },
        _ => NpyError::Io {
            at: ArrayLocation::npy(path),
            source,
        },
    })
}

fn open_zip(path: &Path) -> Result<ZipArchive<BufReader<File>>, NpyError> {
    ZipArchive::new(BufReader::new(open(path)?)).map_err(|e| zip_error(path, e))
}

/// The array names, without the `.npy` each entry ends in (as `np.load` shows them).
fn names(zip: &ZipArchive<BufReader<File>>) -> Vec<String> {
    zip.file_names()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect()
}

fn zip_error(path: &Path, e: ZipError) -> NpyError {
    let path: PathBuf = path.to_path_buf();
    match e {
        // Too short to hold a zip directory: not an I/O failure but not a zip.
        ZipError::Io(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
            NpyError::Io {
                at: ArrayLocation::npy(path),
                source,
            }
        }
        other => NpyError::NotNpz {
            path,
            problem: other.to_string(),
        },
    }
}
