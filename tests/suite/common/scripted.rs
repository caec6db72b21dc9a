//! For the tests of `EarlyStopping`: a metric whose value each epoch is
//! scripted, a callback that keeps the weights at every epoch's end, and the
//! check of a stopped run run again from its checkpoint.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use nn::ndarray::{ArrayD, ArrayViewD};
use nn::prelude::*;
use nn::train::{Callback, Context, Control, EpochLogs, History, TrainError};
use nn::Float;

/// Parameters and buffers by name (buffers as `buffer {name}`).
pub fn state<T: Float, P: Parameters<T> + ?Sized>(m: &P) -> State<T> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        out.insert(n.to_string(), p.value().clone());
    });
    m.visit_buffers(&mut |n, b| {
        out.insert(format!("buffer {n}"), b.value().clone());
    });
    out
}

/// Parameters and buffers by name, as [`state`] gives them.
pub type State<T> = BTreeMap<String, ArrayD<T>>;

/// The [`state`] at the end of each epoch so far.
pub type EpochWeights<T> = Rc<RefCell<Vec<State<T>>>>;

/// Reports `values[e]` in epoch `e` (from 0), the epoch read from `done`,
/// which [`Snapshots`] advances after each epoch.
pub struct Scripted<T> {
    pub values: Vec<f64>,
    pub done: EpochWeights<T>,
}

impl<T: Float> nn::train::Metric<T> for Scripted<T> {
    fn name(&self) -> &str {
        "scripted_loss"
    }
    fn reset(&mut self) {}
    fn update(&mut self, _: ArrayViewD<'_, T>, _: &nn::loss::Target<'_, T>) {}
    fn result(&self) -> f64 {
        self.values[self.done.borrow().len()]
    }
}

/// Keeps the [`state`] at the end of every epoch.
pub struct Snapshots<T>(pub EpochWeights<T>);

impl<T: Float> Callback<T> for Snapshots<T> {
    fn on_epoch_end(
        &mut self,
        _: &EpochLogs,
        ctx: &mut Context<'_, T>,
    ) -> Result<Control, TrainError> {
        self.0.borrow_mut().push(state(ctx.params));
        Ok(Control::Continue)
    }
}

/// Runs twice a training run watched by EarlyStopping (patience 2, restoring
/// the best weights) on [`Scripted`] values whose best is epoch 2's,
/// checkpointing to and resuming from one directory: `fit_run(values,
/// epochs, dir)` gives the History, the state the model ends with and each
/// epoch's. After a stop at an epoch's end the second run trains nothing and
/// leaves the restored best; after the epochs ran out, the last epoch's
/// weights, which the checkpoint keeps so that a resume goes on exactly.
pub fn check_rerun<T: Float>(
    name: &str,
    fit_run: impl Fn(&[f64], usize, &Path) -> (History, State<T>, Vec<State<T>>),
) {
    for (tag, values, epochs, trained, kept) in [
        ("stopped", &[0.5, 0.3, 0.4, 0.45, 0.5, 0.6][..], 6, 4, 1),
        ("ran_out", &[0.5, 0.3, 0.4][..], 3, 3, 2),
    ] {
        let dir = std::env::temp_dir().join(format!("nn_{name}_{tag}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (first, weights, snapshots) = fit_run(values, epochs, &dir);
        assert_eq!(first.epochs.len(), trained, "{tag}");
        assert_eq!(weights, snapshots[1], "{tag}: the best epoch's");
        assert_ne!(snapshots[1], snapshots[trained - 1], "{tag}");
        let (again, rerun, rerun_snapshots) = fit_run(values, epochs, &dir);
        assert!(rerun_snapshots.is_empty(), "{tag}: trained again");
        assert_eq!(
            (again.epochs.len(), &again.stopped),
            (trained, &first.stopped),
            "{tag}"
        );
        assert_eq!(rerun, snapshots[kept], "{tag}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
