//! Saving a run after an epoch (and once more when it stops there) and
//! picking it up again: what `fit`, `fit_custom` and `fit_graph` share
//! around a [`Checkpoint`].

use std::path::Path;

use nn_core::Float;

use super::{Checkpoint, CheckpointError};
use crate::train::callbacks::{Callback, Context};
use crate::train::history::History;
use crate::train::TrainError;

/// Where a run stands, besides its weights, optimizer and callbacks: what a
/// checkpoint records and a resumed run starts from.
#[derive(Clone)]
pub(crate) struct RunState {
    /// The epochs so far.
    pub history: History,
    /// Epochs done: the epoch a resumed run starts at.
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
) -> Result<Option<RunState>, TrainError> {
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
    Ok(Some(RunState {
        history: checkpoint.history,
        epoch: checkpoint.epoch,
        step: checkpoint.step,
        lr_base: checkpoint.lr_base,
    }))
}

/// Writes the run's checkpoint into `dir`: the model's weights, the
/// optimizer's and the callbacks' state, and where the run stands.
pub(crate) fn save<T: Float>(
    ctx: Context<'_, T>,
    dir: &Path,
    state: RunState,
    callbacks: &[Box<dyn Callback<T> + '_>],
) -> Result<(), TrainError> {
    let mut checkpoint = Checkpoint::capture(
        ctx.params,
        &*ctx.optimizer,
        state.epoch,
        state.step,
        state.lr_base,
    );
    checkpoint.history = state.history;
    checkpoint.callbacks = callbacks.iter().map(|cb| cb.state()).collect();
    checkpoint.save(dir)?;
    Ok(())
}

/// After the train-end hooks of a run that stopped at an epoch's end
/// (`stopped`, its last checkpoint's state): that checkpoint written again
/// with the weights the run ends with, EarlyStopping's restored best. A
/// stopped run resumed returns at once, so running it again then leaves the
/// model as this run leaves it. (A run whose epochs ran out keeps its last
/// epoch's weights: resumed with more epochs, it goes on exactly.)
pub(crate) fn save_stopped<T: Float>(
    ctx: Context<'_, T>,
    dir: Option<&Path>,
    stopped: Option<RunState>,
    callbacks: &[Box<dyn Callback<T> + '_>],
) -> Result<(), TrainError> {
    match (dir, stopped) {
        (Some(dir), Some(state)) => save(ctx, dir, state, callbacks),
        _ => Ok(()),
    }
}

/// Makes the checkpoint directory now, not after an epoch of work.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), TrainError> {
    nn_core::io::create_dir_all(dir).map_err(|source| TrainError::File {
        path: dir.to_path_buf(),
        source,
    })
}

nn_core::instances!(fn resume, save, save_stopped);
