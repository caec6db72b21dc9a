//! The accuracy check of the branch-free `f32` functions (`tanh`, `exp`,
//! `erf`): against an `f64` reference rounded to `f32`.

/// How many `f32` steps apart `a` and `b` are (same sign).
pub(crate) fn ulps(a: f32, b: f32) -> u64 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
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
