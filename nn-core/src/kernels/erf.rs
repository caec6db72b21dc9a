//! The error function of an `f32` without branches or library calls, so the
//! exact GELU's loops vectorize: libm's scalar `erff`, not inlined, kept
//! them scalar and was a tenth of a small vision transformer's epoch.
//!
//! Computed in `f64` and rounded once, from two polynomials (Chebyshev fits
//! made with mpmath's `chebyfit`), both evaluated and one selected:
//! `erf(a) = a · P(a²)` for `a = |x| < 1` (relative error below 1e-15) and
//! `erf(a) = 1 − Q(a − 2.5)` for `1 ≤ a ≤ 4` (absolute error below 1e-13;
//! from `a = 4` on `erf` rounds to 1 in `f32`). So the result is the
//! correctly rounded `erf` except where the true value lies within that
//! distance of a rounding boundary, where it is one ulp off.

use super::poly::eval;

/// `erf(a) / a` as a polynomial in `a²` on `[0, 1]`, highest degree first.
const SMALL: [f64; 11] = [
    9.428596956834164e-09,
    -1.5188281247335167e-07,
    1.631035651387174e-06,
    -1.4913300906316395e-05,
    0.00012054681918310599,
    -0.0008548304871782741,
    0.005223977154105304,
    -0.026866170586496874,
    0.11283791670580423,
    -0.376126389031744,
    1.1283791670955121,
];

/// `erfc(a)` as a polynomial in `a − 2.5` on `[1, 4]`, highest degree first.
const LARGE: [f64; 23] = [
    3.759818884166423e-11,
    2.1561883454607495e-10,
    -1.5221324825823196e-09,
    -2.117344738860539e-09,
    2.479597790785763e-08,
    -2.5126720585586064e-08,
    -1.8113013893789222e-07,
    6.550938970513307e-07,
    -1.790433482772777e-07,
    -4.708721564564511e-06,
    1.407810992713578e-05,
    -5.121944936397826e-06,
    -7.88003135601579e-05,
    0.00025027715826193733,
    -0.00026067050812778004,
    -0.0005424073060029814,
    0.0027984902186655894,
    -0.006117348727463889,
    0.008622375073202054,
    -0.008350089505357039,
    0.005445710576016124,
    -0.0021782842314845723,
    0.0004069520174449589,
];

/// The error function of an `f32` (see the module documentation for accuracy).
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x = x as f64;
    let a = x.abs();
    let small = a * eval(&SMALL, a * a);
    // The clamp keeps the polynomial inside its interval (and ±inf at ±1).
    let large = 1.0 - eval(&LARGE, a.min(4.0) - 2.5);
    let e = if a < 1.0 { small } else { large };
    // NaN passes through (`min` above would have turned it into 4).
    let e = if a.is_nan() { a } else { e };
    e.copysign(x) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ulps::{assert_correctly_rounded, ulps};

    #[test]
    fn within_one_ulp_of_the_correctly_rounded_value_over_all_magnitudes() {
        // Reference: libm's `f64` `erf` (within 1 f64 ulp) rounded to f32.
        // Every 97th f32 bit pattern between 1e-30 and 6 (≈ 1e7 values),
        // both signs.
        assert_correctly_rounded(erf_f32, libm::erf, (1e-30, 6.0), 97);
    }

    #[test]
    fn dense_sweep_across_the_seam_and_the_tail() {
        // Every f32 in [0.5, 4.5]: the switch at 1 and the clamp at 4.
        for bits in 0.5f32.to_bits()..=4.5f32.to_bits() {
            let x = f32::from_bits(bits);
            assert!(
                ulps(erf_f32(x), libm::erf(x as f64) as f32) <= 1,
                "at x = {x:e}"
            );
        }
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
        // erf(x) ≈ 2x/√π: relative precision kept down to the smallest normals.
        let tiny = f32::MIN_POSITIVE;
        let want = (tiny as f64 * std::f64::consts::FRAC_2_SQRT_PI) as f32;
        assert_eq!(erf_f32(tiny), want);
    }
}
