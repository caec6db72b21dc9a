//! Training steps on the tape reuse the memory the previous step freed: the
//! first tape keeps freed memory in the process (`nn_core::memory`), so a
//! step that allocates the same large tensors again touches almost no fresh
//! pages. Page faults are counted for the whole process, so the test runs
//! the steps in two copies of itself, one with `NN_KEEP_FREED_MEMORY=1` and
//! one with `=0`, which shows that the count it checks is the one the
//! setting changes.

#![cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]

use nn_core::kernels::conv::{Padding2d, Window2d};
use nn_core::ndarray::{ArrayD, IxDyn};
use nn_core::{Param, Tape};

/// Set in the copies of this test that run the steps.
const CHILD: &str = "NN_FREED_MEMORY_TEST_CHILD";

/// Pages of one activation of [`step`]: 64 × 16 planes of 28 × 28 `f32`.
const PAGES_PER_ACTIVATION: u64 = 64 * 16 * 28 * 28 * 4 / 4096;

/// Minor page faults of this process so far (`/proc/self/stat`).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // Fields after the command name: state, ppid, pgrp, session, tty,
    // tpgid, flags, minflt.
    let after_name = stat.rsplit_once(')').expect("stat format").1;
    after_name
        .split_whitespace()
        .nth(7)
        .expect("minflt")
        .parse()
        .expect("a count")
}

/// One step of a residual CNN on a fresh tape (a 3 × 3 convolution to 16
/// channels, then two 16-channel convolutions added to their input), its
/// activations and gradients all freed when the tape is dropped.
fn step() {
    let param = |shape: [usize; 4]| {
        let n: usize = shape.iter().product();
        let values = (0..n)
            .map(|i| ((i * 37) % 17) as f32 / 170.0 - 0.05)
            .collect();
        Param::new(ArrayD::from_shape_vec(IxDyn(&shape), values).expect("sized"))
    };
    let (w0, w1, w2) = (
        param([16, 1, 3, 3]),
        param([16, 16, 3, 3]),
        param([16, 16, 3, 3]),
    );
    let mut same = Window2d::new((3, 3));
    same.padding = Padding2d {
        top: 1,
        bottom: 1,
        left: 1,
        right: 1,
    };
    let tape = Tape::<f32>::new();
    let x = tape.constant(ArrayD::from_elem(IxDyn(&[64, 1, 28, 28]), 0.5f32));
    let h = x.conv2d(&tape.param(&w0), None, same).relu();
    let r = h.conv2d(&tape.param(&w1), None, same).relu();
    let h = &h + &r.conv2d(&tape.param(&w2), None, same);
    h.relu().mean().backward();
}

/// Minor page faults per step once warm.
fn faults_per_step() -> u64 {
    step();
    step();
    let before = minor_faults();
    let steps = 5;
    for _ in 0..steps {
        step();
    }
    (minor_faults() - before) / steps
}

/// Faults per step of a copy of this test run with `NN_KEEP_FREED_MEMORY=keep`.
fn faults_in_a_copy(keep: &str) -> u64 {
    let exe = std::env::current_exe().expect("this test's executable");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "tape_steps_reuse_the_memory_freed_by_the_last_step",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("NN_KEEP_FREED_MEMORY", keep)
        .output()
        .expect("the test runs itself again");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("faults per step: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in the copy's output: {stdout}\n{stderr}"))
}

#[test]
fn tape_steps_reuse_the_memory_freed_by_the_last_step() {
    if std::env::var_os(CHILD).is_some() {
        println!("faults per step: {}", faults_per_step());
        return;
    }
    if let Some(preload) = std::env::var_os("LD_PRELOAD") {
        // Another allocator than glibc's: its own policy decides.
        eprintln!("skipped: LD_PRELOAD={preload:?} replaces glibc's malloc");
        return;
    }
    // A step allocates a dozen activations and gradients of this size;
    // reused, they fault in less than one activation's pages.
    let kept = faults_in_a_copy("1");
    assert!(
        kept < PAGES_PER_ACTIVATION,
        "{kept} minor page faults per step: freed memory is not reused"
    );
    let returned = faults_in_a_copy("0");
    let huge_pages = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| s.contains("[always]"));
    if huge_pages {
        // One fault then maps 2 MiB, so the pages are not counted one by one.
        eprintln!("transparent huge pages are always on: {returned} faults per step with NN_KEEP_FREED_MEMORY=0, not checked");
        return;
    }
    // With glibc's defaults every step faults its tensors in afresh.
    assert!(
        returned >= 4 * PAGES_PER_ACTIVATION,
        "with NN_KEEP_FREED_MEMORY=0: {returned} faults per step, expected at least {}",
        4 * PAGES_PER_ACTIVATION
    );
}
