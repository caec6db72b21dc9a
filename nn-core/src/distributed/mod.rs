//! What the layers need from a data-parallel run: the [`Collective`] the
//! ranks talk through, and batch normalization over every rank's samples
//! ([`with_sync_batch_norm`], PyTorch's `SyncBatchNorm`), and which gradients a
//! static backward pass has finished as it runs ([`with_gradients_ready`]).
//! The training side (sharded batches, gradient averaging, MPI) is
//! `nn::distributed`.

mod ready;
mod share;

pub use ready::{watch_gradients, with_gradients_ready, Watch};
pub use share::Share;

use std::cell::Cell;

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
    /// Starts summing the values at `send` over the ranks, as
    /// [`Collective::start_sum_f32`] does, except that only this rank's block
    /// of `recv` need hold the sum once [`Collective::wait_sums`] returns: the
    /// buffers hold `counts[r]` values for rank `r`, one block after another
    /// (MPI's reduce-scatter). A sharded optimizer's step sums each rank's
    /// share this way, updates it, and exchanges the shares with
    /// [`Collective::exchange_shares_f32`]. By default the whole sum.
    ///
    /// # Safety
    /// As for `start_sum_f32`, with `len` the sum of `counts`.
    unsafe fn start_reduce_scatter_f32(&self, send: *const f32, recv: *mut f32, counts: &[usize]) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.start_sum_f32(send, recv, counts.iter().sum()) }
    }
    /// [`Collective::start_reduce_scatter_f32`] for `f64`.
    ///
    /// # Safety
    /// As for `start_reduce_scatter_f32`.
    unsafe fn start_reduce_scatter_f64(&self, send: *const f64, recv: *mut f64, counts: &[usize]) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.start_sum_f64(send, recv, counts.iter().sum()) }
    }
    /// Gives every rank each rank's [`Share`] of each of `pieces` (rank `r`
    /// of `n` owns `len·r/n .. len·(r+1)/n` of a piece of `len` values),
    /// bit for bit: the exchange after a sharded optimizer's step. By
    /// default one sum of every piece, each rank's values outside its
    /// shares set to `-0.0` (which added to any value gives that value).
    fn exchange_shares_f32(&self, pieces: &mut [&mut [f32]]) {
        exchange_by_sum(self.rank(), self.size(), pieces, |buf| self.sum_f32(buf));
    }
    /// [`Collective::exchange_shares_f32`] for `f64`.
    fn exchange_shares_f64(&self, pieces: &mut [&mut [f64]]) {
        exchange_by_sum(self.rank(), self.size(), pieces, |buf| self.sum_f64(buf));
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

/// The default [`Collective::exchange_shares_f32`]: every piece in one
/// buffer, `-0.0` outside this rank's shares, summed.
fn exchange_by_sum<T: crate::Float>(
    rank: usize,
    ranks: usize,
    pieces: &mut [&mut [T]],
    sum: impl FnOnce(&mut [T]),
) {
    if ranks < 2 {
        return;
    }
    let share = Share::new(rank, ranks);
    let mut buf = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for p in pieces.iter() {
        let own = share.range(p.len());
        buf.extend(p.iter().enumerate().map(
            |(i, &v)| {
                if own.contains(&i) {
                    v
                } else {
                    -T::zero()
                }
            },
        ));
    }
    sum(&mut buf);
    let mut at = 0;
    for p in pieces.iter_mut() {
        p.copy_from_slice(&buf[at..at + p.len()]);
        at += p.len();
    }
}

thread_local! {
    /// The group batch normalization sums its statistics over on this
    /// thread, set by [`with_sync_batch_norm`] (its lifetime erased: it is
    /// cleared before the group can go).
    static GROUP: Cell<Option<*const (dyn Collective + 'static)>> = const { Cell::new(None) };
}

/// Runs `f` with batch normalization in training mode on this thread, on
/// both paths, computing its statistics over the samples of every rank of
/// `group` rather than this rank's alone (PyTorch's `SyncBatchNorm`): two
/// ranks of 64 samples then normalize as one process with 128 does. Every
/// rank must run the same layers in the same order. Evaluation mode
/// (running statistics) is unaffected. The previous setting comes back when
/// `f` returns or unwinds.
pub fn with_sync_batch_norm<R>(group: &dyn Collective, f: impl FnOnce() -> R) -> R {
    /// Puts the previous group back, even if `f` unwinds.
    struct Restore(Option<*const (dyn Collective + 'static)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            GROUP.with(|g| g.set(self.0));
        }
    }
    // SAFETY: the pointer is only read from inside `f`, while `group` is
    // borrowed here; `Restore` removes it before this function returns.
    let erased: *const (dyn Collective + 'static) = unsafe { std::mem::transmute(group) };
    let _restore = Restore(GROUP.with(|g| g.replace(Some(erased))));
    f()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One rank whose sums change nothing.
    struct Alone;

    impl Collective for Alone {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            1
        }
        fn sum_f32(&self, _: &mut [f32]) {}
        fn sum_f64(&self, _: &mut [f64]) {}
        fn broadcast_f32(&self, _: &mut [f32]) {}
        fn broadcast_f64(&self, _: &mut [f64]) {}
    }

    #[test]
    fn batch_norm_is_synchronized_inside_the_call_only_even_when_it_unwinds() {
        assert!(!batch_norm_synced());
        with_sync_batch_norm(&Alone, || assert!(batch_norm_synced()));
        assert!(!batch_norm_synced());
        let unwound = std::panic::catch_unwind(|| {
            with_sync_batch_norm(&Alone, || panic!("a failing step"));
        });
        assert!(unwound.is_err());
        assert!(!batch_norm_synced(), "the group outlived the call");
    }
}
