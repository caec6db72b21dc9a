//! Freed memory kept for reuse, as a caching allocator (PyTorch's on the
//! GPU) keeps its blocks.
//!
//! A tape allocates every op's output and gradient afresh and frees them all
//! when it is dropped, once per training step. glibc's `malloc` hands the
//! freed megabytes back to the system (it trims the heap, or unmaps blocks
//! above its threshold), so the next step touches fresh pages, each one a
//! page fault and a page of zeros: a residual CNN of 16-channel 28 × 28
//! planes on the tape took 26 560 minor faults and 97 ms per batch of 128,
//! against 58 faults and 66 ms with the memory kept (medians of five
//! alternating runs, Intel Xeon, two threads; the probe is in
//! `benches/HISTORY.md`), and a static model's evaluation allocates every
//! layer's output afresh for every batch (a small vision transformer's
//! evaluation spent 40 % of its time in page faults). So the first tape, or
//! the first `evaluate` or `predict` of the facade, raises glibc's thresholds:
//! blocks up to [`MMAP_THRESHOLD`] come from the heap, and the heap keeps up
//! to [`TRIM_THRESHOLD`] of free memory at its top, for the next step's
//! tensors. The process then holds on to what its busiest step needed.
//! `NN_KEEP_FREED_MEMORY=0` leaves glibc's defaults; elsewhere than 64-bit
//! glibc nothing changes.

/// Allocations up to this size come from the heap, whose freed blocks are
/// reused (glibc's largest setting on 64-bit systems; larger blocks are
/// mapped and unmapped each time).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory at the heap's top beyond this is returned to the system.
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Raises the allocator's thresholds once per process (see the module
/// docs), unless `NN_KEEP_FREED_MEMORY=0`. Called by [`crate::Tape::new`]
/// and the facade's evaluation loops.
///
/// # Panics
/// If `NN_KEEP_FREED_MEMORY` is set to anything but 0 or 1 (each call, so a
/// later tape does not meet a poisoned `Once`).
pub fn keep_freed_memory() {
    static KEEP: std::sync::OnceLock<Result<bool, String>> = std::sync::OnceLock::new();
    static DONE: std::sync::Once = std::sync::Once::new();
    let keep = KEEP.get_or_init(|| setting(std::env::var("NN_KEEP_FREED_MEMORY").ok().as_deref()));
    match keep {
        Ok(true) => DONE.call_once(raise_thresholds),
        Ok(false) => {}
        Err(message) => panic!("{message}"),
    }
}

/// Whether to keep freed memory, from `NN_KEEP_FREED_MEMORY`'s value.
fn setting(value: Option<&str>) -> Result<bool, String> {
    match value.map(str::trim) {
        None | Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(other) => Err(format!(
            "NN_KEEP_FREED_MEMORY={other:?} is not 0 or 1; unset it, or set it to 0 to give freed memory back to the system"
        )),
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
fn raise_thresholds() {
    // SAFETY: mallopt only sets two of the allocator's parameters, under
    // the main arena's lock; threads freeing into other arenas read them
    // without it, as glibc's own `free` updates them (its dynamic
    // threshold), so such a thread may use the old values once. A value
    // glibc refuses leaves its default, which is only slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
fn raise_thresholds() {}

#[cfg(test)]
mod tests {
    use super::setting;

    #[test]
    fn the_setting_is_0_or_1_and_on_by_default() {
        assert_eq!(setting(None), Ok(true));
        assert_eq!(setting(Some("1")), Ok(true));
        assert_eq!(setting(Some(" 0 ")), Ok(false));
        for bad in ["2", "yes", "", "-1"] {
            let err = setting(Some(bad)).expect_err(bad);
            assert!(err.contains("is not 0 or 1"), "{err}");
        }
    }
}
