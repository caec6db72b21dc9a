//! The checkpoint file: safetensors holding the model's tensors
//! (`model/<name>`) and the optimizer's (`optim/<param>/<buffer>`), with the
//! rest in its string metadata: a format name and version, the element type,
//! epoch, step, base learning rate, the optimizer's name, rate and step
//! counts, the History and the callbacks' states as JSON (floats as their
//! bit patterns, so they come back exact), and a SHA-256 of all of it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use nn_core::io::{load_tensors, IoError};
use nn_core::ndarray::ArrayD;
use nn_core::Float;
use nn_optim::{OptimizerState, ParamState};
use sha2::{Digest, Sha256};

use super::Checkpoint;
use crate::train::history::{EpochLogs, History};

const FORMAT: &str = "nn-checkpoint";
const VERSION: &str = "1";

/// Why a checkpoint could not be written, read or restored. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a whole, intact checkpoint of this format.
    #[error("{path}: not a usable checkpoint: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong (truncated, checksum, missing field, …).
        problem: String,
    },
    /// The checkpoint does not fit the model or optimizer it is restored into.
    #[error("{path}: does not fit this run: {problem}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Which name or shape differs.
        problem: String,
    },
}

impl From<IoError> for CheckpointError {
    fn from(e: IoError) -> Self {
        match e {
            IoError::Io { path, source } => CheckpointError::Io { path, source },
            other => CheckpointError::Corrupt {
                path: other_path(&other),
                problem: other.to_string(),
            },
        }
    }
}

/// The file an [`IoError`] names.
fn other_path(e: &IoError) -> PathBuf {
    let text = e.to_string();
    PathBuf::from(text.split(": ").next().unwrap_or_default())
}

/// A float as JSON that parses back to the same bits.
fn bits(v: f64) -> serde_json::Value {
    serde_json::Value::from(v.to_bits())
}

fn from_bits(v: &serde_json::Value) -> Option<f64> {
    v.as_u64().map(f64::from_bits)
}

/// The History as JSON: per epoch, its number and its entries in order.
pub(crate) fn history_to_json(h: &History) -> serde_json::Value {
    let epochs: Vec<serde_json::Value> = h
        .epochs
        .iter()
        .map(|e| {
            let entries: Vec<serde_json::Value> = e
                .entries()
                .into_iter()
                .map(|(n, v)| serde_json::json!([n, bits(v)]))
                .collect();
            serde_json::json!({ "epoch": e.epoch, "entries": entries })
        })
        .collect();
    serde_json::json!({ "epochs": epochs, "stopped": h.stopped })
}

/// Reads [`history_to_json`]'s output.
pub(crate) fn history_from_json(v: &serde_json::Value) -> Option<History> {
    let mut history = History {
        stopped: v.get("stopped")?.as_str().map(String::from),
        ..History::default()
    };
    for e in v.get("epochs")?.as_array()? {
        let mut logs = EpochLogs {
            epoch: e.get("epoch")?.as_u64()? as usize,
            ..EpochLogs::default()
        };
        for pair in e.get("entries")?.as_array()? {
            let name = pair.get(0)?.as_str()?;
            let value = from_bits(pair.get(1)?)?;
            match name {
                "loss" => logs.loss = value,
                "val_loss" => logs.val_loss = Some(value),
                "lr" => logs.lr = value,
                "seconds" => logs.seconds = value,
                "samples_per_sec" => logs.samples_per_sec = value,
                n if n.starts_with("val_") => logs.val_metrics.push((n.into(), value)),
                n => logs.metrics.push((n.into(), value)),
            }
        }
        history.epochs.push(logs);
    }
    Some(history)
}

/// SHA-256 over every metadata entry but the checksum (sorted) and every
/// tensor's name, shape and bytes (sorted by name), as hex.
fn checksum<T: Float>(
    meta: &BTreeMap<String, String>,
    tensors: &BTreeMap<String, ArrayD<T>>,
) -> String {
    let mut h = Sha256::new();
    for (k, v) in meta.iter().filter(|(k, _)| *k != "checksum") {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    let mut bytes = Vec::new();
    for (name, a) in tensors {
        h.update(name.as_bytes());
        h.update([0]);
        for &d in a.shape() {
            h.update((d as u64).to_le_bytes());
        }
        bytes.clear();
        for &x in a.as_standard_layout().iter() {
            x.extend_le(&mut bytes);
        }
        h.update(&bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The checkpoint's tensors by their names in the file.
fn tensors_of<T: Float>(c: &Checkpoint<T>) -> BTreeMap<String, ArrayD<T>> {
    let mut out = BTreeMap::new();
    for (name, v) in &c.model {
        out.insert(format!("model/{name}"), v.clone());
    }
    for (param, st) in &c.optimizer.params {
        for (buffer, v) in &st.buffers {
            out.insert(format!("optim/{param}/{buffer}"), v.clone());
        }
    }
    out
}

/// The bytes of `c`'s file (for `path`, named in errors).
pub(super) fn encode<T: Float>(c: &Checkpoint<T>, path: &Path) -> Result<Vec<u8>, CheckpointError> {
    let tensors = tensors_of(c);
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("version".to_string(), VERSION.to_string());
    meta.insert("dtype".to_string(), T::DTYPE.to_string());
    meta.insert("epoch".to_string(), c.epoch.to_string());
    meta.insert("step".to_string(), c.step.to_string());
    meta.insert("lr_base".to_string(), c.lr_base.to_bits().to_string());
    meta.insert("optim.name".to_string(), c.optimizer.optimizer.clone());
    meta.insert("optim.lr".to_string(), c.optimizer.lr.to_bits().to_string());
    for (param, st) in &c.optimizer.params {
        meta.insert(format!("optim.step/{param}"), st.step.to_string());
    }
    meta.insert(
        "history".to_string(),
        history_to_json(&c.history).to_string(),
    );
    meta.insert(
        "callbacks".to_string(),
        serde_json::Value::from(c.callbacks.clone()).to_string(),
    );
    // The model's order, which the file's sorted tensors lose.
    let order: Vec<&str> = c.model.iter().map(|(n, _)| n.as_str()).collect();
    meta.insert(
        "model.order".to_string(),
        serde_json::json!(order).to_string(),
    );
    let sum = checksum(&meta, &tensors);
    meta.insert("checksum".to_string(), sum);
    let list: Vec<(String, ArrayD<T>)> = tensors.into_iter().collect();
    nn_core::io::serialize_tensors(
        path,
        &list,
        Some(meta.into_iter().collect::<HashMap<_, _>>()),
    )
    .map_err(CheckpointError::from)
}

/// Reads and verifies the checkpoint at `path`.
pub(super) fn decode<T: Float>(path: &Path) -> Result<Checkpoint<T>, CheckpointError> {
    let corrupt = |problem: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let (tensors, meta) = load_tensors::<T>(path).map_err(|e| match e {
        IoError::Io { path, source } => CheckpointError::Io { path, source },
        IoError::Format { message, .. } => {
            corrupt(format!("not a valid safetensors file: {message}"))
        }
        // Written by a run of the other element type.
        IoError::DtypeMismatch {
            key,
            found,
            expected,
            ..
        } => corrupt(format!(
            "it holds {found} tensors (`{key}`), this run trains in {expected}"
        )),
        other => corrupt(other.to_string()),
    })?;
    let field = |key: &str| {
        meta.get(key)
            .ok_or_else(|| corrupt(format!("no `{key}` in its metadata")))
    };
    if field("format")? != FORMAT {
        return Err(corrupt(format!(
            "format `{}`, not `{FORMAT}`",
            field("format")?
        )));
    }
    if field("version")? != VERSION {
        return Err(corrupt(format!(
            "format version {}, this build reads version {VERSION}",
            field("version")?
        )));
    }
    if checksum(&meta, &tensors) != *field("checksum")? {
        return Err(corrupt("the checksum does not match its contents".into()));
    }
    let number = |key: &str| -> Result<u64, CheckpointError> {
        field(key)?
            .parse()
            .map_err(|_| corrupt(format!("`{key}` is not a number")))
    };
    let json = |key: &str| -> Result<serde_json::Value, CheckpointError> {
        serde_json::from_str(field(key)?).map_err(|e| corrupt(format!("`{key}`: {e}")))
    };
    let order: Vec<String> = serde_json::from_value(json("model.order")?)
        .map_err(|e| corrupt(format!("`model.order`: {e}")))?;
    let mut model = Vec::with_capacity(order.len());
    for name in order {
        let v = tensors
            .get(&format!("model/{name}"))
            .ok_or_else(|| corrupt(format!("no tensor for `{name}`")))?;
        model.push((name, v.clone()));
    }
    let mut params: BTreeMap<String, ParamState<T>> = BTreeMap::new();
    for (key, value) in &meta {
        if let Some(param) = key.strip_prefix("optim.step/") {
            let step = value
                .parse()
                .map_err(|_| corrupt(format!("`{key}` is not a number")))?;
            params.entry(param.to_string()).or_default().step = step;
        }
    }
    for (key, v) in &tensors {
        if let Some(rest) = key.strip_prefix("optim/") {
            let (param, buffer) = rest
                .rsplit_once('/')
                .ok_or_else(|| corrupt(format!("tensor `{key}` is not optim/<param>/<buffer>")))?;
            params
                .entry(param.to_string())
                .or_default()
                .buffers
                .insert(buffer.to_string(), v.clone());
        }
    }
    let history = history_from_json(&json("history")?)
        .ok_or_else(|| corrupt("`history` is not a History".into()))?;
    let callbacks: Vec<Option<serde_json::Value>> = serde_json::from_value(json("callbacks")?)
        .map_err(|e| corrupt(format!("`callbacks`: {e}")))?;
    // A schedule multiplies it: the optimizer would refuse the product only
    // after the model was restored.
    let lr_base = f64::from_bits(number("lr_base")?);
    if !(lr_base.is_finite() && lr_base >= 0.0) {
        return Err(corrupt(format!(
            "`lr_base` is {lr_base}, not a learning rate"
        )));
    }
    Ok(Checkpoint {
        epoch: number("epoch")? as usize,
        step: number("step")? as usize,
        lr_base,
        model,
        optimizer: OptimizerState {
            optimizer: field("optim.name")?.clone(),
            lr: f64::from_bits(number("optim.lr")?),
            params,
        },
        history,
        callbacks,
    })
}

nn_core::instances!(fn encode, decode);
