//! The count of floating-point operations behind [`flops_so_far`]: one
//! count per thread, each on a cache line of its own. Every product added
//! to one shared atomic, and threads running products at once fought over
//! its line: 2.4 % of a small vision transformer's epoch sat on that add.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One thread's count, alone on its cache line; only that thread writes it.
#[repr(align(64))]
#[derive(Default)]
struct Count(AtomicU64);

/// The counts of the live threads that have counted, and the total of
/// those that have exited.
struct Counts {
    live: Vec<Arc<Count>>,
    retired: u64,
}

static COUNTS: Mutex<Counts> = Mutex::new(Counts {
    live: Vec::new(),
    retired: 0,
});

fn counts() -> MutexGuard<'static, Counts> {
    // The guarded data is plain numbers: a panic elsewhere leaves it usable.
    COUNTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This thread's entry in [`COUNTS`]; folded into `retired` when the
/// thread exits, so threads that come and go leave nothing behind.
struct ThreadCount(Arc<Count>);

impl ThreadCount {
    fn register() -> Self {
        let count = Arc::new(Count::default());
        counts().live.push(Arc::clone(&count));
        ThreadCount(count)
    }
}

impl Drop for ThreadCount {
    fn drop(&mut self) {
        let mut all = counts();
        all.retired += self.0 .0.load(Ordering::Relaxed);
        all.live.retain(|c| !Arc::ptr_eq(c, &self.0));
    }
}

thread_local! {
    static MINE: ThreadCount = ThreadCount::register();
}

/// Floating-point operations (two per multiply-add) of every [`gemm`] and
/// every direct convolution this process has run: every matrix product and
/// convolution of the framework. Benchmarks divide a workload's count by the
/// measured GEMM rate for the least time the machine could take.
///
/// [`gemm`]: super::gemm
pub fn flops_so_far() -> u64 {
    let all = counts();
    all.retired
        + all
            .live
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum::<u64>()
}

/// Registers this thread's count now (an allocation), so that a thread's
/// first product, which may come long after a training step warmed up on
/// other threads, allocates nothing.
pub(crate) fn register_this_thread() {
    let _ = MINE.try_with(|_| ());
}

/// Adds an `m × k` by `k × n` product to [`flops_so_far`].
pub(crate) fn count_flops(m: usize, k: usize, n: usize) {
    let flops = 2 * m as u64 * n as u64 * k as u64;
    let counted = MINE.try_with(|mine| {
        // Only this thread writes its count: no read-modify-write needed.
        let count = &mine.0 .0;
        count.store(count.load(Ordering::Relaxed) + flops, Ordering::Relaxed);
    });
    if counted.is_err() {
        // A product run while this thread's locals are being torn down.
        counts().retired += flops;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_every_thread_add_up_and_outlive_their_threads() {
        // Other tests run products meanwhile, so the total only grows by
        // at least what these threads add.
        let before = flops_so_far();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| count_flops(10, 20, 30));
            }
        });
        count_flops(1, 2, 3);
        assert!(flops_so_far() - before >= 3 * 12_000 + 12);
        // A thread that exits leaves no count registered (its count is
        // the only other owner of the `Arc`).
        let gone = std::thread::spawn(|| {
            count_flops(1, 1, 1);
            MINE.with(|mine| Arc::downgrade(&mine.0))
        })
        .join()
        .unwrap();
        assert!(
            gone.upgrade().is_none(),
            "an exited thread's count stays registered"
        );
    }
}
