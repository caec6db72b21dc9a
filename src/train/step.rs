//! What every training loop does around a batch: the callbacks' hooks
//! before it and after it, and between its backward and the next batch the
//! gradient hooks, clipping, the optimizer's step and zeroed gradients
//! (`fit`'s and `fit_graph`'s, in PyTorch's order).

use nn_core::{Float, Parameters};
use nn_optim::{clip_grad_norm, clip_grad_value, Optimizer};

use super::callbacks::{BatchLogs, Callback, Context, Control};
use super::TrainError;
use crate::distributed::{self, Collective};

/// Gradient clipping before each step: the global norm, then each element.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clipping {
    pub norm: Option<f64>,
    pub value: Option<f64>,
}

/// Runs the callbacks' `on_before_optimizer_step`, clips, steps and zeroes
/// the gradients. A hook's error is returned after the step when the ranks
/// of `shards` split it (the others would wait for this rank's share),
/// at once otherwise.
pub(crate) fn finish_step<T: Float>(
    params: &dyn Parameters<T>,
    optimizer: &mut dyn Optimizer<T>,
    logs: &BatchLogs,
    callbacks: &mut [Box<dyn Callback<T> + '_>],
    clipping: Clipping,
    shards: Option<&dyn Collective>,
) -> Result<(), TrainError> {
    let mut hooked = Ok(());
    for cb in callbacks.iter_mut() {
        hooked = cb.on_before_optimizer_step(
            logs,
            &mut Context {
                params,
                optimizer: &mut *optimizer,
            },
        );
        if hooked.is_err() {
            break;
        }
    }
    if let (None, Err(_)) = (shards, &hooked) {
        return hooked;
    }
    if let Some(max) = clipping.norm {
        match shards {
            None => clip_grad_norm(params, max),
            Some(g) => distributed::clip_grad_norm_shares(g, params, max),
        };
    }
    if let Some(v) = clipping.value {
        clip_grad_value(params, v);
    }
    super::data_parallel::optimizer_step(optimizer, params, shards);
    optimizer.zero_grad(params);
    hooked
}

/// `result`, or in a data-parallel run (`parallel`) its error kept in
/// `failure` (the first kept) and `R`'s default in its place.
pub(crate) fn defer<R: Default>(
    parallel: bool,
    failure: &mut Option<TrainError>,
    result: Result<R, TrainError>,
) -> Result<R, TrainError> {
    match result {
        Err(e) if parallel => {
            failure.get_or_insert(e);
            Ok(R::default())
        }
        other => other,
    }
}

/// Every callback's `on_train_batch_begin`, in order. One process stops at
/// an error at once; a rank of a data-parallel run (`parallel`) keeps it in
/// `failure` until the batch's end, where every rank learns of it (the
/// others would wait for its sums).
pub(crate) fn batch_begin_hooks<T: Float>(
    callbacks: &mut [Box<dyn Callback<T> + '_>],
    logs: &BatchLogs,
    ctx: &mut Context<'_, T>,
    parallel: bool,
    failure: &mut Option<TrainError>,
) -> Result<(), TrainError> {
    for cb in callbacks.iter_mut() {
        if failure.is_none() {
            let begun = cb.on_train_batch_begin(logs, ctx);
            defer(parallel, failure, begun)?;
        }
    }
    Ok(())
}

/// Every callback's `on_train_batch_end`, in order, until one fails (kept in
/// `failure` as [`batch_begin_hooks`] keeps it): the first stop asked for.
pub(crate) fn batch_end_hooks<T: Float>(
    callbacks: &mut [Box<dyn Callback<T> + '_>],
    logs: &BatchLogs,
    ctx: &mut Context<'_, T>,
    parallel: bool,
    failure: &mut Option<TrainError>,
) -> Result<Option<String>, TrainError> {
    let mut stop = None;
    for cb in callbacks.iter_mut() {
        if failure.is_some() {
            break;
        }
        let ended = cb.on_train_batch_end(logs, ctx);
        if let Some(Control::Stop(reason)) = defer(parallel, failure, ended.map(Some))? {
            stop.get_or_insert(reason);
        }
    }
    Ok(stop)
}
