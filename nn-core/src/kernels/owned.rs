//! [`owned`]: the allocating form of any `_into` kernel, in one line.

use ndarray::{Array, ArrayViewMut, ShapeBuilder};
use num_traits::Zero;

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
