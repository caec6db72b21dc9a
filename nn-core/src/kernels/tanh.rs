//! `tanh`, the logistic function and `exp` for `f32` without branches (and,
//! in the kernels' vector copies, without library calls), so loops over a
//! tensor vectorize. glibc's scalar `tanhf`
//! (through `expm1f`) was half of a small-batch training step's time, and the
//! scalar `expf` of a sigmoid most of an LSTM cell's.
//!
//! All three are computed in `f32` arithmetic (twice the vector lanes of
//! `f64`, and shorter polynomials). `exp`: range reduction and a degree-7
//! Taylor polynomial (attention's softmax and GELU's derivative use it; it
//! was an `f64` evaluation before, correctly rounded but twice the cost).
//! `tanh` and the logistic function, the activations of every recurrent
//! cell: an odd minimax polynomial for `|x| < 0.625` and otherwise the
//! exponential forms over that `e^y`. Their error bounds, [`EXP_ULPS`],
//! [`TANH_ULPS`] and [`SIGMOID_ULPS`], hold for every `f32`: checked
//! exhaustively by the ignored test `every_f32_is_within_the_bound`
//! (`cargo test --release -p nn-core -- --ignored every_f32`), against `f64`
//! references rounded to `f32`.
//!
//! The polynomials and the range reduction are fused multiply-adds
//! (`mul_add`), each rounded once: a third fewer vector instructions than
//! separate multiplies and adds. Rust defines `mul_add` as correctly
//! rounded (its own tests exempt only MinGW targets), so every CPU computes
//! the same bits.
//! It is one instruction in the kernels' AVX-512 and AVX2 copies
//! (`run_widest!`) and on AArch64, and a library call elsewhere: on an
//! x86-64 without FMA, and in code built for the baseline, which is why the
//! element-wise kernels run non-contiguous tensors through a contiguous copy.

/// `1 / k!` for `k = 7` down to `0`: the Taylor coefficients of `e^r`,
/// highest degree first (each the same `f32` as `1.0f32 / k!`).
const INV_FACTORIALS: [f32; 8] = [
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// The largest distance, in `f32` steps, of [`exp_f32`] from the correctly
/// rounded `e^x`, over every `f32`.
pub const EXP_ULPS: u64 = 1;

/// The largest distance, in `f32` steps, of [`tanh_f32`] from the
/// correctly rounded `tanh`, over every `f32`.
pub const TANH_ULPS: u64 = 1;

/// The largest distance, in `f32` steps, of [`sigmoid_f32`] from the
/// correctly rounded logistic function, over every `f32`.
pub const SIGMOID_ULPS: u64 = 2;

/// `1.5 · 2²³`: adding it rounds an `f32` below 2²² to an integer, which then
/// sits in the low mantissa bits.
const ROUND_F32: f32 = 12_582_912.0;

/// `e^y = 2ⁿ · e^r` reduced: `y = n ln2 + r` with `|r| ≤ ln2 / 2`, `e^r` by
/// its Taylor series to `r⁷` (truncation below 6e-9 relative). Returns
/// `e^r` and `n`.
#[inline(always)]
fn exp_reduced(y: f32) -> (f32, i32) {
    // ln 2 split so `n · LN2_HI` is exact (9 significant bits, |n| ≤ 150).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let t = y.mul_add(std::f32::consts::LOG2_E, ROUND_F32);
    let n = t - ROUND_F32;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, y));
    // One fused chain (the bounds were measured for this order).
    let p = INV_FACTORIALS[1..]
        .iter()
        .fold(INV_FACTORIALS[0], |p, &c| p.mul_add(r, c));
    (p, t.to_bits().wrapping_sub(ROUND_F32.to_bits()) as i32)
}

/// `2ᵏ` for `k` in `[-126, 127]`.
#[inline(always)]
fn two_to(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `e^y` in `f32` arithmetic for `y` in `[-104, 89]` (results down to the
/// subnormals, and infinity above `f32::MAX`): `2ⁿ` as two normal factors so
/// a subnormal result is rounded once.
#[inline(always)]
fn exp_f32_arith(y: f32) -> f32 {
    let (p, n) = exp_reduced(y);
    let half = n >> 1;
    p * two_to(half) * two_to(n - half)
}

/// [`exp_f32_arith`] for `y` in `[-104, 0]` (NaN gives NaN), the same bits
/// in fewer instructions (the logistic function 7 % faster): `p · 2ⁿ⁺⁶⁴`
/// is exact and normal for every `n` there is (`-150 ≤ n ≤ 0`), and the
/// constant `2⁻⁶⁴` then rounds it once, as the two factors do.
#[inline(always)]
fn exp_f32_nonpositive(y: f32) -> f32 {
    const TWO_TO_MINUS_64: f32 = f32::from_bits((127 - 64) << 23);
    let (p, n) = exp_reduced(y);
    p * two_to(n + 64) * TWO_TO_MINUS_64
}

/// [`exp_f32_arith`] for `y` in `[0, 20]` (NaN gives NaN), the same bits:
/// `2ⁿ` is one normal factor for `0 ≤ n ≤ 29`, and the product is exact
/// either way.
#[inline(always)]
fn exp_f32_0_to_20(y: f32) -> f32 {
    let (p, n) = exp_reduced(y);
    p * two_to(n)
}

/// The hyperbolic tangent of an `f32`, within [`TANH_ULPS`] of the correctly
/// rounded value.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    // tanh(a) = a + a·z·P(z), z = a², below 0.625: P minimax for relative
    // error (8.6e-9 with these f32 coefficients, fitted by Lawson's
    // iteration), where `1 − 2 / (e^{2a} + 1)` would cancel.
    const P: [f32; 5] = [
        -0.333_332_8,
        0.133_314_42,
        -0.053_739_715,
        0.020_639_088,
        -0.005_704_987,
    ];
    let a = x.abs();
    let z = a * a;
    let p = z.mul_add(
        z.mul_add(z.mul_add(z.mul_add(P[4], P[3]), P[2]), P[1]),
        P[0],
    );
    let series = (a * z).mul_add(p, a);
    // tanh(10) rounds to 1 in f32; the clamp keeps 2a within the one-factor
    // scaling's [0, 20] (past it `2ⁿ` would wrap, not overflow), and lets
    // NaN through to the result (`f32::min` would turn it into 10).
    let e = exp_f32_0_to_20(2.0 * if a > 10.0 { 10.0 } else { a });
    let exponential = 1.0 - 2.0 / (e + 1.0);
    let t = if a < 0.625 { series } else { exponential };
    t.copysign(x)
}

/// The logistic function `1 / (1 + e^{-x})` of an `f32`, within
/// [`SIGMOID_ULPS`] of the correctly rounded value: from `E = e^{-|x|}` as
/// `1 / (1 + E)` or `E / (1 + E)` (neither form cancels, so the negative tail
/// keeps its relative precision).
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    // σ(-104) rounds to 0 in f32: the clamp keeps E within exp's range (and
    // an infinite x at its limit) and changes nothing; NaN passes through it
    // to the result (`f32::min` would turn it into 104).
    let a = x.abs();
    let e = exp_f32_nonpositive(-(if a > 104.0 { 104.0 } else { a }));
    let d = 1.0 + e;
    if x >= 0.0 {
        1.0 / d
    } else {
        e / d
    }
}

/// `e^x` of an `f32` in `f32` arithmetic, within [`EXP_ULPS`] of the
/// correctly rounded value, subnormal results included.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Below -104 e^x rounds to 0 in f32 and from 89 on it overflows to inf:
    // the clamp changes no result and keeps the reduction in range.
    let e = exp_f32_arith(x.clamp(-104.0, 89.0));
    if x.is_nan() {
        x
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ulps::worst_ulps;

    #[test]
    fn exp_is_within_its_bound() {
        // Reference: f64 `exp` (within 1 f64 ulp) rounded to f32. Every 61st
        // f32 bit pattern of magnitude up to 110, both signs (≈ 3.7e7 values):
        // past both ends of the clamp, through the subnormal results.
        let (worst, at) = worst_ulps(exp_f32, f64::exp, (0, 110f32.to_bits()), 61);
        assert!(worst <= EXP_ULPS, "{worst} ulps at x = {at:e}");
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

    /// The logistic function in `f64`, from `e^{-|x|}` as [`sigmoid_f32`]
    /// (within a few `f64` ulps: far below an `f32` step).
    fn logistic(x: f64) -> f64 {
        let e = (-x.abs()).exp();
        if x >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        }
    }

    #[test]
    fn sigmoid_is_within_its_bound() {
        // Every 97th f32 bit pattern up to 120 (≈ 1.1e7 values), both signs:
        // through the subnormal results and past the clamp.
        let (worst, at) = worst_ulps(sigmoid_f32, logistic, (0, 120f32.to_bits()), 97);
        assert!(worst <= SIGMOID_ULPS, "{worst} ulps at x = {at:e}");
        assert_eq!(sigmoid_f32(0.0), 0.5);
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid_f32(-104.0), 0.0);
        assert!(sigmoid_f32(f32::NAN).is_nan());
        // Deep in the negative tail the value keeps its relative precision.
        let tail = sigmoid_f32(-30.0) as f64;
        assert!((tail / (-30f64).exp() - 1.0).abs() < 1e-6, "{tail:e}");
    }

    #[test]
    fn tanh_is_within_its_bound_over_all_magnitudes() {
        // Reference: `f64::tanh` (within 1 f64 ulp) rounded to f32. Every
        // 97th f32 bit pattern up to 12 (≈ 1.1e7 values), both signs.
        let (worst, at) = worst_ulps(tanh_f32, f64::tanh, (0, 12f32.to_bits()), 97);
        assert!(worst <= TANH_ULPS, "{worst} ulps at x = {at:e}");
    }

    /// The bounds in the docs, over every finite `f32` (≈ 4.3e9 values per
    /// function; several minutes in release).
    #[test]
    #[ignore = "exhaustive: run with --release -- --ignored"]
    fn every_f32_is_within_the_bound() {
        let all = (0, f32::INFINITY.to_bits());
        let (worst, at) = worst_ulps(tanh_f32, f64::tanh, all, 1);
        assert!(worst <= TANH_ULPS, "tanh: {worst} ulps at x = {at:e}");
        let (worst, at) = worst_ulps(sigmoid_f32, logistic, all, 1);
        assert!(worst <= SIGMOID_ULPS, "sigmoid: {worst} ulps at x = {at:e}");
        let (worst, at) = worst_ulps(exp_f32, f64::exp, all, 1);
        assert!(worst <= EXP_ULPS, "exp: {worst} ulps at x = {at:e}");
        shortcuts_agree(1);
    }

    /// Every `f32` bit pattern from `lo` to `hi`, both signs, one in `step`.
    fn patterns(lo: f32, hi: f32, step: usize) -> impl Iterator<Item = f32> {
        (lo.to_bits()..=hi.to_bits())
            .step_by(step)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
    }

    /// The shortcuts of the logistic function and `tanh` give the general
    /// two-factor scaling's bits on their domains (`step` 1: every `f32`).
    fn shortcuts_agree(step: usize) {
        for y in patterns(0.0, 104.0, step).filter(|y| *y <= 0.0) {
            let (got, want) = (exp_f32_nonpositive(y), exp_f32_arith(y));
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "e^{y:e}: {got:e} vs {want:e}"
            );
        }
        for y in patterns(0.0, 20.0, step).filter(|y| *y >= 0.0) {
            let (got, want) = (exp_f32_0_to_20(y), exp_f32_arith(y));
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "e^{y:e}: {got:e} vs {want:e}"
            );
        }
    }

    #[test]
    fn shortcut_scalings_give_the_same_bits() {
        // Every 101st pattern (≈ 2.2e7 values in all), the ends of
        // both domains and the subnormal results of the first included.
        shortcuts_agree(101);
        assert_eq!(
            exp_f32_nonpositive(-104.0).to_bits(),
            exp_f32_arith(-104.0).to_bits()
        );
        assert_eq!(
            exp_f32_0_to_20(20.0).to_bits(),
            exp_f32_arith(20.0).to_bits()
        );
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
        assert!(tanh_f32(-f32::NAN).is_nan());
        assert!(sigmoid_f32(-f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(tanh_f32(1e-45), 1e-45);
    }
}
