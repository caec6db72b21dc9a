//! A fixed set of worker threads that sleep until given work, and the loops
//! that use them ([`for_each_range`] is public for element-wise work such as
//! optimizer updates).
//!
//! Large kernels split their work into parts and run them here. The calling
//! thread and the workers (started once, on first use) take parts from one
//! counter until none is left, so a thread that does not get a core — a
//! worker asleep, or sharing a core with the caller on a busy machine — takes
//! fewer parts instead of holding the others up; a part the caller finds
//! still unclaimed at its worker is simply taken back. Which thread runs a
//! part never changes what the part computes, so results do not depend on
//! the scheduling. A worker found to have run on its caller's own core (the
//! system gave the other core to another program), or to hold its caller up
//! with one part for longer than the caller's whole share took, is left out
//! of the next few milliseconds of work: the two would only take turns, each
//! hand-off costing a switch or a time slice. Each such finding doubles the
//! time left out (2 ms up to 64 ms) and each job that keeps pace halves it,
//! so a core taken for good is probed rarely. A worker polls for at most
//! `$NN_SPIN_US` (50 µs) after each piece of work, then waits on a condition
//! variable, so an idle framework leaves the machine's other cores alone;
//! handing out work allocates nothing, so a warmed-up training step stays
//! allocation-free.

use std::any::Any;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

type Payload = Box<dyn Any + Send>;

/// One call's parts, taken by whichever thread asks next.
struct Claims<'a> {
    work: &'a (dyn Fn(usize) + Sync),
    parts: usize,
    next: AtomicUsize,
}

impl Claims<'_> {
    /// Runs parts until none is left; the first panic's payload, after
    /// running every part this thread claimed (a panic does not drop parts).
    fn run(&self) -> Option<Payload> {
        let mut first_panic = None;
        loop {
            let part = self.next.fetch_add(1, Ordering::Relaxed);
            if part >= self.parts {
                return first_panic;
            }
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (self.work)(part))) {
                first_panic = first_panic.or(Some(payload));
            }
        }
    }
}

/// Some caller's [`Claims`], with the caller's lifetime erased: the caller
/// takes the job back or waits for it before returning (see [`for_each_part`]).
struct Job(&'static Claims<'static>);

#[derive(Default)]
struct Slot {
    /// Set by the caller that owns this worker until it has collected the result.
    claimed: bool,
    job: Option<Job>,
    finished: bool,
    panic: Option<Payload>,
    /// The worker is blocked on `job_ready`: only then does a new job wake
    /// it (a wake-up is a system call, and the worker usually polls).
    worker_blocked: bool,
    /// The caller is blocked on `job_done`: only then does the worker wake
    /// it with the result (the caller usually polls).
    caller_blocked: bool,
}

struct Worker {
    slot: Mutex<Slot>,
    job_ready: Condvar,
    job_done: Condvar,
    /// Jobs handed over so far, and jobs finished: polled lock-free during
    /// the short spins below.
    posted: AtomicUsize,
    done: AtomicUsize,
    /// The CPU this worker finished its last job on (`usize::MAX`: unknown).
    cpu: AtomicUsize,
    /// Until when (nanoseconds of [`clock`]) callers leave this worker out.
    benched_until: AtomicU64,
    /// How long (nanoseconds) the next bench lasts: see [`Worker::judge`].
    bench_len: AtomicU64,
}

impl Default for Worker {
    fn default() -> Self {
        Worker {
            slot: Mutex::default(),
            job_ready: Condvar::new(),
            job_done: Condvar::new(),
            posted: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            cpu: AtomicUsize::new(usize::MAX),
            benched_until: AtomicU64::new(0),
            bench_len: AtomicU64::new(BENCHED.as_nanos() as u64),
        }
    }
}

/// How long a worker found on its caller's core is first left out before it
/// is tried again: long enough that the probe's cost (a switch between the
/// two threads) is small, short enough to take the core back soon once free.
const BENCHED: Duration = Duration::from_millis(2);

/// The longest a worker is left out: each probe that finds it still without
/// a core of its own doubles the bench up to this, so a core taken for good
/// costs a probe every 64 ms, and a core freed again is back within as long.
const LONGEST_BENCH: Duration = Duration::from_millis(64);

/// The least a caller waits for a worker's last part before benching it:
/// well past a wake-up (~50 µs), well short of a time slice (~3 ms).
const PATIENCE: Duration = Duration::from_micros(500);

/// Nanoseconds since this process first asked.
fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The CPU the calling thread runs on, where the system says.
fn current_cpu() -> usize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_getcpu` takes no arguments and only reads.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu >= 0 {
            return cpu as usize;
        }
    }
    usize::MAX
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
        // Sharing a core with the thread it waits for (a busy machine puts
        // a caller and its worker on one core), polling would take that
        // thread's time: let it run. Alone on its core this returns at once.
        std::thread::yield_now();
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
        // Any part of any product may come here: size the product scratch
        // for all of them now, not in the middle of a warmed-up step.
        crate::kernels::gemm::reserve_scratch();
        let mut seen = 0;
        loop {
            // A training step hands out work every few hundred microseconds:
            // poll briefly before sleeping, then block (never spin while idle).
            spin_until(|| self.posted.load(Ordering::Acquire) != seen);
            let job = {
                let mut slot = self.lock();
                loop {
                    if let Some(job) = slot.job.take() {
                        break Some(job);
                    }
                    let posted = self.posted.load(Ordering::Acquire);
                    if posted != seen {
                        // Taken back by its caller before this thread got to
                        // it: poll for the next one.
                        seen = posted;
                        break None;
                    }
                    slot.worker_blocked = true;
                    slot = self.job_ready.wait(slot).unwrap_or_else(|e| e.into_inner());
                    slot.worker_blocked = false;
                }
            };
            let Some(Job(claims)) = job else { continue };
            seen = self.posted.load(Ordering::Acquire);
            let panic = claims.run();
            self.cpu.store(current_cpu(), Ordering::Relaxed);
            let mut slot = self.lock();
            slot.finished = true;
            slot.panic = panic;
            self.done.store(seen, Ordering::Release);
            if slot.caller_blocked {
                self.job_done.notify_one();
            }
        }
    }

    /// Offers `claims` to this worker, or returns `false` when another caller holds it.
    fn try_submit(&self, claims: &'static Claims<'static>, now: u64) -> bool {
        if now < self.benched_until.load(Ordering::Relaxed) {
            return false;
        }
        let mut slot = self.lock();
        if slot.claimed {
            return false;
        }
        slot.claimed = true;
        slot.finished = false;
        slot.job = Some(Job(claims));
        self.posted.fetch_add(1, Ordering::Release);
        if slot.worker_blocked {
            self.job_ready.notify_one();
        }
        true
    }

    /// Takes the job back if the worker has not started it, otherwise waits
    /// for it; returns its panic payload, if a part it ran panicked. A worker
    /// that ran on `caller_cpu`, the caller's, or finished after `patience`
    /// (a [`clock`] time) is benched (see [`Worker::judge`]).
    fn collect(&self, caller_cpu: usize, patience: u64) -> Option<Payload> {
        {
            let mut slot = self.lock();
            if slot.job.take().is_some() {
                slot.claimed = false;
                return None;
            }
        }
        // The worker is running the parts it claimed: usually moments away.
        let mine = self.posted.load(Ordering::Acquire);
        spin_until(|| self.done.load(Ordering::Acquire) == mine);
        let mut slot = self.lock();
        while !slot.finished {
            slot.caller_blocked = true;
            slot = self.job_done.wait(slot).unwrap_or_else(|e| e.into_inner());
            slot.caller_blocked = false;
        }
        slot.claimed = false;
        let shared_core =
            caller_cpu != usize::MAX && self.cpu.load(Ordering::Relaxed) == caller_cpu;
        self.judge(!shared_core && clock() <= patience);
        slot.panic.take()
    }

    /// After a job: a worker that had a core of its own (`kept_pace`) halves
    /// its next bench, down to [`BENCHED`]; one that did not is benched now
    /// and its next bench doubles, up to [`LONGEST_BENCH`]. Only the caller
    /// holding the worker judges it. Halving rather than resetting keeps one
    /// lucky probe on a busy machine from bringing back the probes' cost.
    fn judge(&self, kept_pace: bool) {
        let (shortest, longest) = (BENCHED.as_nanos() as u64, LONGEST_BENCH.as_nanos() as u64);
        let len = self.bench_len.load(Ordering::Relaxed);
        if kept_pace {
            self.bench_len
                .store((len / 2).max(shortest), Ordering::Relaxed);
        } else {
            let until = clock() + len;
            self.benched_until.store(until, Ordering::Relaxed);
            self.bench_len
                .store((len * 2).min(longest), Ordering::Relaxed);
        }
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

/// Runs `work(0)`, …, `work(parts - 1)` on this thread and up to `parts - 1`
/// workers (those no other thread is using), each part exactly once, and
/// returns when all have finished. A panic in any part is re-raised here
/// after every part has run.
pub(crate) fn for_each_part(parts: usize, work: &(dyn Fn(usize) + Sync)) {
    let claims = Claims {
        work,
        parts,
        next: AtomicUsize::new(0),
    };
    if parts <= 1 {
        if let Some(payload) = claims.run() {
            panic::resume_unwind(payload);
        }
        return;
    }
    // This thread may now run any part, of a product among them.
    crate::kernels::gemm::reserve_scratch();
    // SAFETY: every worker given `claims` below hands it back or finishes
    // with it before this function returns (`Collect::wait`, also run on
    // unwinding by its drop), so the erased borrow outlives its uses.
    let erased: &'static Claims<'static> = unsafe { std::mem::transmute(&claims) };
    let pool = workers();
    let helpers = (parts - 1).min(pool.len());
    let mut submitted = [false; MAX_THREADS];
    let now = clock();
    for (handed, worker) in submitted.iter_mut().zip(&pool[..helpers]) {
        *handed = worker.try_submit(erased, now);
    }

    struct Collect<'a> {
        pool: &'a [Worker],
        submitted: [bool; MAX_THREADS],
        start: u64,
    }
    impl Collect<'_> {
        fn wait(&mut self) -> Option<Payload> {
            if !self.submitted.contains(&true) {
                return None;
            }
            let cpu = current_cpu();
            // A worker still busy with one part when this thread has run out
            // of parts, for longer than this thread's whole share took (and
            // longer than a wake-up), was not given a whole core: a part the
            // system interrupted holds the caller up for a time slice.
            let now = clock();
            let own = now.saturating_sub(self.start);
            let patience = now + own.max(PATIENCE.as_nanos() as u64);
            let mut first_panic = None;
            for (worker, handed) in self.pool.iter().zip(&mut self.submitted) {
                if std::mem::take(handed) {
                    first_panic = first_panic.or(worker.collect(cpu, patience));
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

    let mut pending = Collect {
        pool,
        submitted,
        start: now,
    };
    let here = claims.run();
    if let Some(payload) = here.or(pending.wait()) {
        panic::resume_unwind(payload);
    }
}

/// The most threads [`crate::threads`] allows.
pub(crate) const MAX_THREADS: usize = 8;

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

/// Runs `first` and `second`, each exactly once, on this thread and a free
/// worker at the same time where there is one (else one after the other
/// here), and returns when both have finished.
pub(crate) fn join(first: impl FnOnce() + Send, second: impl FnOnce() + Send) {
    fn take<F>(f: &Mutex<Option<F>>) -> F {
        f.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("each part runs once")
    }
    let (first, second) = (Mutex::new(Some(first)), Mutex::new(Some(second)));
    for_each_part(2, &|p| match p {
        0 => take(&first)(),
        _ => take(&second)(),
    });
}

/// The fewest elements for which the allocating kernels (the tape's binary
/// ops, fills of fresh arrays) split their loops over the cores. An op on
/// the tape often runs alone after serial work long
/// enough for the worker to have gone to sleep, and waking it costs more
/// than splitting saves below this: on the two cores of the Intel Xeon of
/// `benches/HISTORY.md` (thirteenth session), a product of 262,144 values
/// split took 489 µs forward and backward against 429 (`cargo bench -p
/// nn-core --bench tape -- dropout`), while two residual blocks of a
/// 16-channel CNN on the tape (sums of 1.6 million values) took 24.2–26.1
/// ms a step against 27.5–29.0 with the tape's binary ops split from here.
pub(crate) const ALONE_SPLIT_ELEMENTS: usize = 1 << 20;

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
    fn join_runs_each_side_once_and_reraises_a_panic_after_both() {
        let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
        for _ in 0..100 {
            join(
                || {
                    a.fetch_add(1, Ordering::Relaxed);
                },
                || {
                    b.fetch_add(1, Ordering::Relaxed);
                },
            );
        }
        assert_eq!((a.into_inner(), b.into_inner()), (100, 100));
        let ran = AtomicUsize::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            join(
                || {
                    ran.fetch_add(1, Ordering::Relaxed);
                },
                || panic!("second side"),
            )
        }));
        assert!(caught.is_err());
        assert_eq!(ran.into_inner(), 1, "the first side ran despite the panic");
    }

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

    /// Each job without a core of its own doubles the worker's next bench
    /// up to the longest; each that kept pace halves it back down to the
    /// shortest (the bench lengths: [`BENCHED`], [`LONGEST_BENCH`]).
    #[test]
    fn benches_grow_while_the_core_stays_taken_and_shrink_once_free() {
        let worker = Worker::default();
        let len = || worker.bench_len.load(Ordering::Relaxed) / 1_000_000;
        let mut lens = vec![];
        for _ in 0..7 {
            let (before, bench) = (clock(), worker.bench_len.load(Ordering::Relaxed));
            worker.judge(false);
            // Left out from now for the length before the doubling.
            let until = worker.benched_until.load(Ordering::Relaxed);
            assert!(
                until >= before + bench,
                "benched until {until}, judged at {before}"
            );
            assert!(
                until <= clock() + bench,
                "benched until {until} for {bench} ns"
            );
            lens.push(len());
        }
        assert_eq!(lens, [4, 8, 16, 32, 64, 64, 64]);
        lens.clear();
        for _ in 0..7 {
            worker.judge(true);
            lens.push(len());
        }
        assert_eq!(lens, [32, 16, 8, 4, 2, 2, 2]);
    }

    /// A worker that stalls in its first part (as one without a core does)
    /// holds only that part: the caller takes every other one instead of
    /// waiting for the worker's fixed share.
    #[test]
    fn a_stalled_worker_holds_up_only_its_own_part() {
        let parts = 16;
        let caller = std::thread::current().id();
        let on_caller = AtomicUsize::new(0);
        let runs: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
        for_each_part(parts, &|part| {
            runs[part].fetch_add(1, Ordering::Relaxed);
            if std::thread::current().id() == caller {
                on_caller.fetch_add(1, Ordering::Relaxed);
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
        // Each worker ran at most one part before the caller had taken the rest.
        let workers = crate::threads() - 1;
        assert!(
            on_caller.load(Ordering::Relaxed) >= parts - workers,
            "the caller ran {} of {parts} parts beside {workers} stalled workers",
            on_caller.load(Ordering::Relaxed)
        );
    }

    /// The other way round: while the caller is held up in its first part,
    /// a free worker takes all the others. (Other tests may be holding the
    /// worker, so this is tried until the worker was free once.)
    #[test]
    fn free_workers_take_the_parts_of_a_stalled_caller() {
        if crate::threads() < 2 {
            eprintln!(
                "skipped: one thread (NN_NUM_THREADS=1 or one core), no worker to take parts"
            );
            return;
        }
        let parts = 16;
        let caller = std::thread::current().id();
        let balanced = (0..50).any(|_| {
            let on_caller = AtomicUsize::new(0);
            for_each_part(parts, &|_| {
                if std::thread::current().id() == caller {
                    on_caller.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            on_caller.load(Ordering::Relaxed) == 1
        });
        assert!(
            balanced,
            "in 50 tries the workers never took the stalled caller's other parts"
        );
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
