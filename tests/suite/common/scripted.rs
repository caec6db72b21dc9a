//! For the tests of `EarlyStopping`: a metric whose value each epoch is
//! scripted, and a callback that keeps the weights at every epoch's end.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use nn::ndarray::{ArrayD, ArrayViewD};
use nn::prelude::*;
use nn::train::{Callback, Context, Control, EpochLogs, TrainError};
use nn::Float;

/// Parameters and buffers by name (buffers as `buffer {name}`).
pub fn state<T: Float, P: Parameters<T> + ?Sized>(m: &P) -> BTreeMap<String, ArrayD<T>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        out.insert(n.to_string(), p.value().clone());
    });
    m.visit_buffers(&mut |n, b| {
        out.insert(format!("buffer {n}"), b.value().clone());
    });
    out
}

/// The [`state`] at the end of each epoch so far.
pub type EpochWeights<T> = Rc<RefCell<Vec<BTreeMap<String, ArrayD<T>>>>>;

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
