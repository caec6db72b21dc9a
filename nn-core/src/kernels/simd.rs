//! Runs a loop compiled for the widest vectors the CPU has.
//!
//! The crate is built for the baseline target (SSE2 on x86-64) so one binary
//! runs everywhere; element-wise loops passed to [`widest`] are compiled a
//! second time with AVX-512 enabled and that copy runs where it is supported.

/// Calls `f`, inlined into an AVX-512 function when the CPU supports it.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected just above.
            return unsafe { avx512(f) };
        }
    }
    f()
}
