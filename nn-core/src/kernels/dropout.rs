//! Inverted dropout: drawing the mask (shared by the `Dropout` layer and the
//! tape's `Var::dropout`), applying it, and its gradient.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use rand::Rng;

use crate::Float;

/// Checks a drop probability: `p` must be in `[0, 1)`.
///
/// # Panics
/// Otherwise, naming `op` and `p` (at the caller's line).
#[track_caller]
pub fn check_probability(op: &str, p: f64) {
    assert!(
        (0.0..1.0).contains(&p),
        "{op}: drop probability must be in [0, 1), got {p}"
    );
}

/// Fills `mask` with `0` (probability `p`) or `1 / (1 - p)` (PyTorch's and
/// Keras's inverted dropout: the kept values are scaled so the expectation
/// is unchanged), in the order of `mask`'s elements.
///
/// One 32-bit draw per element against a fixed-point threshold: half the
/// random bits of an `f64` draw, and `p` is still exact to 2⁻³².
pub fn fill_mask<T: Float, R: Rng + ?Sized>(mut mask: ArrayViewMutD<'_, T>, p: f64, rng: &mut R) {
    let keep = T::lit(1.0 / (1.0 - p));
    let threshold = (p * 4_294_967_296.0) as u64;
    mask.mapv_inplace(|_| {
        if u64::from(rng.random::<u32>()) < threshold {
            T::zero()
        } else {
            keep
        }
    });
}

/// A new mask of `shape` (see [`fill_mask`]).
pub fn mask<T: Float, R: Rng + ?Sized>(shape: &[usize], p: f64, rng: &mut R) -> ArrayD<T> {
    let mut m = ArrayD::zeros(IxDyn(shape));
    fill_mask(m.view_mut(), p, rng);
    m
}

/// `x * mask` element by element: the forward of dropout with a drawn mask,
/// and also its backward (`dx = dy * mask`).
///
/// # Panics
/// If the shapes differ.
pub fn apply_mask<T: Float>(x: ArrayViewD<'_, T>, mask: ArrayViewD<'_, T>) -> ArrayD<T> {
    assert!(
        x.shape() == mask.shape(),
        "dropout: mask of shape {:?} for a value of shape {:?}",
        mask.shape(),
        x.shape()
    );
    Zip::from(&x).and(&mask).map_collect(|&v, &m| v * m)
}
