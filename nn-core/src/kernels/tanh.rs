//! `tanh`, the logistic function and `exp` for `f32` without branches or
//! library calls, so loops over a tensor vectorize. glibc's scalar `tanhf`
//! (through `expm1f`) was half of a small-batch training step's time, and the
//! scalar `expf` of a sigmoid most of an LSTM cell's.
//!
//! The value is computed in `f64` and rounded once: an odd series near zero,
//! `1 − 2 / (e^{2|x|} + 1)` elsewhere, with `e^y` by range reduction and a
//! degree-12 polynomial. The `f64` result is within ~1e-14 relative of the true
//! value, so the `f32` result is the correctly rounded `tanh` except where the
//! true value lies within that distance of a rounding boundary (then it is one
//! ulp off, as glibc's `tanhf` may be anywhere).

const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` split so `n · LN2_HI` is exact for the `n` used here.
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// Adding `1.5 · 2^52` rounds to an integer, which then sits in the low mantissa bits.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// `e^y` for `y` in `[-110, 110]`, relative error below 1e-15.
#[inline(always)]
fn exp_small_range(y: f64) -> f64 {
    let t = y * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO; // |r| ≤ ln2 / 2
                                           // Taylor series of e^r to r^12 / 12!: truncation below 2e-16 for |r| ≤ 0.35.
    let mut p = 1.0 / 479_001_600.0;
    for inv_fact in [
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + inv_fact;
    }
    // 2^n from the integer in t's low bits (|n| ≤ 159, so 2^n is a normal f64;
    // a negative n wraps and the exponent field comes out right).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f64::from_bits((n_bits.wrapping_add(1023)) << 52);
    p * scale
}

/// The hyperbolic tangent of an `f32` (see the module documentation for accuracy).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let x = x as f64;
    let a = x.abs();
    // Below 0.03 the series 1 − z/3 + 2z²/15 − 17z³/315 + 62z⁴/2835 (z = a²)
    // is exact to 1e-14; above, the exponential form loses at most 6 bits.
    let z = a * a;
    let series =
        a * (1.0 + z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0)))));
    // tanh(20) is 1 to f64 precision; clamping keeps e^{2a} finite.
    let e = exp_small_range(2.0 * a.min(20.0));
    let exponential = 1.0 - 2.0 / (e + 1.0);
    let t = if a < 0.03 { series } else { exponential };
    // NaN passes through (`min` above would have turned it into 20).
    let t = if a.is_nan() { a } else { t };
    t.copysign(x) as f32
}

/// The logistic function `1 / (1 + e^{-x})` of an `f32`, computed in `f64`
/// from `E = e^{|x|}` as `E / (E + 1)` or `1 / (E + 1)` (neither form loses
/// precision to cancellation), then rounded once.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let x = x as f64;
    // σ(110) rounds to 1 and σ(-110) to 0 in f32: the clamp keeps E finite
    // (and an infinite x at its limit) and changes nothing.
    let e = exp_small_range(x.abs().min(110.0));
    let s = if x >= 0.0 {
        e / (e + 1.0)
    } else {
        1.0 / (e + 1.0)
    };
    let s = if x.is_nan() { x } else { s };
    s as f32
}

/// `e^x` of an `f32`, computed in `f64` and rounded once: the correctly
/// rounded value except within 1e-15 relative of a rounding boundary (then
/// one ulp off), subnormal results included.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x as f64;
    // Below -104 e^x rounds to 0 in f32 and above 89 overflows to inf: the
    // clamp changes no result and keeps 2^n a normal f64.
    let e = exp_small_range(x.clamp(-104.0, 89.0));
    let e = if x.is_nan() { x } else { e };
    e as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ulps::{assert_correctly_rounded, ulps};

    #[test]
    fn exp_is_within_one_ulp_of_the_correctly_rounded_value() {
        // Reference: f64 `exp` (within 1 f64 ulp) rounded to f32. Every 61st
        // f32 bit pattern of magnitude up to 110, both signs (≈ 3.7e7 values):
        // past both ends of the clamp, through the subnormal results.
        assert_correctly_rounded(exp_f32, f64::exp, (0.0, 110.0), 61);
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-104.0), 0.0);
        // The smallest subnormal, e^-103.28 ≈ 1.4e-45.
        assert_eq!(exp_f32(-103.28), f32::from_bits(1));
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_the_correctly_rounded_logistic_function() {
        // Reference: the f64 logistic function, rounded to f32; a one-ulp
        // difference is allowed where that value sits at a rounding boundary.
        let mut worst = 0;
        for k in -4000..=4000 {
            let x = k as f32 * 0.0123;
            let want = (1.0 / (1.0 + (-(x as f64)).exp())) as f32;
            let got = sigmoid_f32(x);
            worst = worst.max(ulps(got, want));
        }
        assert!(worst <= 1, "{worst} ulps");
        assert_eq!(sigmoid_f32(0.0), 0.5);
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid_f32(f32::NAN).is_nan());
        // Deep in the negative tail the value keeps its relative precision.
        let tail = sigmoid_f32(-30.0) as f64;
        assert!((tail / (-30f64).exp() - 1.0).abs() < 1e-6, "{tail:e}");
    }

    #[test]
    fn within_one_ulp_of_the_correctly_rounded_value_over_all_magnitudes() {
        // Reference: `f64::tanh` (correctly rounded to within 1 f64 ulp)
        // rounded to f32. Every 97th f32 bit pattern between 1e-30 and 12
        // (≈ 1e7 values), both signs.
        assert_correctly_rounded(tanh_f32, f64::tanh, (1e-30, 12.0), 97);
    }

    #[test]
    fn special_values() {
        assert_eq!(tanh_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(1e30), 1.0);
        assert_eq!(tanh_f32(-9.5), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(tanh_f32(1e-45), 1e-45);
    }
}
