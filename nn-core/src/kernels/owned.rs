//! New arrays for kernels to write: [`owned`], the allocating form of any
//! `_into` kernel in one line, and the forms that fill over the cores or
//! leave the filling to the kernel's own parts.

use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{Array, ArrayD, ArrayViewMut, IxDyn, RawArrayViewMut, ShapeBuilder};
use num_traits::Zero;

use crate::parallel::{for_each_range, Shared, ALONE_SPLIT_ELEMENTS};

/// A new zero-filled array of `shape`, written by `fill`: the allocating twin
/// of an `_into` kernel is `owned(shape, |out| kernel_into(…, out))`.
///
/// ```
/// use nn_core::kernels::owned::owned;
/// use nn_core::kernels::softmax::softmax_into;
/// use nn_core::ndarray::{arr2, Axis};
///
/// let x = arr2(&[[0.0f64, 0.0], [1.0, 1.0]]).into_dyn();
/// let p = owned(x.raw_dim(), |out| softmax_into(x.view(), Axis(1), out));
/// assert_eq!(p, arr2(&[[0.5, 0.5], [0.5, 0.5]]).into_dyn());
/// ```
pub fn owned<A: Clone + Zero + Send, Sh: ShapeBuilder>(
    shape: Sh,
    fill: impl FnOnce(ArrayViewMut<'_, A, Sh::Dim>),
) -> Array<A, Sh::Dim> {
    let mut out = zeros(shape);
    fill(out.view_mut());
    out
}

/// A new zero-filled array, filled over the cores from 2^20 elements (the
/// tape's binary ops split from the same size): a tape allocates its ops'
/// outputs and gradients afresh, and filling each on one thread was a tenth
/// of the samples of a 16-channel CNN's step on the tape
/// (`benches/HISTORY.md`).
///
/// ```
/// let z: nn_core::ndarray::Array2<f32> = nn_core::kernels::owned::zeros((2, 3));
/// assert!(z.iter().all(|&v| v == 0.0));
/// ```
pub fn zeros<A: Zero + Send, Sh: ShapeBuilder>(shape: Sh) -> Array<A, Sh::Dim> {
    let mut out = Array::<A, _>::uninit(shape);
    let slots = out
        .as_slice_memory_order_mut()
        .expect("a new array is contiguous");
    fill_over_cores(slots, ALONE_SPLIT_ELEMENTS, |_, part| write_zeros(part));
    // SAFETY: every part was filled.
    unsafe { out.assume_init() }
}

/// [`owned`] for kernels that write every element before reading any, such
/// as a product with `beta = 0` ([`gemm_raw`](super::gemm::gemm_raw)): the
/// new array is handed over as a raw view of uninitialized memory instead
/// of being zero-filled first. A tape allocates every op's output afresh,
/// and filling them with zeros was 5 % of a small residual MLP's step.
///
/// # Safety
/// `write` writes every element of the view (in its layout, standard
/// unless `shape` asks otherwise) before reading it.
pub unsafe fn owned_written<A, Sh: ShapeBuilder>(
    shape: Sh,
    write: impl FnOnce(RawArrayViewMut<A, Sh::Dim>),
) -> Array<A, Sh::Dim> {
    let mut out = Array::<A, _>::uninit(shape);
    write(out.raw_view_mut().cast::<A>());
    // SAFETY: the caller's `write` initialized every element.
    unsafe { out.assume_init() }
}

/// A new array of `shape` (standard layout) whose elements `fill(range,
/// out)` writes, range by range of the flat order, the ranges split over
/// the cores from `split_from` elements: the allocating form of an
/// element-wise loop, whose values do not depend on the split. (`fill`
/// runs its loop in [`super::simd::widest`] itself: a closure called from
/// inside `widest`'s function was not inlined there, and stayed in the
/// baseline's vectors.)
///
/// # Safety
/// `fill` writes every element of the `out` it is given.
#[inline(always)]
pub(crate) unsafe fn filled<T: Send>(
    shape: IxDyn,
    split_from: usize,
    fill: impl Fn(Range<usize>, &mut [MaybeUninit<T>]) + Sync,
) -> ArrayD<T> {
    let mut out = ArrayD::uninit(shape);
    fill_over_cores(
        out.as_slice_mut().expect("a new array is one slice"),
        split_from,
        fill,
    );
    // SAFETY: the ranges cover every element, and `fill` wrote each of its
    // own (the caller's promise).
    unsafe { out.assume_init() }
}

/// `s` as slots to write: the same memory.
///
/// # Safety
/// Only whole values of `T` are written through the result, so `s` stays
/// initialized.
pub(crate) unsafe fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout; the caller writes only
    // values of `T`.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// The output of a kernel whose parts write disjoint ranges of it: an
/// initialized array's memory, or a fresh array's, not yet written, that
/// each part zero-fills range by range just before writing there (in the
/// core's cache, where filling the whole array first went through memory).
pub(crate) struct Output<T> {
    slots: Shared<MaybeUninit<T>>,
    len: usize,
    fresh: bool,
}

impl<T: Zero> Output<T> {
    /// The memory of an initialized array.
    pub(crate) fn initialized(values: &mut [T]) -> Self {
        Output {
            len: values.len(),
            // SAFETY: only values of `T` are written through it.
            slots: Shared::new(unsafe { as_uninit(values) }),
            fresh: false,
        }
    }

    /// The memory of a new array, to be initialized by the parts' slices.
    pub(crate) fn fresh(slots: &mut [MaybeUninit<T>]) -> Self {
        Output {
            len: slots.len(),
            slots: Shared::new(slots),
            fresh: true,
        }
    }

    /// How many elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements `range`, zero-filled first in a fresh array.
    ///
    /// # Safety
    /// No other slice of these elements is in use, and in a fresh array
    /// each range is taken once (a second take would zero it again).
    #[allow(clippy::mut_from_ref)] // disjoint ranges, as `Shared::slice`
    pub(crate) unsafe fn slice(&self, range: Range<usize>) -> &mut [T] {
        // SAFETY: the caller's promise.
        let part = unsafe { self.slots.slice(range) };
        if self.fresh {
            write_zeros(part);
        }
        // SAFETY: initialized, by its array or just above.
        unsafe { &mut *(part as *mut [MaybeUninit<T>] as *mut [T]) }
    }
}

/// Writes zero into every slot.
#[inline(always)]
fn write_zeros<A: Zero>(slots: &mut [MaybeUninit<A>]) {
    for s in slots {
        s.write(A::zero());
    }
}

/// Runs `fill(range, &mut slots[range])` over ranges covering `slots`,
/// split over the cores from `split_from` elements.
#[inline(always)]
fn fill_over_cores<T: Send>(
    slots: &mut [MaybeUninit<T>],
    split_from: usize,
    fill: impl Fn(Range<usize>, &mut [MaybeUninit<T>]) + Sync,
) {
    let len = slots.len();
    if len < split_from {
        fill(0..len, slots);
    } else {
        let os = Shared::new(slots);
        // `split_from` has decided: hand `for_each_range` work enough.
        for_each_range(len, len.max(crate::parallel::PARALLEL_ELEMENTS), &|r| {
            // SAFETY: the parts' ranges are disjoint.
            let os = unsafe { os.slice(r.clone()) };
            fill(r, os)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_zero_at_every_size_and_layout() {
        // Empty, and around the size from which the fill splits over the cores.
        for len in [
            0,
            7,
            ALONE_SPLIT_ELEMENTS - 1,
            ALONE_SPLIT_ELEMENTS,
            ALONE_SPLIT_ELEMENTS + 13,
        ] {
            let z: ndarray::Array1<f32> = zeros(len);
            assert_eq!(z.len(), len);
            assert!(z.iter().all(|&v| v.to_bits() == 0), "length {len}");
        }
        // The split covers every slot of memory that held NaN.
        let mut slots = vec![MaybeUninit::new(f32::NAN); ALONE_SPLIT_ELEMENTS + 13];
        fill_over_cores(&mut slots, ALONE_SPLIT_ELEMENTS, |_, part| {
            write_zeros(part)
        });
        // SAFETY: every slot held a value before and after.
        assert!(slots
            .iter()
            .all(|v| unsafe { v.assume_init() }.to_bits() == 0));
        // A column-major shape past the split, in f64.
        let rows = ALONE_SPLIT_ELEMENTS / 4 + 3;
        let z: ndarray::Array2<f64> = zeros((rows, 4).f());
        assert_eq!(z.dim(), (rows, 4));
        assert!(!z.is_standard_layout());
        assert!(z.iter().all(|&v| v.to_bits() == 0));
    }
}
