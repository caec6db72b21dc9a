//! Views that split a projection into heads, and merge them back, without
//! copying: a `[B·T, parts·E]` buffer seen as `parts` strided `[B, h, T, d]`
//! arrays.

use ndarray::{ArrayD, ArrayView4, ArrayViewD, ArrayViewMut4, ArrayViewMutD, Axis, Ix4};
use smallvec::SmallVec;

use crate::Float;

/// The `[B, h, T, E/h]` head views of each of the `parts` column blocks of a
/// contiguous projection `x` (`[B·T, parts·E]` or `[B, T, parts·E]`): the
/// split of `x.view(B, T, parts, h, E/h).permute(2, 0, 3, 1, 4)`, as views.
///
/// # Panics
/// If `x` is not contiguous or its width is not `parts · heads · d`.
pub fn split_heads<'a, T: Float>(
    x: ArrayViewD<'a, T>,
    batch: usize,
    heads: usize,
    parts: usize,
) -> SmallVec<[ArrayView4<'a, T>; 3]> {
    let (t, d) = head_dims(x.shape(), batch, heads, parts);
    let five = x
        .into_shape_with_order((batch, t, parts, heads, d))
        .expect("split_heads: a contiguous [B·T, parts·E] projection");
    (0..parts)
        .map(|i| five.index_axis_move(Axis(2), i).permuted_axes([0, 2, 1, 3]))
        .collect()
}

/// [`split_heads`] of a buffer to write: disjoint mutable views of each part.
pub fn split_heads_mut<'a, T: Float>(
    x: ArrayViewMutD<'a, T>,
    batch: usize,
    heads: usize,
    parts: usize,
) -> SmallVec<[ArrayViewMut4<'a, T>; 3]> {
    let (t, d) = head_dims(x.shape(), batch, heads, parts);
    let mut rest = x
        .into_shape_with_order((batch, t, parts, heads, d))
        .expect("split_heads: a contiguous [B·T, parts·E] projection");
    let mut out = SmallVec::new();
    for _ in 0..parts {
        let (first, tail) = rest.split_at(Axis(2), 1);
        out.push(
            first
                .index_axis_move(Axis(2), 0)
                .permuted_axes([0, 2, 1, 3]),
        );
        rest = tail;
    }
    out
}

/// `(T, d)` of a `[B·T, parts·h·d]` (or `[B, T, parts·h·d]`) projection.
fn head_dims(shape: &[usize], batch: usize, heads: usize, parts: usize) -> (usize, usize) {
    let width = *shape.last().unwrap_or(&0);
    let rows: usize = shape[..shape.len().saturating_sub(1)].iter().product();
    assert!(
        batch > 0 && heads > 0 && parts > 0 && rows.is_multiple_of(batch)
            && width.is_multiple_of(parts * heads),
        "split_heads: a projection of shape {shape:?} is not {batch} sequences of {parts} parts of {heads} heads"
    );
    (rows / batch, width / (parts * heads))
}

/// A 4-D array's view as `ArrayView4`.
///
/// # Panics
/// If `a` is not 4-D, naming `what`.
pub fn four<'a, T>(a: &'a ArrayD<T>, what: &str) -> ArrayView4<'a, T> {
    a.view()
        .into_dimensionality::<Ix4>()
        .unwrap_or_else(|_| panic!("{what}: expected a 4-D array, got {:?}", a.shape()))
}

/// A 4-D array's mutable view as `ArrayViewMut4`.
pub(super) fn four_mut<T>(a: &mut ArrayD<T>) -> ArrayViewMut4<'_, T> {
    a.view_mut().into_dimensionality::<Ix4>().expect("4-D")
}
