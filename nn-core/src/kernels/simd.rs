//! Runs a loop compiled for the widest vectors the CPU has.
//!
//! The crate is built for the baseline target (SSE2 on x86-64) so one binary
//! runs everywhere; element-wise loops passed to [`widest`] are compiled again
//! with AVX-512, and with AVX2 + FMA, and the widest copy the CPU supports
//! runs. (Rust never fuses a multiply and an add on its own, so every copy
//! computes the same bits; explicit `mul_add`s become one instruction
//! instead of a library call.)

/// Calls `f`, inlined into an AVX-512 (or AVX2 + FMA) function when the CPU
/// supports it.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if super::cpu::avx512() {
            // SAFETY: the kernels use AVX-512 only where the CPU has it.
            return unsafe { avx512(f) };
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if super::cpu::avx2() {
            // SAFETY: the kernels use AVX2 and FMA only where the CPU has them.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Evaluates `$body` (of type `()`) with each `$arg` bound to its `$val`,
/// inside a function compiled for AVX-512 or AVX2 + FMA where the CPU has
/// them (else as built). For loops too large to inline into [`widest`]'s
/// closure: `$body` calls an `#[inline(always)]` function, which is inlined
/// into each copy. Exported (hidden) for `nn-optim`'s update loops.
#[doc(hidden)]
#[macro_export]
macro_rules! run_widest {
    (<$($g:ident: $bound:path),*> ($($arg:ident: $ty:ty = $val:expr),* $(,)?) => $body:expr) => {{
        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        fn plain<$($g: $bound),*>($($arg: $ty),*) {
            $body
        }
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512<$($g: $bound),*>($($arg: $ty),*) {
                $body
            }
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2<$($g: $bound),*>($($arg: $ty),*) {
                $body
            }
            let chosen = $crate::kernels::cpu::capability();
            if chosen >= $crate::kernels::cpu::Capability::Avx512 {
                // SAFETY: the kernels use AVX-512 only where the CPU has it.
                unsafe { avx512($($val),*) }
            } else if chosen >= $crate::kernels::cpu::Capability::Avx2 {
                // SAFETY: the kernels use AVX2 and FMA only where the CPU has them.
                unsafe { avx2($($val),*) }
            } else {
                plain($($val),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        plain($($val),*)
    }};
}
