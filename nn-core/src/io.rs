//! Saving and loading parameters as safetensors, with PyTorch's names and
//! layouts, written atomically and loaded all-or-nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::tape::Param;
use crate::Float;

mod float_dtypes;

/// Why a weights file could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a safetensors file.
    #[error("{path}: not a valid safetensors file: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// Loading by position: the tensor in a parameter's place has another
    /// leaf name (`weight` where `bias` is due).
    #[error("{path}: missing tensor `{key}`")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The parameter's name, and what the file has in its place.
        key: String,
    },
    /// Loading by name: the file's tensors are not the model's parameters.
    /// Every name on either side is listed, as PyTorch's strict
    /// `load_state_dict` does.
    #[error("{path}: {}", keys_mismatch(missing, unexpected))]
    KeysMismatch {
        /// The file.
        path: PathBuf,
        /// The model's parameters the file has no tensor for.
        missing: Vec<String>,
        /// The file's tensors the model has no parameter for.
        unexpected: Vec<String>,
    },
    /// A tensor's shape differs from its parameter's.
    #[error("{path}: tensor `{key}` has shape {found:?}, but the model expects {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        key: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The tensor's shape.
        found: Vec<usize>,
    },
    /// A tensor's dtype is not the model's element type, nor (for loading
    /// parameters) a float that converts to it.
    #[error("{path}: tensor `{key}` has dtype {found}, but the model expects {expected}")]
    DtypeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        key: String,
        /// The model's dtype.
        expected: String,
        /// The tensor's dtype.
        found: String,
    },
    /// Loading by position met a module with a name, not an index: its
    /// order cannot be known, so two same-shaped tensors could swap.
    #[error("{path}: tensor `{key}` belongs to a named module, so its position is unknown; load this file by name (`load`) instead")]
    NamedModule {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        key: String,
    },
    /// A PyTorch file holds a different number of parameter tensors.
    #[error("{path}: the file holds {found} parameter tensors, but the model has {expected}")]
    CountMismatch {
        /// The file.
        path: PathBuf,
        /// The model's count.
        expected: usize,
        /// The file's count.
        found: usize,
    },
}

/// [`IoError::KeysMismatch`]'s message: the names on both sides, and what
/// to do with a training checkpoint, whose tensors lie under `model/` and
/// `optim/`.
fn keys_mismatch(missing: &[String], unexpected: &[String]) -> String {
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing tensors {}", list(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "unexpected tensors {} (the model has no parameter of that name)",
            list(unexpected)
        ));
    }
    let checkpoint = !unexpected.is_empty()
        && unexpected
            .iter()
            .all(|n| n.starts_with("model/") || n.starts_with("optim/"));
    let hint = if checkpoint {
        "; this is a training checkpoint (`fit`'s `checkpoint_dir`), not a weights file: \
         `nn::train::Checkpoint::load(dir)` reads it, and its `model` holds the weights"
    } else {
        ""
    };
    format!("{}{hint}", parts.join("; "))
}

fn dtype_of<T: Float>() -> Dtype {
    if T::DTYPE == "F64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// Writes `params` to `path` as safetensors: to a temporary file beside it,
/// then renamed over it, so an interrupted save never leaves a torn file.
pub fn save_params<T: Float>(path: &Path, params: &[(String, Param<T>)]) -> Result<(), IoError> {
    let tensors: Vec<(String, ArrayD<T>)> = params
        .iter()
        .map(|(n, p)| (n.clone(), p.value().clone()))
        .collect();
    save_tensors(path, &tensors, None)
}

/// Writes named arrays (and optional string metadata) to `path` as
/// safetensors, atomically ([`write_atomic`]).
pub fn save_tensors<T: Float>(
    path: &Path,
    tensors: &[(String, ArrayD<T>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<(), IoError> {
    let bytes = serialize_tensors(path, tensors, metadata)?;
    write_atomic(path, &bytes)
}

/// Named arrays (and optional string metadata) as the bytes of a
/// safetensors file (`path` only names the file in errors).
pub fn serialize_tensors<T: Float>(
    path: &Path,
    tensors: &[(String, ArrayD<T>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>, IoError> {
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, v)| {
            let mut bytes = Vec::with_capacity(v.len() * std::mem::size_of::<T>());
            for &x in v.as_standard_layout().iter() {
                x.extend_le(&mut bytes);
            }
            (name.clone(), v.shape().to_vec(), bytes)
        })
        .collect();
    let views = buffers.iter().map(|(name, shape, bytes)| {
        let view = TensorView::new(dtype_of::<T>(), shape.clone(), bytes)
            .expect("sizes match by construction");
        (name.clone(), view)
    });
    let mut bytes =
        safetensors::tensor::serialize(views, metadata).map_err(|e| IoError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    sort_header(&mut bytes);
    Ok(bytes)
}

/// Rewrites the JSON header of a safetensors file's `bytes` with its keys
/// sorted. The safetensors crate writes it from hash maps, whose order
/// changes from process to process: the same tensors and metadata gave
/// files that differed byte for byte. The sorted header has the same
/// members, so it fits the same padded length and nothing moves.
fn sort_header(bytes: &mut [u8]) {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")) as usize)
    else {
        return;
    };
    let Some(header) = bytes.get_mut(8..8 + len) else {
        return;
    };
    // `serde_json`'s maps are ordered by key (its `preserve_order` is off).
    let sorted =
        serde_json::from_slice::<serde_json::Value>(header).and_then(|v| serde_json::to_vec(&v));
    if let Some(sorted) = sorted.ok().filter(|s| s.len() <= len) {
        header[..sorted.len()].copy_from_slice(&sorted);
        header[sorted.len()..].fill(b' ');
    }
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one, never a torn one: a temporary file beside it
/// (`.<name>.tmp-<pid>`), flushed to disk, renamed over `path`, and the
/// directory flushed so the rename itself survives a power cut. Temporaries
/// left by processes that died mid-write are removed first. The new file
/// keeps the old one's permissions (private weights stay private), and a
/// symbolic link stays a link: the file it names is replaced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let io = |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let target = link_target(path).map_err(io)?;
    let path = target.as_path();
    // Unix's mode bits of a file being replaced (elsewhere the only
    // permission is read-only, which would stop the rename and the cleanup).
    let permissions = fs::metadata(path)
        .ok()
        .filter(|m| cfg!(unix) && m.is_file())
        .map(|m| m.permissions());
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    remove_stale_temporaries(&dir, &file_name);
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        if let Some(p) = &permissions {
            f.set_permissions(p.clone())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(e)
    })
}

/// The file a chain of symbolic links at `path` ends at (`path` itself when
/// it is no link), which need not exist yet: a relative target is relative
/// to its link's directory.
fn link_target(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let mut at = path.to_path_buf();
    // The system's own limit on a chain of links (Linux's ELOOP).
    for _ in 0..40 {
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let next = fs::read_link(&at)?;
                at = match at.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                };
            }
            _ => return Ok(at),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// `std::fs::create_dir_all`, but a file where the directory or one of its
/// parents should be is said to be in the way (the system says only "File
/// exists" or "Not a directory").
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
            std::io::Error::new(
                e.kind(),
                format!("a file is in the way of the directory ({e})"),
            )
        }
        _ => e,
    })
}

/// Flushes a directory's entries (a rename into it) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes `.<file_name>.tmp-<pid>` files of processes no longer running
/// (on Linux, checked in `/proc`; elsewhere, any but this process's).
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix) else {
            continue;
        };
        let alive = pid == std::process::id().to_string()
            || (cfg!(target_os = "linux") && Path::new("/proc").join(pid).exists());
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Named arrays, as read from a file.
pub type Tensors<T> = BTreeMap<String, ArrayD<T>>;

/// Every tensor of a safetensors file of element type `T`, with the file's
/// string metadata. A tensor of another dtype is an error naming it.
pub fn load_tensors<T: Float>(
    path: &Path,
) -> Result<(Tensors<T>, BTreeMap<String, String>), IoError> {
    let bytes = read(path)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let file = parse(path, &bytes)?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != dtype_of::<T>() {
            return Err(IoError::DtypeMismatch {
                path: path.to_path_buf(),
                key: name,
                expected: T::DTYPE.to_string(),
                found: format!("{:?}", view.dtype()),
            });
        }
        let width = std::mem::size_of::<T>();
        let data: Vec<T> = view.data().chunks_exact(width).map(T::from_le).collect();
        let array =
            ArrayD::from_shape_vec(IxDyn(view.shape()), data).map_err(|e| IoError::Format {
                path: path.to_path_buf(),
                message: format!("tensor `{name}` of shape {:?}: {e}", view.shape()),
            })?;
        out.insert(name, array);
    }
    Ok((out, metadata))
}

/// The file's bytes. Only a regular file (or a link to one) is read: a
/// device such as `/dev/zero` would be read without end.
fn read(path: &Path) -> Result<Vec<u8>, IoError> {
    let io = |source| IoError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !fs::metadata(path).map_err(io)?.is_file() {
        let what =
            "not a regular file (a directory, device, pipe or socket): weights are read from files";
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            what,
        )));
    }
    fs::read(path).map_err(io)
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, IoError> {
    SafeTensors::deserialize(bytes).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Checks one tensor against its parameter and decodes it: a floating-point
/// tensor of another width is converted (see [`float_dtypes`]).
fn decode<T: Float>(
    path: &Path,
    key: &str,
    view: &TensorView<'_>,
    param: &Param<T>,
) -> Result<ArrayD<T>, IoError> {
    let expected = param.shape();
    if view.shape() != expected.as_slice() {
        return Err(IoError::ShapeMismatch {
            path: path.to_path_buf(),
            key: key.to_string(),
            expected,
            found: view.shape().to_vec(),
        });
    }
    let data: Vec<T> = if view.dtype() == dtype_of::<T>() {
        let width = std::mem::size_of::<T>();
        view.data().chunks_exact(width).map(T::from_le).collect()
    } else {
        float_dtypes::values_as(view).ok_or_else(|| IoError::DtypeMismatch {
            path: path.to_path_buf(),
            key: key.to_string(),
            expected: format!("{} (or another float: F16, BF16, F32, F64)", T::DTYPE),
            found: format!("{:?}", view.dtype()),
        })?
    };
    ArrayD::from_shape_vec(IxDyn(view.shape()), data).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        message: format!("tensor `{key}` of shape {:?}: {e}", view.shape()),
    })
}

/// Assigns every decoded array, only once all of them were read and checked.
fn assign<T: Float>(params: &[(String, Param<T>)], arrays: Vec<ArrayD<T>>) {
    for ((_, p), a) in params.iter().zip(arrays) {
        *p.value_mut() = a;
    }
}

/// Loads `path` into `params` by name. Every name, shape and dtype is checked
/// before anything is assigned: on error the parameters are untouched.
pub fn load_params<T: Float>(path: &Path, params: &[(String, Param<T>)]) -> Result<(), IoError> {
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    let mut names: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !pytorch_only(n))
        .collect();
    names.sort();
    let missing: Vec<String> = params
        .iter()
        .filter(|(name, _)| file.tensor(name).is_err())
        .map(|(name, _)| name.clone())
        .collect();
    let unexpected: Vec<String> = names
        .into_iter()
        .filter(|n| !params.iter().any(|(name, _)| name == n))
        .map(str::to_string)
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(IoError::KeysMismatch {
            path: path.to_path_buf(),
            missing,
            unexpected,
        });
    }
    let mut arrays = Vec::with_capacity(params.len());
    for (name, p) in params {
        let view = file.tensor(name).expect("checked above");
        arrays.push(decode(path, name, &view, p)?);
    }
    assign(params, arrays);
    Ok(())
}

/// Loads a PyTorch `nn.Sequential` state dict saved with
/// `safetensors.torch.save_file(model.state_dict(), path)`.
///
/// PyTorch names parameters by module index (`0.weight`, `2.bias`; activations
/// and `Flatten` take indices but hold no parameters), so tensors are matched by
/// position: modules in index order, each module's tensors in the order
/// `weight`, `bias`, then others by name. The k-th tensor goes to the model's
/// k-th parameter, whose local name (after the last `.`) must match. All-or-nothing,
/// like [`load_params`].
pub fn load_params_positional<T: Float>(
    path: &Path,
    params: &[(String, Param<T>)],
) -> Result<(), IoError> {
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    let mut names: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !pytorch_only(n))
        .collect();
    // nn.Sequential names its modules by index; a named one (an attribute of
    // a hand-written module) has no order to match by.
    if let Some(named) = names.iter().find(|n| {
        let module = n.rsplit_once('.').map_or("", |(m, _)| m);
        module.split('.').any(|s| s.parse::<u64>().is_err())
    }) {
        return Err(IoError::NamedModule {
            path: path.to_path_buf(),
            key: named.to_string(),
        });
    }
    names.sort_by_key(|n| position_key(n));
    if names.len() != params.len() {
        return Err(IoError::CountMismatch {
            path: path.to_path_buf(),
            expected: params.len(),
            found: names.len(),
        });
    }
    let mut arrays = Vec::with_capacity(params.len());
    for (key, (ours, p)) in names.iter().zip(params) {
        let (their_leaf, our_leaf) = (leaf(key), leaf(ours));
        if their_leaf != our_leaf {
            return Err(IoError::MissingKey {
                path: path.to_path_buf(),
                key: format!("{ours} (found `{key}` in its place)"),
            });
        }
        let view = file.tensor(key).expect("listed by the file");
        arrays.push(decode(path, key, &view, p)?);
    }
    assign(params, arrays);
    Ok(())
}

/// Tensors of a PyTorch `state_dict` this project does not keep: BatchNorm's
/// `num_batches_tracked` (an int64 counter PyTorch uses only when its
/// momentum is `None`), skipped when loading.
fn pytorch_only(name: &str) -> bool {
    leaf(name) == "num_batches_tracked"
}

fn leaf(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// Sort key: the module path with numbers compared as numbers, then the
/// parameter's rank within a module (weight, bias, others).
fn position_key(name: &str) -> (Vec<(u64, String)>, u8, String) {
    let (module, param) = name.rsplit_once('.').unwrap_or(("", name));
    let segments = module
        .split('.')
        .map(|s| match s.parse::<u64>() {
            Ok(n) => (n, String::new()),
            Err(_) => (u64::MAX, s.to_string()),
        })
        .collect();
    let rank = match param {
        "weight" => 0,
        "bias" => 1,
        _ => 2,
    };
    (segments, rank, param.to_string())
}

/// The parameters of a visitor as `(name, param)` pairs, in visiting order.
pub fn collect_params<T: Float>(
    visit: impl FnOnce(&mut dyn FnMut(&str, &Param<T>)),
) -> Vec<(String, Param<T>)> {
    let mut out = Vec::new();
    visit(&mut |name, p| out.push((name.to_string(), p.clone())));
    out
}

/// Everything a model saves, as PyTorch's `state_dict` holds it: each
/// module's parameters, then its buffers (`bn.weight`, `bn.bias`,
/// `bn.running_mean`, `bn.running_var`), modules in visiting order.
pub fn collect_state<T: Float, P: crate::Parameters<T> + ?Sized>(
    model: &P,
) -> Vec<(String, Param<T>)> {
    let params = collect_params(|f| model.visit_params(f));
    let mut buffers = collect_params(|f| model.visit_buffers(f));
    let module = |name: &str| name.rsplit_once('.').map_or("", |(m, _)| m).to_string();
    let mut out = Vec::with_capacity(params.len() + buffers.len());
    let mut i = 0;
    while i < params.len() {
        // One module's parameters, then the buffers of the same module.
        let m = module(&params[i].0);
        while i < params.len() && module(&params[i].0) == m {
            out.push(params[i].clone());
            i += 1;
        }
        let (mine, rest): (Vec<_>, Vec<_>) = buffers.into_iter().partition(|(n, _)| module(n) == m);
        out.extend(mine);
        buffers = rest;
    }
    out.extend(buffers);
    out
}

/// The name and shape of every tensor in a safetensors file.
pub fn tensor_shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>, IoError> {
    let bytes = read(path)?;
    let file = parse(path, &bytes)?;
    Ok(file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect())
}

crate::instances!(fn save_params, save_tensors, serialize_tensors, load_tensors, load_params, load_params_positional);

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("nn-io-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_same_tensors_and_metadata_give_the_same_bytes() {
        // Each map its own hash seed, as in two processes: the files were
        // laid out in each map's order.
        let tensors: Vec<(String, ndarray::ArrayD<f32>)> = (0..12)
            .map(|i| {
                (
                    format!("t{i}"),
                    ndarray::ArrayD::from_elem(ndarray::IxDyn(&[3]), i as f32),
                )
            })
            .collect();
        let metadata = || {
            Some(
                (0..12)
                    .map(|i| (format!("key{i}"), format!("{i}")))
                    .collect(),
            )
        };
        let path = Path::new("in-memory");
        let first = serialize_tensors(path, &tensors, metadata()).unwrap();
        for _ in 0..4 {
            assert!(serialize_tensors(path, &tensors, metadata()).unwrap() == first);
        }
        // And it reads back.
        let dir = scratch("sorted-header");
        let file = dir.join("t.safetensors");
        write_atomic(&file, &first).unwrap();
        let (read, meta) = load_tensors::<f32>(&file).unwrap();
        assert_eq!(read, tensors.into_iter().collect::<Tensors<f32>>());
        assert_eq!(meta, metadata().unwrap().into_iter().collect());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn weights_are_read_only_from_regular_files() {
        // /dev/zero would otherwise be read until memory runs out; a
        // directory and a missing file are refused with their path too.
        let param = Param::new(ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[2])));
        let params = [("w".to_string(), param)];
        let dir = scratch("not-a-file");
        for path in [Path::new("/dev/zero"), dir.as_path()] {
            let err = load_params(path, &params).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        let err = load_params(&dir.join("absent"), &params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent") && !err.contains("regular"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_in_the_way_of_a_directory_is_named_so() {
        let dir = scratch("in-the-way");
        let file = dir.join("runs");
        fs::write(&file, b"").unwrap();
        for target in [file.clone(), file.join("sub")] {
            let err = create_dir_all(&target).unwrap_err().to_string();
            assert!(err.contains("a file is in the way"), "{err}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        let dir = scratch("mode");
        let path = dir.join("private.safetensors");
        fs::write(&path, b"old").unwrap();
        // A mode no umask gives a new file.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o604);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symbolic_link_stays_a_link_to_the_replaced_file() {
        let dir = scratch("link");
        let (target, link) = (dir.join("weights-v1.safetensors"), dir.join("latest"));
        fs::write(&target, b"old").unwrap();
        symlink(&target, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        // A relative link, through a second link, to a file not there yet:
        // the file is made where the chain ends.
        let (first, second) = (dir.join("first"), dir.join("second"));
        symlink("second", &first).unwrap();
        symlink("absent", &second).unwrap();
        write_atomic(&first, b"x").unwrap();
        assert!(fs::symlink_metadata(&first)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(dir.join("absent")).unwrap(), b"x");
        fs::remove_dir_all(&dir).unwrap();
    }
}
