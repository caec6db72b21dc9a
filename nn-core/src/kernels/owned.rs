//! [`owned`]: the allocating form of any `_into` kernel, in one line.

use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{Array, ArrayD, ArrayViewMut, IxDyn, RawArrayViewMut, ShapeBuilder};
use num_traits::Zero;

use crate::parallel::{for_each_range, Shared};

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
pub fn owned<A: Clone + Zero, Sh: ShapeBuilder>(
    shape: Sh,
    fill: impl FnOnce(ArrayViewMut<'_, A, Sh::Dim>),
) -> Array<A, Sh::Dim> {
    let mut out = Array::zeros(shape);
    fill(out.view_mut());
    out
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
    let slots = out.as_slice_mut().expect("a new array is one slice");
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
    // SAFETY: the ranges cover every element, and `fill` wrote each of its
    // own (the caller's promise).
    unsafe { out.assume_init() }
}
