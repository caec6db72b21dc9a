//! Inverted dropout: drawing the mask (shared by the `Dropout` layer and the
//! tape's `Var::dropout`), applying it, and its gradient.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn, Zip};
use rand::Rng;

use super::owned::filled;
use super::simd::widest;
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

/// The generator of the layers' dropout masks and the tape's random source
/// ([`Tape::with_rng`](crate::Tape::with_rng)): the ChaCha12 stream behind
/// rand 0.9's `StdRng` (the same numbers from the same seed), which can
/// also seek, so [`fill_mask_from`] draws a large mask in parallel.
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
fn fill_blocks<T: Float>(out: &mut [T], threshold: u32, keep: T, draw: impl FnMut(&mut [u32])) {
    draw_blocks(out.len(), threshold, keep, draw, |i, m| out[i] = m);
}

/// Hands `emit` the mask value of each of `len` elements, in order, from
/// one draw each, `draw` filling a block of draws at a time.
#[inline(always)]
fn draw_blocks<T: Float>(
    len: usize,
    threshold: u32,
    keep: T,
    mut draw: impl FnMut(&mut [u32]),
    mut emit: impl FnMut(usize, T),
) {
    // The draws in blocks, then the selection in a loop of its own: a loop
    // that also draws does not vectorize.
    const BLOCK: usize = 256;
    let mut draws = [0u32; BLOCK];
    for start in (0..len).step_by(BLOCK) {
        let draws = &mut draws[..BLOCK.min(len - start)];
        draw(draws);
        for (i, &d) in draws.iter().enumerate() {
            emit(start + i, select(d < threshold, keep));
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
    let mut m = super::owned::zeros(IxDyn(shape));
    fill_mask(m.view_mut(), p, rng);
    m
}

/// A new mask of `shape` drawn on every core (see [`fill_mask_from`]).
pub fn mask_from<T: Float>(shape: &[usize], p: f64, rng: &mut MaskRng) -> ArrayD<T> {
    let mut m = super::owned::zeros(IxDyn(shape));
    fill_mask_from(m.view_mut(), p, rng);
    m
}

/// Dropout of `x` with a mask drawn from `rng`: `(x * mask, mask)`, the
/// mask [`fill_mask_from`]'s (the generator left where it leaves it), both
/// written in one pass on every core from each block of draws (the tape's
/// dropout; its measurements are in `benches/HISTORY.md`).
///
/// # Panics
/// If `p` is not in `[0, 1)`.
pub fn dropout_from<T: Float>(
    x: ArrayViewD<'_, T>,
    p: f64,
    rng: &mut MaskRng,
) -> (ArrayD<T>, ArrayD<T>) {
    check_probability("dropout", p);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let (threshold, keep) = mask_constants::<T>(p);
    let (start, len) = (rng.get_word_pos(), xs.len());
    let (mut y, mut mask) = (ArrayD::uninit(x.raw_dim()), ArrayD::uninit(x.raw_dim()));
    let ys = Shared::new(y.as_slice_mut().expect("a new array is one slice"));
    let ms = Shared::new(mask.as_slice_mut().expect("a new array is one slice"));
    let from = &*rng;
    // As `fill_mask_from`: each draw is worth a few elements of plain work.
    // Not in `simd::widest`: ChaCha's own choice of vectors inside an
    // AVX-512 function made the draws slower (200 → 350 µs at 262,144).
    for_each_range(len, 4 * len, &|range| {
        let mut part = from.clone();
        part.set_word_pos(start + range.start as u128);
        // SAFETY: the parts' ranges are disjoint.
        let (ys, ms) = unsafe { (ys.slice(range.clone()), ms.slice(range.clone())) };
        let xs = &xs[range];
        draw_blocks(
            xs.len(),
            threshold,
            keep,
            |d| part.fill(d),
            |i, m| {
                ms[i].write(m);
                ys[i].write(xs[i] * m);
            },
        );
    });
    rng.set_word_pos(start + len as u128);
    // SAFETY: the parts wrote every element of both.
    unsafe { (y.assume_init(), mask.assume_init()) }
}

/// `x * mask` element by element: the forward of dropout with a drawn mask,
/// and also its backward (`dx = dy * mask`), on every core when both are
/// contiguous.
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
    let (Some(xs), Some(ms)) = (x.as_slice(), mask.as_slice()) else {
        return Zip::from(&x).and(&mask).map_collect(|&v, &m| v * m);
    };
    // Split at the usual threshold (three arrays touched per element), not
    // the tape's binary ops' million values: on the tape it runs in
    // dropout's backward, and splitting only from a million made the tape
    // benchmark's dropout slower (598–629 µs against 650–670 at 262,144
    // values).
    let split_from = crate::parallel::PARALLEL_ELEMENTS.div_ceil(3);
    // SAFETY: the operands are as long as the output, so the loop writes
    // every element of each range.
    unsafe {
        filled(x.raw_dim(), split_from, |r, os| {
            let (xs, ms) = (&xs[r.clone()], &ms[r]);
            widest(|| {
                for ((o, &v), &m) in os.iter_mut().zip(xs).zip(ms) {
                    o.write(v * m);
                }
            })
        })
    }
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

    #[test]
    fn dropout_in_one_pass_gives_the_mask_and_the_product() {
        // Lengths below and above the parallel split; a generator part-way
        // through its stream; a transposed input (read in standard order).
        for len in [0, 1, 257, 70_001, 200_000] {
            let x = ArrayD::from_shape_fn(IxDyn(&[len]), |i| i[0] as f32 - 7.5);
            let mut seq = StdRng::seed_from_u64(5);
            let mut par = MaskRng::seed_from_u64(5);
            seq.next_u32();
            par.next_u32();
            let want: ArrayD<f32> = mask(&[len], 0.25, &mut seq);
            let (y, got) = dropout_from(x.view(), 0.25, &mut par);
            assert_eq!(got, want, "len {len}");
            assert_eq!(y, &x * &want, "len {len}");
            assert_eq!(
                par.next_u32(),
                seq.next_u32(),
                "len {len}: the stream goes on alike"
            );
        }
        // Transposed, in f64: the mask in the standard order of the view.
        let x = ndarray::Array2::from_shape_fn((300, 400), |(i, j)| (i * 400 + j) as f64);
        let mut par = MaskRng::seed_from_u64(9);
        let mut seq = StdRng::seed_from_u64(9);
        let (y, m) = dropout_from(x.t().into_dyn(), 0.5, &mut par);
        assert_eq!(m, mask::<f64, _>(&[400, 300], 0.5, &mut seq));
        assert_eq!(y, &x.t().into_dyn() * &m);
        assert_eq!(par.next_u32(), seq.next_u32(), "the stream goes on alike");
    }

    #[test]
    fn applying_a_mask_multiplies_element_by_element() {
        // Contiguous operands above the parallel split (split where the
        // machine has two cores or more), a transposed one, an empty one
        // and `f64`.
        let x = ndarray::Array2::from_shape_fn((500, 300), |(i, j)| (i * 300 + j) as f32);
        let m: ArrayD<f32> = mask(&[500, 300], 0.3, &mut StdRng::seed_from_u64(1));
        let want = Zip::from(&x.view().into_dyn())
            .and(&m)
            .map_collect(|&v, &m| v * m);
        assert_eq!(apply_mask(x.view().into_dyn(), m.view()), want);
        let xt = x.t().to_owned();
        let mt: ArrayD<f32> = mask(&[300, 500], 0.3, &mut StdRng::seed_from_u64(2));
        let want = Zip::from(&xt.view().into_dyn())
            .and(&mt)
            .map_collect(|&v, &m| v * m);
        assert_eq!(apply_mask(x.t().into_dyn(), mt.view()), want);
        let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
        assert_eq!(apply_mask(empty.view(), empty.view()).shape(), &[0, 3]);
        let x = ArrayD::from_shape_fn(IxDyn(&[70_001]), |i| i[0] as f64 * 0.5);
        let m: ArrayD<f64> = mask(&[70_001], 0.2, &mut StdRng::seed_from_u64(4));
        assert_eq!(apply_mask(x.view(), m.view()), &x * &m);
    }
}
