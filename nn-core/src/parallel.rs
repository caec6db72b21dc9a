//! A fixed set of worker threads that sleep until given work, and the loops
//! that use them ([`for_each_range`] is public for element-wise work such as
//! optimizer updates).
//!
//! Large kernels split their work into parts and run them here: part 0 on the
//! calling thread, the others on workers started once, on first use. A worker
//! polls for at most `$NN_SPIN_US` (50 µs) after each piece of work, then
//! waits on a condition variable, so an idle framework leaves the machine's
//! other cores alone; handing out work allocates nothing, so a warmed-up
//! training step stays allocation-free.

use std::any::Any;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// A part of some caller's work, with the caller's lifetime erased: the caller
/// waits for every part it handed out before returning (see [`for_each_part`]).
struct Job {
    work: &'static (dyn Fn(usize) + Sync),
    part: usize,
}

#[derive(Default)]
struct Slot {
    /// Set by the caller that owns this worker until it has collected the result.
    claimed: bool,
    job: Option<Job>,
    finished: bool,
    panic: Option<Box<dyn Any + Send>>,
}

#[derive(Default)]
struct Worker {
    slot: Mutex<Slot>,
    job_ready: Condvar,
    job_done: Condvar,
    /// Jobs handed over so far, and jobs finished: polled lock-free during
    /// the short spins below.
    posted: AtomicUsize,
    done: AtomicUsize,
}

/// How long a thread polls before blocking: a worker for its next job after
/// finishing one, a caller for its parts' results. Waking a blocked thread
/// costs about 50 µs on the virtual machines this was measured on, more than
/// many parallel regions take. `$NN_SPIN_US` overrides it; 0 never polls.
fn spin_window() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = crate::env_number("NN_SPIN_US", 0).unwrap_or(DEFAULT_SPIN_US);
        Duration::from_micros(us)
    })
}

const DEFAULT_SPIN_US: u64 = 50;

/// Polls `ready` for at most [`spin_window`]; whether it became true.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let window = spin_window();
    if window.is_zero() {
        return ready();
    }
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= window {
            return ready();
        }
    }
}

impl Worker {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic inside a job is caught before the lock is taken again, so
        // poisoning cannot carry a broken state; recover the guard regardless.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut seen = 0;
        loop {
            // A training step hands out work every few hundred microseconds:
            // poll briefly before sleeping, then block (never spin while idle).
            spin_until(|| self.posted.load(Ordering::Acquire) != seen);
            let job = {
                let mut slot = self.lock();
                loop {
                    if let Some(job) = slot.job.take() {
                        break job;
                    }
                    slot = self.job_ready.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
            };
            seen = self.posted.load(Ordering::Acquire);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| (job.work)(job.part)));
            let mut slot = self.lock();
            slot.finished = true;
            slot.panic = outcome.err();
            self.done.store(seen, Ordering::Release);
            self.job_done.notify_one();
        }
    }

    /// Hands `part` to this worker, or returns `false` when another caller holds it.
    fn try_submit(&self, work: &'static (dyn Fn(usize) + Sync), part: usize) -> bool {
        let mut slot = self.lock();
        if slot.claimed {
            return false;
        }
        slot.claimed = true;
        slot.finished = false;
        slot.job = Some(Job { work, part });
        self.posted.fetch_add(1, Ordering::Release);
        self.job_ready.notify_one();
        true
    }

    /// Waits for the submitted part; returns its panic payload, if it panicked.
    fn collect(&self) -> Option<Box<dyn Any + Send>> {
        // The part is running: its result is usually moments away.
        let mine = self.posted.load(Ordering::Acquire);
        spin_until(|| self.done.load(Ordering::Acquire) == mine);
        let mut slot = self.lock();
        while !slot.finished {
            slot = self.job_done.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
        slot.claimed = false;
        slot.panic.take()
    }
}

fn workers() -> &'static [Worker] {
    static POOL: OnceLock<&'static [Worker]> = OnceLock::new();
    POOL.get_or_init(|| {
        // Lives as long as the process, like the threads that serve it.
        let pool: &'static [Worker] =
            Box::leak((1..crate::threads()).map(|_| Worker::default()).collect());
        for (i, worker) in pool.iter().enumerate() {
            std::thread::Builder::new()
                .name(format!("nn-worker-{i}"))
                .spawn(move || worker.run())
                .expect("nn: cannot start a worker thread");
        }
        pool
    })
}

/// Runs `work(0)`, …, `work(parts - 1)`, part 0 on this thread and the others on
/// the workers, and returns when all have finished. A part whose worker is busy
/// (another thread is using it), or beyond the eight a call hands out, runs
/// here instead. A panic in any part is
/// re-raised here after every part has finished.
pub(crate) fn for_each_part(parts: usize, work: &(dyn Fn(usize) + Sync)) {
    // SAFETY: every part handed out below is collected before this function
    // returns or unwinds (`Collect`'s drop), so `work` outlives its uses.
    let erased: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(work) };
    let pool = workers();
    let mut submitted = [false; 8];
    let mut inline = [false; 8];
    // Parts past the slots (more than 8) run here too: none is dropped.
    let slots = parts.min(submitted.len());
    for part in 1..slots {
        let handed = pool
            .get(part - 1)
            .is_some_and(|worker| worker.try_submit(erased, part));
        submitted[part] = handed;
        inline[part] = !handed;
    }

    struct Collect<'a> {
        pool: &'a [Worker],
        submitted: [bool; 8],
    }
    impl Collect<'_> {
        fn wait(&mut self) -> Option<Box<dyn Any + Send>> {
            let mut first_panic = None;
            for (part, handed) in self.submitted.iter_mut().enumerate() {
                if std::mem::take(handed) {
                    let p = self.pool[part - 1].collect();
                    first_panic = first_panic.or(p);
                }
            }
            first_panic
        }
    }
    impl Drop for Collect<'_> {
        fn drop(&mut self) {
            self.wait();
        }
    }

    let mut pending = Collect { pool, submitted };
    work(0);
    for (part, &here) in inline.iter().enumerate().take(slots) {
        if here {
            work(part);
        }
    }
    for part in slots..parts {
        work(part);
    }
    if let Some(payload) = pending.wait() {
        panic::resume_unwind(payload);
    }
}

/// How many chunks a reduction split for speed is cut into, whatever the
/// number of threads: the chunks' partial sums are added in chunk order, so
/// the result is the same bits on one thread or eight.
pub(crate) const REDUCTION_CHUNKS: usize = 8;

/// Runs `work(chunk)` for every chunk of `0..chunks`, the chunks spread over
/// up to `parts` parts in contiguous runs: how a reduction stays independent
/// of the thread count.
pub(crate) fn for_each_chunk(chunks: usize, parts: usize, work: &(dyn Fn(usize) + Sync)) {
    let parts = parts.min(chunks).max(1);
    for_each_part(parts, &|p| {
        for chunk in p * chunks / parts..(p + 1) * chunks / parts {
            work(chunk);
        }
    });
}

/// Below this many elements of work a loop is not worth splitting.
pub(crate) const PARALLEL_ELEMENTS: usize = 1 << 16;

/// How many parts to split `len` independent items into, given the total
/// `work` (elements touched): one when it would not repay the hand-off.
pub(crate) fn parts_for(len: usize, work: usize) -> usize {
    if work >= PARALLEL_ELEMENTS {
        crate::threads().min(len).max(1)
    } else {
        1
    }
}

/// Runs `f` over `0..len` split into up to [`crate::threads`] contiguous
/// ranges, in parallel when `work` (elements touched) repays the hand-off.
pub fn for_each_range(len: usize, work: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let parts = parts_for(len, work);
    if parts <= 1 {
        return f(0..len);
    }
    let step = len.div_ceil(parts);
    for_each_part(parts, &|p| {
        let start = (p * step).min(len);
        f(start..(start + step).min(len));
    });
}

/// A mutable slice shared by the parts of a [`for_each_range`] loop, each
/// writing its own disjoint elements.
pub struct Shared<T>(*mut T, usize);

// SAFETY: access goes through `Shared::slice`, whose callers promise disjointness.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Shares `data` for the duration of a [`for_each_range`] loop.
    pub fn new(data: &mut [T]) -> Self {
        Shared(data.as_mut_ptr(), data.len())
    }

    /// Elements `range` of the slice.
    ///
    /// # Safety
    /// No other part reads or writes `range` while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, range: Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(range.start), range.end - range.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_part_runs_exactly_once() {
        let hits: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..100 {
            for_each_part(4, &|part| {
                hits[part].fetch_add(1, Ordering::Relaxed);
            });
        }
        for (part, h) in hits.iter().enumerate() {
            assert_eq!(h.load(Ordering::Relaxed), 100, "part {part}");
        }
    }

    #[test]
    fn parts_beyond_the_workers_run_too() {
        let hits: Vec<AtomicUsize> = (0..11).map(|_| AtomicUsize::new(0)).collect();
        for_each_part(11, &|part| {
            hits[part].fetch_add(1, Ordering::Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn concurrent_callers_share_the_workers() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        for_each_part(2, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 2);
    }

    #[test]
    fn a_panicking_part_is_reraised_after_all_parts_finish() {
        let done = AtomicUsize::new(0);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            for_each_part(2, &|part| {
                if part == 1 {
                    panic!("part one fails");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 1);
        // The worker is usable afterwards.
        let after = AtomicUsize::new(0);
        for_each_part(2, &|_| {
            after.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(after.load(Ordering::Relaxed), 2);
    }
}
