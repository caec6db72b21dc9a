//! Inverted dropout: drawing the mask (shared by the `Dropout` layer and the
//! tape's `Var::dropout`), applying it, and its gradient.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use rand::Rng;

use crate::parallel::{for_each_range, Shared};
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
///
/// # Panics
/// If `p` is not in `[0, 1)`.
pub fn fill_mask<T: Float, R: Rng + ?Sized>(mut mask: ArrayViewMutD<'_, T>, p: f64, rng: &mut R) {
    check_probability("dropout", p);
    let (threshold, keep) = mask_constants::<T>(p);
    match mask.as_slice_mut() {
        Some(out) => fill_blocks(out, threshold, keep, |d| d.fill_with(|| rng.next_u32())),
        None => mask.mapv_inplace(|_| select(rng.next_u32() < threshold, keep)),
    }
}

/// The generator of the layers' dropout masks: the ChaCha12 stream behind
/// rand's `StdRng` (the same numbers from the same seed), which can also
/// seek, so [`fill_mask_from`] draws a large mask in parallel.
pub type MaskRng = rand_chacha::ChaCha12Rng;

/// [`fill_mask`] from a [`MaskRng`]: the same mask, and the generator left
/// at the same place, but a large mask is drawn on every core, each part
/// starting at its own place in the stream, so the mask does not depend on
/// the number of threads. (ChaCha12 costs about 1 ns per draw; one core
/// drew an `mlp_big` step's masks in a twentieth of the step.)
///
/// # Panics
/// If `p` is not in `[0, 1)`.
pub fn fill_mask_from<T: Float>(mut mask: ArrayViewMutD<'_, T>, p: f64, rng: &mut MaskRng) {
    check_probability("dropout", p);
    let Some(out) = mask.as_slice_mut() else {
        return fill_mask(mask, p, rng);
    };
    let (threshold, keep) = mask_constants::<T>(p);
    let (start, len) = (rng.get_word_pos(), out.len());
    let shared = Shared::new(out);
    let from = &*rng;
    // Each draw is worth a few elements of plain work.
    for_each_range(len, 4 * len, &|range| {
        let mut part = from.clone();
        part.set_word_pos(start + range.start as u128);
        // SAFETY: the parts' ranges are disjoint.
        let out = unsafe { shared.slice(range) };
        // ChaCha's `fill` gives the words `next_u32` would, a fifth faster.
        fill_blocks(out, threshold, keep, |d| part.fill(d));
    });
    rng.set_word_pos(start + len as u128);
}

/// The fixed-point threshold (a draw below it drops) and the kept value.
fn mask_constants<T: Float>(p: f64) -> (u32, T) {
    // Exact: `p < 1` times a power of two stays below 2³².
    ((p * 4_294_967_296.0) as u32, T::lit(1.0 / (1.0 - p)))
}

/// Fills `out` from one draw per element, in order, `draw` filling a block
/// of draws at a time.
fn fill_blocks<T: Float>(out: &mut [T], threshold: u32, keep: T, mut draw: impl FnMut(&mut [u32])) {
    // The draws in blocks, then the selection in a loop of its own: a loop
    // that only compares and stores vectorizes, one that also draws does not.
    let mut draws = [0u32; 256];
    for chunk in out.chunks_mut(draws.len()) {
        let draws = &mut draws[..chunk.len()];
        draw(draws);
        for (m, &d) in chunk.iter_mut().zip(&*draws) {
            *m = select(d < threshold, keep);
        }
    }
}

/// The mask's value for one element.
#[inline(always)]
fn select<T: Float>(drop: bool, keep: T) -> T {
    if drop {
        T::zero()
    } else {
        keep
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    /// The definition, one element at a time: draw `r`, drop when
    /// `r < ⌊p · 2³²⌋` (the fixed-point threshold), else keep with
    /// `1 / (1 - p)`.
    fn one_at_a_time(len: usize, p: f64, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len)
            .map(|_| {
                let r = u64::from(rng.next_u32());
                if r < (p * 4_294_967_296.0) as u64 {
                    0.0
                } else {
                    (1.0 / (1.0 - p)) as f32
                }
            })
            .collect()
    }

    #[test]
    fn masks_follow_the_definition_draw_by_draw() {
        // Lengths around the 256-draw blocks; p = 0, a common rate, and one
        // whose threshold is 2³² − 1.
        for len in [0, 1, 255, 256, 257, 1000] {
            for p in [0.0, 0.2, 0.5, 1.0 - 1e-12] {
                let mut rng = StdRng::seed_from_u64(7);
                let m: ArrayD<f32> = mask(&[len], p, &mut rng);
                assert_eq!(
                    m.as_slice().unwrap(),
                    one_at_a_time(len, p, 7),
                    "len {len}, p {p}"
                );
                // The stream continues where one draw per element leaves it.
                let mut reference = StdRng::seed_from_u64(7);
                (0..len).for_each(|_| {
                    reference.next_u32();
                });
                assert_eq!(rng.next_u32(), reference.next_u32(), "len {len}, p {p}");
            }
        }
    }

    #[test]
    fn masks_drawn_in_parallel_are_the_sequential_masks() {
        // Lengths below and above the parallel split, ragged ones included;
        // a mask drawn from a generator already part-way through its stream.
        for len in [0, 1, 300, 16_383, 70_001, 200_000] {
            let mut seq = StdRng::seed_from_u64(11);
            let mut par = MaskRng::seed_from_u64(11);
            for _ in 0..5 {
                seq.next_u32();
                par.next_u32();
            }
            let want: ArrayD<f32> = mask(&[len], 0.3, &mut seq);
            let mut got = ArrayD::<f32>::zeros(IxDyn(&[len]));
            fill_mask_from(got.view_mut(), 0.3, &mut par);
            assert_eq!(got, want, "len {len}");
            assert_eq!(
                par.next_u32(),
                seq.next_u32(),
                "len {len}: the stream goes on alike"
            );
        }
        // A mask that is not a row-major slice takes fill_mask's own path.
        let mut want = ndarray::Array2::<f32>::zeros((30, 40));
        fill_mask(
            want.view_mut().reversed_axes().into_dyn(),
            0.5,
            &mut StdRng::seed_from_u64(3),
        );
        let mut got = ndarray::Array2::<f32>::zeros((30, 40));
        fill_mask_from(
            got.view_mut().reversed_axes().into_dyn(),
            0.5,
            &mut MaskRng::seed_from_u64(3),
        );
        assert_eq!(got, want);
    }
}
