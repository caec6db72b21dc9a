//! Ranks that are threads of one process: the [`Collective`] for tests and
//! for trying data-parallel code without MPI.

use std::sync::{Condvar, Mutex};

use super::Collective;

/// One rank of a group of threads made by [`ThreadGroup::run`]. Sums add the
/// ranks' buffers in rank order, in the buffer's own precision, so every
/// rank gets the same bits on every run.
pub struct ThreadGroup<'s> {
    rank: usize,
    shared: &'s Shared,
}

struct Shared {
    size: usize,
    /// Each rank's contribution to the operation under way.
    slots: Vec<Mutex<Vec<f64>>>,
    gate: Mutex<Gate>,
    turn: Condvar,
}

/// A reusable barrier that gives up when a rank has panicked (the others
/// would wait for it forever).
#[derive(Default)]
struct Gate {
    waiting: usize,
    generation: u64,
    broken: bool,
}

impl Shared {
    fn wait(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let generation = gate.generation;
        gate.waiting += 1;
        if gate.waiting == self.size {
            gate.waiting = 0;
            gate.generation += 1;
            self.turn.notify_all();
        } else {
            while gate.generation == generation && !gate.broken {
                gate = self.turn.wait(gate).unwrap_or_else(|e| e.into_inner());
            }
        }
        assert!(!gate.broken, "ThreadGroup: another rank panicked");
    }

    fn break_gate(&self) {
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.broken = true;
        self.turn.notify_all();
    }
}

impl ThreadGroup<'_> {
    /// Runs `f` on `size` threads, one per rank, and returns each rank's
    /// result in rank order. A panic on any rank is raised here.
    pub fn run<R: Send>(size: usize, f: impl Fn(&ThreadGroup<'_>) -> R + Sync) -> Vec<R> {
        assert!(size > 0, "ThreadGroup::run: size must be positive");
        let shared = Shared {
            size,
            slots: (0..size).map(|_| Mutex::new(Vec::new())).collect(),
            gate: Mutex::new(Gate::default()),
            turn: Condvar::new(),
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..size)
                .map(|rank| {
                    let (shared, f) = (&shared, &f);
                    s.spawn(move || {
                        /// Wakes the other ranks if this one unwinds.
                        struct OnPanic<'a>(&'a Shared);
                        impl Drop for OnPanic<'_> {
                            fn drop(&mut self) {
                                if std::thread::panicking() {
                                    self.0.break_gate();
                                }
                            }
                        }
                        let _guard = OnPanic(shared);
                        f(&ThreadGroup { rank, shared })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    fn slot(&self, rank: usize) -> std::sync::MutexGuard<'_, Vec<f64>> {
        self.shared.slots[rank]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sums in rank order, in `f`'s precision (`f32` values are exact in `f64`).
    fn sum_with(&self, buf: &mut [f64], add: impl Fn(f64, f64) -> f64) {
        *self.slot(self.rank) = buf.to_vec();
        self.shared.wait();
        buf.copy_from_slice(&self.slot(0));
        for r in 1..self.shared.size {
            let other = self.slot(r);
            assert_eq!(
                other.len(),
                buf.len(),
                "ThreadGroup: ranks summed buffers of different lengths"
            );
            for (a, &b) in buf.iter_mut().zip(other.iter()) {
                *a = add(*a, b);
            }
        }
        self.shared.wait();
    }

    fn broadcast_raw(&self, buf: &mut [f64]) {
        if self.rank == 0 {
            *self.slot(0) = buf.to_vec();
        }
        self.shared.wait();
        if self.rank != 0 {
            buf.copy_from_slice(&self.slot(0));
        }
        self.shared.wait();
    }
}

impl Collective for ThreadGroup<'_> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn sum_f32(&self, buf: &mut [f32]) {
        let mut wide: Vec<f64> = buf.iter().map(|&v| f64::from(v)).collect();
        self.sum_with(&mut wide, |a, b| f64::from(a as f32 + b as f32));
        for (dst, v) in buf.iter_mut().zip(wide) {
            *dst = v as f32;
        }
    }

    fn sum_f64(&self, buf: &mut [f64]) {
        self.sum_with(buf, |a, b| a + b);
    }

    fn broadcast_f32(&self, buf: &mut [f32]) {
        let mut wide: Vec<f64> = buf.iter().map(|&v| f64::from(v)).collect();
        self.broadcast_raw(&mut wide);
        for (dst, v) in buf.iter_mut().zip(wide) {
            *dst = v as f32;
        }
    }

    fn broadcast_f64(&self, buf: &mut [f64]) {
        self.broadcast_raw(buf);
    }
}
