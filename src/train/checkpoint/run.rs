//! Saving a run after an epoch and picking it up again: what `fit`,
//! `fit_custom` and `fit_graph` share around a [`Checkpoint`].

use std::path::Path;

use nn_core::Float;

use super::{Checkpoint, CheckpointError};
use crate::train::callbacks::{Callback, Context};
use crate::train::history::History;
use crate::train::TrainError;

/// Where a resumed run stands.
pub(crate) struct Resumed {
    /// The epochs so far.
    pub history: History,
    /// The epoch to start at.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The rate a per-step schedule is relative to.
    pub lr_base: f64,
}

/// Restores the run checkpointed in `dir` into the model, the optimizer and
/// the callbacks; `None` when `dir` holds none (a fresh start). Every check
/// comes before anything changes.
pub(crate) fn resume<T: Float>(
    ctx: Context<'_, T>,
    dir: &Path,
    callbacks: &mut [Box<dyn Callback<T> + '_>],
) -> Result<Option<Resumed>, TrainError> {
    let Some(checkpoint) = Checkpoint::<T>::load(dir)? else {
        return Ok(None);
    };
    let path = Checkpoint::<T>::path_in(dir);
    let mismatch = |problem: String| CheckpointError::Mismatch {
        path: path.clone(),
        problem,
    };
    if checkpoint.callbacks.len() != callbacks.len() {
        return Err(mismatch(format!(
            "it was written by a run with {} callbacks, this run has {}",
            checkpoint.callbacks.len(),
            callbacks.len()
        ))
        .into());
    }
    for (k, (cb, state)) in callbacks.iter_mut().zip(&checkpoint.callbacks).enumerate() {
        if let Some(state) = state {
            cb.restore(state)
                .map_err(|e| mismatch(format!("callback {k}: {e}")))?;
        }
    }
    checkpoint.restore(&path, ctx.params, ctx.optimizer)?;
    Ok(Some(Resumed {
        history: checkpoint.history,
        epoch: checkpoint.epoch,
        step: checkpoint.step,
        lr_base: checkpoint.lr_base,
    }))
}

/// Writes the run's checkpoint into `dir` after `epoch` epochs and `step`
/// steps.
pub(crate) fn save<T: Float>(
    ctx: Context<'_, T>,
    dir: &Path,
    at: (usize, usize),
    lr_base: f64,
    history: History,
    callbacks: &[Box<dyn Callback<T> + '_>],
) -> Result<(), TrainError> {
    let (epoch, step) = at;
    let mut checkpoint = Checkpoint::capture(ctx.params, &*ctx.optimizer, epoch, step, lr_base);
    checkpoint.history = history;
    checkpoint.callbacks = callbacks.iter().map(|cb| cb.state()).collect();
    checkpoint.save(dir)?;
    Ok(())
}

/// Makes the checkpoint directory now, not after an epoch of work.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), TrainError> {
    nn_core::io::create_dir_all(dir).map_err(|source| TrainError::File {
        path: dir.to_path_buf(),
        source,
    })
}

nn_core::instances!(fn resume, save);

/// What the last checkpoint of this process's epochs held besides the
/// weights, the optimizer and the callbacks: where the run stood.
pub(crate) struct Saved {
    /// Epochs and steps done.
    pub at: (usize, usize),
    /// The rate a per-step schedule is relative to.
    pub lr_base: f64,
    /// The epochs so far, with the reason to stop where there was one.
    pub history: History,
}
