//! The accuracy check of the branch-free `f32` functions (`tanh`, `exp`,
//! `erf`): against an `f64` reference rounded to `f32`.

/// How many `f32` steps apart `a` and `b` are (same sign).
pub(crate) fn ulps(a: f32, b: f32) -> u64 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
}

/// Checks `f` against `reference` rounded to `f32` on every `step`-th bit
/// pattern in `lo..hi`, both signs: at most one ulp anywhere, and correctly
/// rounded on all but fewer than 1 in 10⁵ values (those whose true value
/// sits within the reference's error of a rounding boundary).
pub(crate) fn assert_correctly_rounded(
    f: impl Fn(f32) -> f32,
    reference: impl Fn(f64) -> f64,
    (lo, hi): (f32, f32),
    step: usize,
) {
    let mut worst = (0, 0.0f32);
    let (mut off, mut total) = (0usize, 0usize);
    for bits in (lo.to_bits()..hi.to_bits()).step_by(step) {
        for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
            let u = ulps(f(x), reference(x as f64) as f32);
            total += 1;
            off += (u > 0) as usize;
            if u > worst.0 {
                worst = (u, x);
            }
        }
    }
    assert!(worst.0 <= 1, "{} ulps at x = {:e}", worst.0, worst.1);
    assert!(
        off * 100_000 < total,
        "{off} of {total} values are one ulp off"
    );
}

/// The largest distance of `f` from `reference` rounded to `f32`, in ulps,
/// over every `step`-th bit pattern in `lo..hi`, both signs, and where.
pub(crate) fn worst_ulps(
    f: impl Fn(f32) -> f32,
    reference: impl Fn(f64) -> f64,
    (lo, hi): (u32, u32),
    step: usize,
) -> (u64, f32) {
    let mut worst = (0, 0.0f32);
    for bits in (lo..hi).step_by(step) {
        for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
            let u = ulps(f(x), reference(x as f64) as f32);
            if u > worst.0 {
                worst = (u, x);
            }
        }
    }
    worst
}
