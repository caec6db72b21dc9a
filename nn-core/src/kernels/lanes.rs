//! Sums kept in [`LANES`] partial sums, held in vector registers.
//!
//! A reduction summed in one chain of dependent additions (the naive order)
//! never vectorizes; summing the whole chunks' element `j` into partial sum
//! `j % LANES` does (the rest after them, in order), and its order depends on
//! the length alone. LLVM vectorizes the terms (a fresh `[T; LANES]` per
//! chunk) but keeps the partial sums two lanes to a register across the
//! loop, which made a layer norm's statistics most of its time; so on
//! AVX-512 the sums are added with explicit instructions. Both forms add the
//! same values in the same order: the same bits. (On machines without
//! AVX-512 the tests below check the portable loop alone.)

use std::any::TypeId;

use crate::Float;

/// Partial sums per reduction: one AVX-512 register of `f32`, two of `f64`.
pub(crate) const LANES: usize = 16;

/// The `K` sums of `term(item)` over `items`, in [`LANES`] partial sums each
/// (`term` gives each sum's [`LANES`] terms of one item, usually a chunk).
#[inline(always)]
pub(crate) fn lane_sums<T: Float, I: Iterator, const K: usize>(
    items: I,
    term: impl Fn(I::Item) -> [[T; LANES]; K],
) -> [[T; LANES]; K] {
    let mut acc = [[T::zero(); LANES]; K];
    add_lane_sums(&mut acc, items, term);
    acc
}

/// [`lane_sums`] added to partial sums `acc` (a sum over several runs).
#[inline(always)]
pub(crate) fn add_lane_sums<T: Float, I: Iterator, const K: usize>(
    acc: &mut [[T; LANES]; K],
    items: I,
    term: impl Fn(I::Item) -> [[T; LANES]; K],
) {
    if super::cpu::avx512() {
        for item in items {
            let v = term(item);
            for (a, v) in acc.iter_mut().zip(&v) {
                // SAFETY: the CPU has AVX-512F (checked above).
                unsafe { combine_avx512(Combine::Add, a, v) };
            }
        }
    } else {
        for item in items {
            let v = term(item);
            for (a, v) in acc.iter_mut().zip(&v) {
                combine(Combine::Add, a, v);
            }
        }
    }
}

/// `Σ f(x)` over `xs`: [`LANES`] partial sums over the whole chunks, folded
/// pairwise, then the rest in order.
#[inline(always)]
pub(crate) fn lane_sum<T: Float>(xs: &[T], f: impl Fn(T) -> T) -> T {
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    let [acc] = lane_sums(
        chunks,
        #[inline(always)]
        |c| [lanes(|l| f(c[l]))],
    );
    rest.iter().fold(fold_lanes(acc), |s, &x| s + f(x))
}

/// `Σ a·b` over two slices of one length, as [`lane_sum`].
#[inline(always)]
pub(crate) fn lane_dot<T: Float>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len(), "lane_dot: lengths");
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest = ca.remainder().iter().zip(cb.remainder());
    let [acc] = lane_sums(
        ca.zip(cb),
        #[inline(always)]
        |(a, b)| [lanes(|l| a[l] * b[l])],
    );
    rest.fold(fold_lanes(acc), |s, (&a, &b)| s + a * b)
}

/// The largest of `xs` ignoring NaN (`f32::max`'s fold from `-∞`; of two
/// zeros either may come back), in [`LANES`] running maxima.
#[inline(always)]
pub(crate) fn lane_max<T: Float>(xs: &[T]) -> T {
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    let mut acc = [T::neg_infinity(); LANES];
    if super::cpu::avx512() {
        for c in chunks {
            // SAFETY: the CPU has AVX-512F (checked above); `c` holds LANES.
            unsafe { combine_avx512(Combine::Max, &mut acc, c) };
        }
    } else {
        for c in chunks {
            combine(Combine::Max, &mut acc, c);
        }
    }
    acc.iter()
        .chain(rest)
        .fold(T::neg_infinity(), |m, &x| m.max(x))
}

/// How [`combine_avx512`] folds a chunk into the running lanes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// `acc + v`.
    Add,
    /// `max(acc, v)`, a NaN in `v` ignored (`vmaxps` returns its second
    /// operand, `acc`, when either is NaN, and `acc` never is).
    Max,
}

/// `acc = op(acc, v)` lane by lane, in AVX-512 registers for `f32` and
/// `f64` (one or two per [`LANES`]).
///
/// # Safety
/// The CPU supports AVX-512F; `v` holds [`LANES`] values.
#[inline]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn combine_avx512<T: Float>(op: Combine, acc: &mut [T; LANES], v: &[T]) {
    debug_assert_eq!(v.len(), LANES);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let (a, b) = (acc.as_mut_ptr(), v.as_ptr());
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            let (a, b) = (a.cast::<f32>(), b.cast::<f32>());
            let (x, y) = (_mm512_loadu_ps(b), _mm512_loadu_ps(a));
            let r = match op {
                Combine::Add => _mm512_add_ps(y, x),
                Combine::Max => _mm512_max_ps(x, y),
            };
            _mm512_storeu_ps(a, r);
            return;
        }
        if TypeId::of::<T>() == TypeId::of::<f64>() {
            let (a, b) = (a.cast::<f64>(), b.cast::<f64>());
            for half in [0, 8] {
                let (a, b) = (a.add(half), b.add(half));
                let (x, y) = (_mm512_loadu_pd(b), _mm512_loadu_pd(a));
                let r = match op {
                    Combine::Add => _mm512_add_pd(y, x),
                    Combine::Max => _mm512_max_pd(x, y),
                };
                _mm512_storeu_pd(a, r);
            }
            return;
        }
    }
    combine(op, acc, v)
}

/// `acc = op(acc, v)` lane by lane, in plain code: what
/// [`combine_avx512`] computes.
#[inline(always)]
fn combine<T: Float>(op: Combine, acc: &mut [T; LANES], v: &[T]) {
    for (a, &x) in acc.iter_mut().zip(v) {
        *a = match op {
            Combine::Add => *a + x,
            Combine::Max => a.max(x),
        };
    }
}

/// `[f(0), …, f(LANES − 1)]`: one chunk's terms, built by
/// [`array`](super::array::array) (`std::array::from_fn` was left a call,
/// its array in memory).
#[inline(always)]
pub(crate) fn lanes<T: Float>(f: impl Fn(usize) -> T) -> [T; LANES] {
    super::array::array(f)
}

/// The sum of the partial sums, pairwise (lane `l` plus lane `l + 8`, then
/// `l + 4`, …): how they fold in registers.
#[inline(always)]
pub(crate) fn fold_lanes<T: Float>(mut acc: [T; LANES]) -> T {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each lane's sum in the naive order, folded pairwise: what the
    /// registers must reproduce bit for bit.
    fn by_hand<T: Float>(xs: &[T]) -> T {
        let mut acc = [T::zero(); LANES];
        for (j, &x) in xs.iter().enumerate() {
            acc[j % LANES] += x;
        }
        fold_lanes(acc)
    }

    fn sums<T: Float>(xs: &[T]) -> [T; 2] {
        let [a, b] = lane_sums(xs.chunks_exact(LANES), |c| {
            let mut v = [[T::zero(); LANES]; 2];
            for l in 0..LANES {
                v[0][l] = c[l];
                v[1][l] = c[l] * c[l];
            }
            v
        });
        [fold_lanes(a), fold_lanes(b)]
    }

    #[test]
    fn the_lane_maximum_is_the_maximum_ignoring_nan() {
        // The largest value in lane 3 of the first chunk, a NaN in lane 3 of
        // a later one: a NaN that replaced its lane's running maximum would
        // lose it.
        let mut xs: Vec<f32> = (0..16 * 5 + 7).map(|i| ((i as f32) * 0.61).sin()).collect();
        xs[3] = 7.0;
        xs[16 * 2 + 3] = f32::NAN;
        xs[16 * 5 + 1] = f32::NAN;
        assert_eq!(lane_max(&xs), 7.0);
        let nans = [f32::NAN; 20];
        assert_eq!(lane_max(&nans), f32::NEG_INFINITY);
        assert_eq!(lane_max::<f64>(&[]), f64::NEG_INFINITY);
        let big: Vec<f64> = (0..40).map(|i| i as f64).collect();
        assert_eq!(lane_max(&big), 39.0);
    }

    #[test]
    fn the_registers_add_as_the_lanes_do() {
        // Values of many magnitudes, so any other order rounds differently.
        let xs: Vec<f64> = (0..16 * 37)
            .map(|i| ((i as f64) * 0.731).sin() * 10f64.powi(i % 7 - 3))
            .collect();
        let squares: Vec<f64> = xs.iter().map(|x| x * x).collect();
        assert_eq!(sums(&xs), [by_hand(&xs), by_hand(&squares)]);
        let xs: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let squares: Vec<f32> = xs.iter().map(|x| x * x).collect();
        assert_eq!(sums(&xs), [by_hand(&xs), by_hand(&squares)]);
    }
}
