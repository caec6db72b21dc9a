//! Data-parallel training, as PyTorch's `DistributedDataParallel`: several
//! processes (ranks) hold the same model, each trains on its own share of
//! every batch, and their gradients are averaged before every optimizer
//! step, so every rank takes the same step and the run matches one process
//! training on the whole batch.
//!
//! The ranks talk through a [`Collective`]: `Mpi` (feature `mpi`) across
//! processes on one machine or many, launched by `mpirun`; [`ThreadGroup`]
//! for ranks that are threads of one process (tests, trying things without
//! MPI). [`FitOptions::distributed`](crate::train::FitOptions::distributed)
//! makes `fit` data-parallel; hand-written loops use the same pieces:
//! [`broadcast_parameters`], [`Batches::sharded`](nn_core::data::Batches::sharded)
//! and [`average_gradients`]; to split the optimizer's work over the ranks
//! (ZeRO), [`average_gradient_shares`], [`clip_grad_norm_shares`],
//! `Optimizer::step_share` with [`share_of`], [`gather_parameters`] and
//! [`gather_optimizer_state`].
//!
//! ```
//! use nn::distributed::{average_gradients, broadcast_parameters, Collective, ThreadGroup};
//! use nn::prelude::*;
//!
//! sequential! { struct Net: input(3) { Dense(2) } }
//!
//! // Two ranks as threads: each starts from its own seed, takes rank 0's
//! // weights, and averages the gradients of its own data.
//! let weights = ThreadGroup::run(2, |group| {
//!     let mut net = Net::with_seed(group.rank() as u64);
//!     broadcast_parameters(group, &net);
//!     let x = nn::ndarray::ArrayD::from_elem(nn::ndarray::IxDyn(&[4, 3]), group.rank() as f32);
//!     net.forward_train(x.view());
//!     net.backward(nn::ndarray::ArrayD::ones(nn::ndarray::IxDyn(&[4, 2])).view());
//!     average_gradients(group, &net);
//!     let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
//!     sgd.step(&net);
//!     net.named_params().into_iter().map(|(_, p)| p.value().clone()).collect::<Vec<_>>()
//! });
//! assert_eq!(weights[0], weights[1]);
//! ```

mod buckets;
#[cfg(feature = "mpi")]
mod mpi;
mod sharded;
mod threads;

#[cfg(feature = "mpi")]
pub use self::mpi::{Mpi, MpiError};
pub use nn_core::distributed::{watch_gradients, with_gradients_ready, Watch};
pub use nn_core::distributed::{with_sync_batch_norm, Collective};
pub use sharded::{clip_grad_norm_shares, gather_optimizer_state, gather_parameters, share_of};
pub use threads::ThreadGroup;

pub(crate) use buckets::Buckets;

use std::any::TypeId;

use nn_core::{Float, Param, Parameters};

/// Views `buf` as `[f32]` or `[f64]`, whichever `T` is.
fn typed<T: Float>(buf: &mut [T]) -> Result<&mut [f32], &mut [f64]> {
    let (ptr, len) = (buf.as_mut_ptr(), buf.len());
    // SAFETY: `T` is `f32` or `f64` (checked by `TypeId`), so the memory is
    // exactly that slice.
    unsafe {
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            Ok(std::slice::from_raw_parts_mut(ptr.cast(), len))
        } else {
            assert!(
                TypeId::of::<T>() == TypeId::of::<f64>(),
                "nn::distributed: elements must be f32 or f64"
            );
            Err(std::slice::from_raw_parts_mut(ptr.cast(), len))
        }
    }
}

/// Panics unless `T` is `f32` or `f64`, the element types collectives move.
fn check_element<T: Float>() {
    let t = TypeId::of::<T>();
    assert!(
        t == TypeId::of::<f32>() || t == TypeId::of::<f64>(),
        "nn::distributed: elements must be f32 or f64"
    );
}

/// Sums `buf` over the ranks (see [`Collective::sum_f32`]).
pub fn sum<T: Float>(group: &dyn Collective, buf: &mut [T]) {
    if group.size() > 1 {
        match typed(buf) {
            Ok(b) => group.sum_f32(b),
            Err(b) => group.sum_f64(b),
        }
    }
}

/// Copies rank 0's `buf` to every rank.
pub fn broadcast<T: Float>(group: &dyn Collective, buf: &mut [T]) {
    if group.size() > 1 {
        match typed(buf) {
            Ok(b) => group.broadcast_f32(b),
            Err(b) => group.broadcast_f64(b),
        }
    }
}

/// Gives every rank rank 0's parameters and buffers (BatchNorm's running
/// statistics), as DDP does when it wraps a model: ranks that built their
/// models from different seeds start from the same weights.
pub fn broadcast_parameters<T: Float>(group: &dyn Collective, model: &dyn Parameters<T>) {
    let all: Vec<Param<T>> = nn_core::io::collect_state(model)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    broadcast_values(group, &all);
}

/// Gives every rank rank 0's buffers (BatchNorm's running statistics): each
/// rank's follow its own share of the data.
pub fn broadcast_buffers<T: Float>(group: &dyn Collective, model: &dyn Parameters<T>) {
    let mut all: Vec<Param<T>> = Vec::new();
    model.visit_buffers(&mut |_, p| all.push(p.clone()));
    broadcast_values(group, &all);
}

/// Copies rank 0's values of `params` to every rank, in one message.
fn broadcast_values<T: Float>(group: &dyn Collective, params: &[Param<T>]) {
    if params.is_empty() || group.size() < 2 {
        return;
    }
    let mut flat: Vec<T> = Vec::with_capacity(params.iter().map(Param::len).sum());
    for p in params {
        flat.extend(p.value().iter().copied());
    }
    broadcast(group, &mut flat);
    let mut at = 0;
    for p in params {
        let mut v = p.value_mut();
        let n = v.len();
        for (dst, &src) in v.iter_mut().zip(&flat[at..at + n]) {
            *dst = src;
        }
        at += n;
    }
}

/// Averages the gradients over the ranks (each rank's batch share counting
/// equally, as DDP's), before the optimizer step: one message after
/// backward (`fit` starts buckets while backward runs, see
/// [`FitOptions::bucket_mb`](crate::train::FitOptions::bucket_mb)). A
/// parameter without a gradient counts as zeros, so ranks whose batch left
/// one untouched still agree; one that no rank's backward reached keeps no
/// gradient (the optimizers skip it, as in one process).
pub fn average_gradients<T: Float>(group: &dyn Collective, model: &dyn Parameters<T>) {
    let weight = 1.0 / group.size() as f64;
    Buckets::new(group, model, weight, f64::INFINITY, 0, false).finish(&mut [], |_| 1.0);
}

/// [`average_gradients`] for a sharded step: each rank gets the average of
/// its [`Share`](nn_core::distributed::Share) of each gradient only (a
/// reduce-scatter, half the messages of an all-reduce), the rest of its
/// gradients left as they were, so anything taken over whole gradients
/// is wrong on every rank: clip with [`clip_grad_norm_shares`], not
/// `clip_grad_norm`. Then `optimizer.step_share(model, share_of(group))`
/// and [`gather_parameters`] take the step, as `fit` does with
/// [`FitOptions::shard_optimizer`](crate::train::FitOptions::shard_optimizer).
/// Every rank calls it, at the same point.
///
/// ```
/// use nn::distributed::{average_gradient_shares, broadcast_parameters, gather_parameters, share_of};
/// use nn::distributed::{Collective, ThreadGroup};
/// use nn::prelude::*;
///
/// sequential! { struct Net: input(3) { Dense(2) } }
///
/// let weights = ThreadGroup::run(2, |group| {
///     let mut net = Net::with_seed(0);
///     broadcast_parameters(group, &net);
///     let x = nn::ndarray::ArrayD::from_elem(nn::ndarray::IxDyn(&[4, 3]), group.rank() as f32);
///     net.forward_train(x.view());
///     net.backward(nn::ndarray::ArrayD::ones(nn::ndarray::IxDyn(&[4, 2])).view());
///     average_gradient_shares(group, &net);
///     let mut adam = Adam::new(AdamConfig::default()).unwrap();
///     adam.step_share(&net, share_of(group));
///     gather_parameters(group, &net);
///     net.named_params().into_iter().map(|(_, p)| p.value().clone()).collect::<Vec<_>>()
/// });
/// assert_eq!(weights[0], weights[1]);
/// ```
pub fn average_gradient_shares<T: Float>(group: &dyn Collective, model: &dyn Parameters<T>) {
    let weight = 1.0 / group.size() as f64;
    let sharded = group.size() > 1;
    Buckets::new(group, model, weight, f64::INFINITY, 0, sharded).finish(&mut [], |_| 1.0);
}

/// Starts summing `send` over the ranks into this rank's block of `recv`
/// (see [`Collective::start_reduce_scatter_f32`]).
///
/// # Safety
/// Neither buffer is touched again (nor freed) until `group.wait_sums()` returns.
unsafe fn start_reduce_scatter<T: Float>(
    group: &dyn Collective,
    send: &[T],
    recv: &mut [T],
    counts: &[usize],
) {
    assert!(
        send.len() == recv.len() && counts.iter().sum::<usize>() == send.len(),
        "start_reduce_scatter: buffers of different lengths"
    );
    // SAFETY: `T` is `f32` or `f64` (see `typed`); the caller keeps both alive.
    unsafe {
        match typed(recv) {
            Ok(r) => group.start_reduce_scatter_f32(send.as_ptr().cast(), r.as_mut_ptr(), counts),
            Err(r) => group.start_reduce_scatter_f64(send.as_ptr().cast(), r.as_mut_ptr(), counts),
        }
    }
}

/// Starts summing `send` over the ranks into `recv` (see
/// [`Collective::start_sum_f32`]).
///
/// # Safety
/// Neither buffer is touched again (nor freed) until `group.wait_sums()` returns.
unsafe fn start_sum<T: Float>(group: &dyn Collective, send: &[T], recv: &mut [T]) {
    assert_eq!(
        send.len(),
        recv.len(),
        "start_sum: buffers of different lengths"
    );
    let len = send.len();
    // SAFETY: `T` is `f32` or `f64` (see `typed`); the caller keeps both alive.
    unsafe {
        match typed(recv) {
            Ok(r) => group.start_sum_f32(send.as_ptr().cast(), r.as_mut_ptr(), len),
            Err(r) => group.start_sum_f64(send.as_ptr().cast(), r.as_mut_ptr(), len),
        }
    }
}
