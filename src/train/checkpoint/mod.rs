//! Checkpoints for resuming a run exactly: the model's parameters and
//! buffers, the optimizer's state, where the run stands (epoch, step, the
//! schedule's base rate), the [`History`] and the callbacks' state, in one
//! file committed by one atomic rename, with a format version and a checksum.
//!
//! `fit` (and `fit_custom`, `fit_graph`) writes one at the end of every epoch with
//! [`FitOptions::checkpoint_dir`](super::FitOptions::checkpoint_dir) and
//! continues from one with
//! [`FitOptions::resume_from`](super::FitOptions::resume_from). The data
//! order and dropout masks of an epoch depend only on the seed and the epoch
//! (see [`Fit::reseed`](super::Fit::reseed)), so a run killed at any moment
//! and resumed from its last checkpoint ends with the weights of the run that
//! was never interrupted.

mod format;
pub(crate) mod run;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nn_core::io::collect_state;
use nn_core::ndarray::ArrayD;
use nn_core::{Float, Parameters};
use nn_optim::{Optimizer, OptimizerState};

use super::history::History;

pub use format::CheckpointError;

/// The file a checkpoint directory holds.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Everything needed to continue a run where it stood after an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<T: Float> {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The learning rate a per-step schedule is relative to (the optimizer's
    /// rate when the run began).
    pub lr_base: f64,
    /// Parameters and buffers by name.
    pub model: Vec<(String, ArrayD<T>)>,
    /// The optimizer's state.
    pub optimizer: OptimizerState<T>,
    /// The epochs so far.
    pub history: History,
    /// Each callback's state ([`Callback::state`](super::Callback::state)), in order.
    pub callbacks: Vec<Option<serde_json::Value>>,
}

impl<T: Float> Checkpoint<T> {
    /// The checkpoint of a model and optimizer as they stand.
    pub fn capture(
        params: &dyn Parameters<T>,
        optimizer: &dyn Optimizer<T>,
        epoch: usize,
        step: usize,
        lr_base: f64,
    ) -> Self {
        Checkpoint {
            epoch,
            step,
            lr_base,
            model: collect_state(params)
                .into_iter()
                .map(|(n, p)| {
                    let v = p.value().clone();
                    (n, v)
                })
                .collect(),
            optimizer: optimizer.state(),
            history: History::default(),
            callbacks: Vec::new(),
        }
    }

    /// The checkpoint's file in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(CHECKPOINT_FILE)
    }

    /// Writes the checkpoint to `dir/checkpoint.safetensors` (creating `dir`):
    /// one file, written beside and renamed over the last one, file and
    /// directory flushed, so a crash leaves the previous checkpoint or this one.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        nn_core::io::create_dir_all(dir).map_err(|source| CheckpointError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = Self::path_in(dir);
        let bytes = format::encode(self, &path)?;
        nn_core::io::write_atomic(&path, &bytes).map_err(CheckpointError::from)
    }

    /// Reads `dir`'s checkpoint: `Ok(None)` when the directory or the file
    /// does not exist (nothing to resume), an error naming the file and the
    /// problem when it is truncated, corrupt (checksum), of another format
    /// version or element type, and an error naming `dir` when it is a file
    /// or cannot be read: a run resumed from the wrong path must not start
    /// afresh and then save over the checkpoint it was meant to continue.
    pub fn load(dir: &Path) -> Result<Option<Self>, CheckpointError> {
        let io = |path: &Path, source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(dir, e)),
            Ok(m) if !m.is_dir() => {
                let e = std::io::Error::new(
                    ErrorKind::NotADirectory,
                    format!(
                        "not a directory: resume from the directory that holds {CHECKPOINT_FILE}"
                    ),
                );
                return Err(io(dir, e));
            }
            Ok(_) => {}
        }
        let path = Self::path_in(dir);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
            Ok(_) => format::decode(&path).map(Some),
        }
    }

    /// Puts the model's parameters and buffers and the optimizer's state
    /// back, after checking every name and shape against the model: on error
    /// nothing has changed.
    pub fn restore(
        &self,
        path: &Path,
        params: &dyn Parameters<T>,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Result<(), CheckpointError> {
        let mismatch = |problem: String| CheckpointError::Mismatch {
            path: path.to_path_buf(),
            problem,
        };
        let state = collect_state(params);
        if state.len() != self.model.len() {
            return Err(mismatch(format!(
                "the model has {} parameters and buffers, the checkpoint {}",
                state.len(),
                self.model.len()
            )));
        }
        let mut values = Vec::with_capacity(state.len());
        for (name, p) in &state {
            let Some((_, value)) = self.model.iter().find(|(n, _)| n == name) else {
                return Err(mismatch(format!("no `{name}` in the checkpoint")));
            };
            if p.shape() != value.shape() {
                return Err(mismatch(format!(
                    "`{name}` is {:?} in the model but {:?} in the checkpoint",
                    p.shape(),
                    value.shape()
                )));
            }
            values.push(value);
        }
        for (param, saved) in &self.optimizer.params {
            let Some((_, p)) = state.iter().find(|(n, _)| n == param) else {
                return Err(mismatch(format!(
                    "optimizer state for `{param}`, which the model does not have"
                )));
            };
            for (buffer, value) in &saved.buffers {
                if value.shape() != p.shape().as_slice() {
                    return Err(mismatch(format!(
                        "optimizer buffer `{param}/{buffer}` is {:?}, the parameter {:?}",
                        value.shape(),
                        p.shape()
                    )));
                }
            }
        }
        optimizer
            .load_state_for(self.optimizer.clone(), params)
            .map_err(|e| mismatch(e.to_string()))?;
        // The optimizer took its state (it checks before changing anything):
        // now the model's values, all checked above.
        for ((_, p), value) in state.iter().zip(values) {
            *p.value_mut() = value.clone();
        }
        Ok(())
    }
}

nn_core::instances!(Checkpoint: capture, save, load, restore);
