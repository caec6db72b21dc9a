//! A sharded optimizer (ZeRO's partitioning of the optimizer's work,
//! PyTorch's `ZeroRedundancyOptimizer`): each rank of a data-parallel run
//! sums and updates only its [`Share`] of every parameter, then the ranks
//! exchange the updated shares. Each rank does 1/N of the optimizer's work,
//! and the gradients' reduce-scatter with the parameters' exchange move what
//! one all-reduce moves. Memory is not split: every rank keeps whole
//! gradients and optimizer buffers, current in its own share.

use nn_core::distributed::Share;
use nn_core::{Float, Param, Parameters};
use nn_optim::Optimizer;

use super::Collective;

/// This rank's share of every parameter in `group`: of a parameter of `n`
/// elements (row-major), rank `r` of `N` owns `n·r/N .. n·(r+1)/N`.
pub fn share_of(group: &dyn Collective) -> Share {
    Share::new(group.rank(), group.size())
}

/// Gives every rank each rank's updated share of every trainable parameter
/// of `model`, after each has taken its share of the step
/// ([`Optimizer::step_share`]). Every rank calls it, at the same point.
///
/// # Panics
/// If a trainable parameter is not laid out row-major.
pub fn gather_parameters<T: Float>(group: &dyn Collective, model: &dyn Parameters<T>) {
    let mut params: Vec<Param<T>> = Vec::new();
    // A parameter two layers share is gathered once.
    nn_core::visit_distinct_params(model, &mut |_, p| {
        if p.is_trainable() {
            params.push(p.clone());
        }
    });
    let mut values: Vec<_> = params.iter().map(|p| p.value_mut()).collect();
    let mut slices: Vec<&mut [T]> = values
        .iter_mut()
        .map(|v| {
            v.as_slice_mut()
                .expect("gather_parameters: parameters are row-major")
        })
        .collect();
    gather_shares(group, &mut slices);
}

/// Puts the optimizer's state together from each rank's share of it (a
/// rank keeps only its own share current): before a checkpoint is written,
/// and when training ends, so that the optimizer is as one process would
/// have left it. Every rank calls it, at the same point (a call on rank 0
/// alone would wait for the others forever).
///
/// # Errors
/// The optimizer's own [`Optimizer::load_state`] error, were it to refuse
/// the state put together (a state that is not finite, for one).
pub fn gather_optimizer_state<T: Float>(
    group: &dyn Collective,
    optimizer: &mut dyn Optimizer<T>,
) -> Result<(), nn_optim::OptimError> {
    let mut state = optimizer.state();
    // Names and buffers in the maps' order, the same on every rank.
    let mut slices: Vec<&mut [T]> = state
        .params
        .values_mut()
        .flat_map(|p| p.buffers.values_mut())
        .map(|b| {
            b.as_slice_mut()
                .expect("gather_optimizer_state: buffers are row-major")
        })
        .collect();
    gather_shares(group, &mut slices);
    optimizer.load_state(state)
}

/// Each rank's share of each of `arrays` from that rank (see
/// [`Collective::exchange_shares_f32`]).
fn gather_shares<T: Float>(group: &dyn Collective, arrays: &mut [&mut [T]]) {
    let (mut singles, mut doubles) = (Vec::new(), Vec::new());
    for a in arrays.iter_mut() {
        match super::typed(a) {
            Ok(a) => singles.push(a),
            Err(a) => doubles.push(a),
        }
    }
    if !singles.is_empty() {
        group.exchange_shares_f32(&mut singles);
    }
    if !doubles.is_empty() {
        group.exchange_shares_f64(&mut doubles);
    }
}

/// [`nn_optim::clip_grad_norm`] after [`average_gradient_shares`](super::average_gradient_shares),
/// where each rank holds only its share of each gradient averaged: the
/// norm over every rank's share (`clip_grad_norm` itself would take each
/// rank's own, wrong, norm), the scale applied to this rank's gradients.
/// Every rank calls it, at the same point. Returns the norm.
///
/// # Panics
/// If a gradient is not laid out row-major.
pub fn clip_grad_norm_shares<T: Float>(
    group: &dyn Collective,
    model: &dyn Parameters<T>,
    max_norm: f64,
) -> f64 {
    let share = share_of(group);
    let mut sum = [0.0f64];
    // A parameter two layers share is counted once, as `clip_grad_norm` does.
    nn_core::visit_distinct_params(model, &mut |_, p| {
        if let (true, Some(g)) = (p.is_trainable(), p.grad().as_ref()) {
            let g = g.as_slice().expect("gradients are row-major");
            sum[0] += g[share.range(g.len())]
                .iter()
                .map(|&v| v.as_f64() * v.as_f64())
                .sum::<f64>();
        }
    });
    super::sum(group, &mut sum);
    let norm = sum[0].sqrt();
    nn_optim::clip_to_norm(model, norm, max_norm);
    norm
}
