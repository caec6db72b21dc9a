//! The error function of an `f32` without branches (and, in the kernels'
//! vector copies, without library calls), so the exact GELU's loops
//! vectorize: libm's scalar `erff`, not inlined, kept
//! them scalar and was a tenth of a small vision transformer's epoch.
//!
//! Computed in `f32` from two polynomials, both evaluated and one
//! selected: `erf(a) = a + a · R(a²)` for `a = |x| < 1` and
//! `erf(a) = 1 − Q(a − 2.5)` for `1 ≤ a < 4` (from `a = 4` on `erf` rounds
//! to 1 in `f32`). The coefficients are numpy `chebfit` fits on 40 000
//! Chebyshev points of each interval against `torch.erf`/`torch.erfc` in
//! `f64` (`R`'s weighted for relative error), converted to powers and
//! rounded to `f32`. Within [`ERF_ULPS`] of the correctly rounded value for
//! every `f32` (checked exhaustively by the tests). It was evaluated in
//! `f64` before, also within one ulp: with `exp` also moved to `f32`,
//! GELU's forward went from 6.8 % to 3.3 % of that transformer's profile
//! and its backward from 8.4 % to 4.1 %.

/// `erf(a) / a − 1` as a polynomial in `a²` on `[0, 1]`, highest degree first.
const SMALL: [f32; 7] = [
    7.847259e-05,
    -8.0081896e-04,
    5.188099e-03,
    -2.6853692e-02,
    1.12835824e-01,
    -3.7612626e-01,
    1.2837917e-01,
];

/// `erfc(a)` as a polynomial in `a − 2.5` on `[1, 4]`, highest degree first.
const LARGE: [f32; 13] = [
    8.709416e-06,
    -2.1406018e-05,
    -5.9413655e-05,
    2.80872e-04,
    -2.9199978e-04,
    -5.742028e-04,
    2.8237547e-03,
    -6.1000255e-03,
    8.612779e-03,
    -8.354325e-03,
    5.44707e-03,
    -2.1779793e-03,
    4.0692065e-04,
];

/// The largest distance, in `f32` steps, of [`erf_f32`] from the correctly
/// rounded `erf`, over every `f32`.
pub const ERF_ULPS: u64 = 1;

/// `p(x)` by Horner's rule, coefficients highest degree first, in fused
/// multiply-adds (as the bound was measured; see [`crate::kernels::tanh`]
/// for why every CPU computes the same bits).
#[inline(always)]
fn horner(coefficients: &[f32], x: f32) -> f32 {
    coefficients.iter().fold(0.0, |acc, &c| acc.mul_add(x, c))
}

/// The error function of an `f32`, within [`ERF_ULPS`] of the correctly
/// rounded value.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    // One rounding of `a + a · R`, down to the subnormal results.
    let small = a.mul_add(horner(&SMALL, a * a), a);
    // The clamp keeps the polynomial inside its interval; from 4 on (and at
    // ±inf) the result is exactly ±1, where the fit's own error could not
    // promise it.
    let large = 1.0 - horner(&LARGE, a.min(4.0) - 2.5);
    let e = if a < 1.0 {
        small
    } else if a < 4.0 {
        large
    } else {
        1.0
    };
    // NaN passes through (`min` above would have turned it into 4).
    let e = if a.is_nan() { a } else { e };
    e.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ulps::{ulps, worst_ulps};

    #[test]
    fn within_its_bound_over_all_magnitudes() {
        // Reference: libm's `f64` `erf` (within 1 f64 ulp) rounded to f32.
        // Every 97th f32 bit pattern up to 6 (≈ 1.1e7 values), both signs.
        let (worst, at) = worst_ulps(erf_f32, libm::erf, (0, 6f32.to_bits()), 97);
        assert!(worst <= ERF_ULPS, "{worst} ulps at x = {at:e}");
    }

    #[test]
    fn dense_sweep_across_the_seam_and_the_tail() {
        // Every f32 in [0.5, 4.5]: the switch at 1 and the clamp at 4.
        let range = (0.5f32.to_bits(), 4.5f32.to_bits() + 1);
        let (worst, at) = worst_ulps(erf_f32, libm::erf, range, 1);
        assert!(worst <= ERF_ULPS, "{worst} ulps at x = {at:e}");
    }

    /// The bound in the docs, over every finite `f32` (≈ 4.3e9 values;
    /// several minutes in release).
    #[test]
    #[ignore = "exhaustive: run with --release -- --ignored"]
    fn every_f32_is_within_the_bound() {
        let all = (0, f32::INFINITY.to_bits());
        let (worst, at) = worst_ulps(erf_f32, libm::erf, all, 1);
        assert!(worst <= ERF_ULPS, "{worst} ulps at x = {at:e}");
    }

    #[test]
    fn special_values() {
        assert_eq!(erf_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf_f32(1e30), 1.0);
        assert_eq!(erf_f32(-4.0), -1.0);
        assert!(erf_f32(f32::NAN).is_nan());
        // erf(x) ≈ 2x/√π: relative precision kept down to the smallest
        // normals and through the subnormals (no flush to zero).
        for tiny in [1e-30, f32::MIN_POSITIVE, 1e-40, f32::from_bits(1)] {
            let want = (tiny as f64 * std::f64::consts::FRAC_2_SQRT_PI) as f32;
            assert!(ulps(erf_f32(tiny), want) <= ERF_ULPS, "at x = {tiny:e}");
        }
    }
}
