//! What every training loop does between a batch's backward and the next
//! batch: the callbacks' gradient hooks, clipping, the optimizer's step and
//! zeroed gradients (`fit`'s and `fit_graph`'s, in PyTorch's order).

use nn_core::{Float, Parameters};
use nn_optim::{clip_grad_norm, clip_grad_value, Optimizer};

use super::callbacks::{BatchLogs, Callback, Context};
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
