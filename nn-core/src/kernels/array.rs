//! Fixed-size arrays built by a plain loop, for the kernels' registers.
//!
//! `std::array::from_fn` runs through generics of the standard library
//! that a release build (16 codegen units) may leave out of line: the
//! array then lives in memory. The AVX2 convolution's forward kept its
//! accumulators on the stack and ran at 44 GFLOP/s against 80 built with
//! one codegen unit (`--profile dist`), one core of a Zen 3 EPYC.

use std::mem::MaybeUninit;

/// `[f(0), …, f(N − 1)]`, evaluated in order, always inlined.
#[inline(always)]
pub(crate) fn array<T: Copy, const N: usize>(mut f: impl FnMut(usize) -> T) -> [T; N] {
    let mut out = [MaybeUninit::<T>::uninit(); N];
    #[allow(clippy::needless_range_loop)] // an iterator is what this avoids
    for i in 0..N {
        out[i].write(f(i));
    }
    // SAFETY: every element was written; `[MaybeUninit<T>; N]` has the
    // layout of `[T; N]`.
    unsafe { out.as_ptr().cast::<[T; N]>().read() }
}

#[cfg(test)]
mod tests {
    use super::array;

    /// Each element is `f` of its index, called once each, in order.
    #[test]
    fn elements_in_order() {
        let mut calls = Vec::new();
        let a: [usize; 5] = array(|i| {
            calls.push(i);
            i * i
        });
        assert_eq!(a, [0, 1, 4, 9, 16]);
        assert_eq!(calls, [0, 1, 2, 3, 4]);
        let empty: [u8; 0] = array(|_| unreachable!());
        assert!(empty.is_empty());
    }
}
