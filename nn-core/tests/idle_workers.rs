//! Idle worker threads sleep: shortly after the last parallel region (well
//! past their polling window) every `nn-worker` thread is blocked, not running.
//! Alone in its binary so no other test keeps the workers busy, and so it
//! can choose the thread count.

#![cfg(target_os = "linux")]

use std::time::Duration;

#[test]
fn idle_workers_block_instead_of_spinning() {
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
}
