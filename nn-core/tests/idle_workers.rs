//! Idle worker threads sleep: shortly after the last parallel region (well
//! past their polling window) every `nn-worker` thread is blocked, not
//! running; and the next region wakes them. Alone in its binary so no other
//! test keeps the workers busy, and so it can choose the thread count.

#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn idle_workers_block_instead_of_spinning_and_wake_for_the_next_job() {
    // Force a worker thread even on a one-core machine, so the test always has
    // one to observe (the count is read once, on first use, and this binary
    // holds only this test).
    std::env::set_var("NN_NUM_THREADS", "2");
    assert_eq!(nn_core::threads(), 2, "NN_NUM_THREADS is read on first use");
    nn_core::parallel::for_each_range(2, 1 << 20, &|_| {});
    // The default polling window is 50 µs; NN_SPIN_US may raise it.
    let window_us: u64 = std::env::var("NN_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    std::thread::sleep(Duration::from_micros(window_us) + Duration::from_millis(100));
    let mut workers = 0;
    for task in std::fs::read_dir("/proc/self/task").expect("procfs") {
        let dir = task.expect("task entry").path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !name.starts_with("nn-worker") {
            continue;
        }
        workers += 1;
        let stat = std::fs::read_to_string(dir.join("stat")).expect("stat");
        // The state is the first field after the parenthesized command name.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        assert_eq!(state, Some("S"), "{} is not sleeping: {stat}", name.trim());
    }
    assert_eq!(workers, nn_core::threads() - 1);

    // A blocked worker is woken by the next job (a job handed over without
    // the wake-up would wait until the caller took it back and ran it
    // alone): part 0 waits for part 1 to start on another thread.
    let (second_started, waited_for_it) = (AtomicBool::new(false), AtomicBool::new(false));
    nn_core::parallel::for_each_range(2, 1 << 20, &|r| {
        if r.start == 0 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !second_started.load(Ordering::Acquire) && Instant::now() < deadline {
                std::thread::yield_now();
            }
            waited_for_it.store(second_started.load(Ordering::Acquire), Ordering::Release);
        } else {
            second_started.store(true, Ordering::Release);
        }
    });
    assert!(
        waited_for_it.load(Ordering::Acquire),
        "the sleeping worker never started the second part"
    );
}
