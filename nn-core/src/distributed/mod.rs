//! What the layers need from a data-parallel run: the [`Collective`] the
//! ranks talk through, and batch normalization over every rank's samples
//! ([`sync_batch_norm`], PyTorch's `SyncBatchNorm`), and which gradients a
//! static backward pass has finished as it runs ([`with_gradients_ready`]).
//! The training side (sharded batches, gradient averaging, MPI) is
//! `nn::distributed`.

mod ready;

pub use ready::{watch_gradients, with_gradients_ready, Watch};

use std::cell::Cell;
use std::marker::PhantomData;

/// What data-parallel training needs from the ranks: who is who, a sum over
/// ranks and a broadcast from rank 0. Every rank calls the same operations in
/// the same order, with buffers of the same length.
pub trait Collective {
    /// This rank, from 0.
    fn rank(&self) -> usize;
    /// How many ranks there are.
    fn size(&self) -> usize;
    /// Replaces `buf` on every rank by its element-wise sum over the ranks,
    /// added so that every rank gets the same bits, and a run repeated with
    /// the same ranks gets them again.
    fn sum_f32(&self, buf: &mut [f32]);
    /// [`Collective::sum_f32`] for `f64`.
    fn sum_f64(&self, buf: &mut [f64]);
    /// Copies rank 0's `buf` into every other rank's.
    fn broadcast_f32(&self, buf: &mut [f32]);
    /// [`Collective::broadcast_f32`] for `f64`.
    fn broadcast_f64(&self, buf: &mut [f64]);
    /// Starts summing the `len` values at `send` over the ranks into `recv`,
    /// as [`Collective::sum_f32`] does, possibly returning before the sum is
    /// done: data-parallel training sums a bucket of gradients this way while
    /// backward still computes the layers before it. [`Collective::wait_sums`]
    /// finishes every sum started; every rank starts the same sums in the same
    /// order. By default the sum is done at once.
    ///
    /// # Safety
    /// `send` and `recv` are valid for `len` values and do not overlap; until
    /// `wait_sums` returns, `send` is not written and `recv` neither read nor
    /// written.
    unsafe fn start_sum_f32(&self, send: *const f32, recv: *mut f32, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { sum_now(send, recv, len, |r| self.sum_f32(r)) }
    }
    /// [`Collective::start_sum_f32`] for `f64`.
    ///
    /// # Safety
    /// As for `start_sum_f32`.
    unsafe fn start_sum_f64(&self, send: *const f64, recv: *mut f64, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { sum_now(send, recv, len, |r| self.sum_f64(r)) }
    }
    /// Lets started sums advance (MPI moves their data only inside its calls).
    fn progress_sums(&self) {}
    /// Returns once every started sum is done.
    fn wait_sums(&self) {}
    /// Whether this is rank 0, the one that prints and writes files.
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// The default `start_sum_*`: copies `send` into `recv` and sums it at once.
///
/// # Safety
/// As for [`Collective::start_sum_f32`].
unsafe fn sum_now<T: Copy>(send: *const T, recv: *mut T, len: usize, sum: impl FnOnce(&mut [T])) {
    // SAFETY: the caller's promise: valid for `len` values, not overlapping.
    let recv = unsafe {
        std::ptr::copy_nonoverlapping(send, recv, len);
        std::slice::from_raw_parts_mut(recv, len)
    };
    sum(recv);
}

thread_local! {
    /// The group batch normalization sums its statistics over on this
    /// thread, set by a [`SyncBatchNorm`] guard (its lifetime erased: the
    /// guard clears it before the group can go).
    static GROUP: Cell<Option<*const (dyn Collective + 'static)>> = const { Cell::new(None) };
}

/// Makes batch normalization in training mode on this thread, on both
/// paths, compute its statistics over the samples of every rank of `group`
/// rather than this rank's alone (PyTorch's `SyncBatchNorm`), until the
/// returned guard is dropped: two ranks of 64 samples then normalize as one
/// process with 128 does. Every rank must run the same layers in the same
/// order. Evaluation mode (running statistics) is unaffected.
pub fn sync_batch_norm(group: &dyn Collective) -> SyncBatchNorm<'_> {
    // SAFETY: the pointer is only read while the guard, which borrows
    // `group`, lives; the guard puts the previous value back when dropped.
    let erased: *const (dyn Collective + 'static) = unsafe { std::mem::transmute(group) };
    let previous = GROUP.with(|g| g.replace(Some(erased)));
    SyncBatchNorm {
        previous,
        _group: PhantomData,
    }
}

/// Keeps batch normalization synchronized while it lives (see [`sync_batch_norm`]).
pub struct SyncBatchNorm<'g> {
    previous: Option<*const (dyn Collective + 'static)>,
    _group: PhantomData<&'g dyn Collective>,
}

impl Drop for SyncBatchNorm<'_> {
    fn drop(&mut self) {
        GROUP.with(|g| g.set(self.previous));
    }
}

/// Whether batch normalization on this thread is synchronized over ranks.
pub(crate) fn batch_norm_synced() -> bool {
    GROUP.with(|g| g.get().is_some())
}

/// Sums `values` over the ranks batch normalization is synchronized across,
/// if any; whether it did.
pub(crate) fn sum_for_batch_norm(values: &mut [f64]) -> bool {
    GROUP.with(|g| match g.get() {
        // SAFETY: set by a live `SyncBatchNorm` guard (see `sync_batch_norm`).
        Some(group) => {
            let group = unsafe { &*group };
            if group.size() > 1 {
                group.sum_f64(values);
            }
            true
        }
        None => false,
    })
}
