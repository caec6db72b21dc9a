//! Asking the CPU to bring memory into its caches ahead of use.

/// Bytes in a cache line of the CPUs this runs on.
const LINE: usize = 64;

/// Starts fetching every cache line of `data` into the caches without
/// waiting for it (a hint: nothing happens where the CPU has no such
/// instruction). For rows read next from scattered places: the next
/// sequence's row of a recurrent step, a batch's next sample.
pub(crate) fn prefetch_lines<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let bytes = std::mem::size_of_val(data);
        let start = data.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(LINE) {
            // SAFETY: a prefetch never faults and reads nothing into the
            // program; the address stays inside `data`. SSE is in every
            // x86_64 CPU.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}
