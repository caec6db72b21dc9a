//! Ops that move elements without arithmetic: permute, concat, slice,
//! index_select, gather and where, each forward beside its backward.

use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, Dimension, IxDyn, Slice, Zip};

use super::broadcast::broadcast_shape;
use super::owned::owned;
use super::reduce::check_axis;
use crate::Float;

/// `x` with its axes reordered: output axis `i` is input axis `axes[i]`.
pub fn permute<T: Float>(x: ArrayViewD<'_, T>, axes: &[usize]) -> ArrayD<T> {
    let mut seen = vec![false; x.ndim()];
    let valid = axes.len() == x.ndim()
        && axes
            .iter()
            .all(|&a| a < x.ndim() && !std::mem::replace(&mut seen[a], true));
    assert!(
        valid,
        "permute: {axes:?} is not a permutation of the axes of shape {:?}",
        x.shape()
    );
    x.permuted_axes(IxDyn(axes))
        .as_standard_layout()
        .into_owned()
}

/// The permutation that undoes `axes`.
pub fn inverse_permutation(axes: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inv[a] = i;
    }
    inv
}

/// Joins arrays along `axis`; all other axes must agree.
pub fn concat<T: Float>(xs: &[ArrayViewD<'_, T>], axis: usize) -> ArrayD<T> {
    check_concat(xs, axis);
    let mut shape = xs[0].raw_dim();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    owned(shape, |out| concat_into(xs, axis, out))
}

/// [`concat()`] into `out`, which must have the joined shape.
pub fn concat_into<T: Float>(xs: &[ArrayViewD<'_, T>], axis: usize, mut out: ArrayViewMutD<'_, T>) {
    check_concat(xs, axis);
    let joined = xs.iter().map(|x| x.shape()[axis]).sum::<usize>();
    let fits = out.ndim() == xs[0].ndim()
        && (0..out.ndim())
            .all(|i| out.shape()[i] == if i == axis { joined } else { xs[0].shape()[i] });
    assert!(
        fits,
        "concat: output buffer of shape {:?} does not fit {} inputs joined along axis {axis} (the first {:?})",
        out.shape(),
        xs.len(),
        xs[0].shape()
    );
    let mut start = 0;
    for x in xs {
        let n = x.shape()[axis];
        out.slice_axis_mut(Axis(axis), Slice::from(start..start + n))
            .assign(x);
        start += n;
    }
}

/// Panics unless `xs` can be joined along `axis`.
fn check_concat<T: Float>(xs: &[ArrayViewD<'_, T>], axis: usize) {
    assert!(!xs.is_empty(), "concat: no inputs");
    let first = xs[0].shape();
    check_axis("concat", first, axis);
    for x in xs {
        let ok = x.ndim() == first.len()
            && x.shape()
                .iter()
                .zip(first)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        assert!(
            ok,
            "concat: shapes {first:?} and {:?} differ outside axis {axis}",
            x.shape()
        );
    }
}

/// Splits `dy` back into the pieces of a concat along `axis`.
pub fn concat_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    axis: usize,
    sizes: &[usize],
) -> Vec<ArrayD<T>> {
    let mut pieces: Vec<ArrayD<T>> = sizes
        .iter()
        .map(|&n| {
            let mut shape = dy.raw_dim();
            shape[axis] = n;
            super::owned::zeros(shape)
        })
        .collect();
    concat_backward_into(dy, axis, pieces.iter_mut().map(|p| p.view_mut()));
    pieces
}

/// [`concat_backward`] into buffers, one per input of the concat in order;
/// each buffer's length along `axis` is its input's.
pub fn concat_backward_into<'a, T: Float + 'a>(
    dy: ArrayViewD<'_, T>,
    axis: usize,
    dxs: impl IntoIterator<Item = ArrayViewMutD<'a, T>>,
) {
    check_axis("concat", dy.shape(), axis);
    let mut start = 0;
    for mut dx in dxs {
        let n = dx.shape().get(axis).copied().unwrap_or(0);
        let fits = dx.ndim() == dy.ndim()
            && start + n <= dy.shape()[axis]
            && (0..dx.ndim()).all(|i| i == axis || dx.shape()[i] == dy.shape()[i]);
        assert!(
            fits,
            "concat: gradient buffer of shape {:?} at offset {start} does not fit the output gradient {:?} along axis {axis}",
            dx.shape(),
            dy.shape()
        );
        dx.assign(&dy.slice_axis(Axis(axis), Slice::from(start..start + n)));
        start += n;
    }
    assert!(
        start == dy.shape()[axis],
        "concat: gradient buffers cover {start} of the {} entries along axis {axis} of {:?}",
        dy.shape()[axis],
        dy.shape()
    );
}

/// `x[.., range, ..]` along `axis`.
pub fn slice<T: Float>(x: ArrayViewD<'_, T>, axis: usize, range: Range<usize>) -> ArrayD<T> {
    check_axis("slice", x.shape(), axis);
    assert!(
        range.start <= range.end && range.end <= x.shape()[axis],
        "slice: range {range:?} is out of bounds for axis {axis} of shape {:?}",
        x.shape()
    );
    x.slice_axis(Axis(axis), Slice::from(range)).to_owned()
}

/// Gradient of [`slice()`]: `dy` written into zeros of the input's shape.
pub fn slice_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axis: usize,
    range: Range<usize>,
) -> ArrayD<T> {
    let mut dx = super::owned::zeros(IxDyn(input_shape));
    dx.slice_axis_mut(Axis(axis), Slice::from(range))
        .assign(&dy);
    dx
}

/// The sub-arrays at `indices` along `axis` (`torch.index_select`); indices may repeat.
pub fn index_select<T: Float>(x: ArrayViewD<'_, T>, axis: usize, indices: &[usize]) -> ArrayD<T> {
    check_axis("index_select", x.shape(), axis);
    let n = x.shape()[axis];
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        panic!(
            "index_select: index {bad} is out of range for axis {axis} of shape {:?}",
            x.shape()
        );
    }
    x.select(Axis(axis), indices)
}

/// Gradient of [`index_select`]: each slice of `dy` added to the row it came from.
pub fn index_select_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axis: usize,
    indices: &[usize],
) -> ArrayD<T> {
    let mut dx = super::owned::zeros(IxDyn(input_shape));
    for (j, &i) in indices.iter().enumerate() {
        let mut row = dx.index_axis_mut(Axis(axis), i);
        row += &dy.index_axis(Axis(axis), j);
    }
    dx
}

fn check_gather(op: &str, shape: &[usize], axis: usize, index: &ArrayViewD<'_, usize>) {
    check_axis(op, shape, axis);
    let ok = index.ndim() == shape.len()
        && index
            .shape()
            .iter()
            .zip(shape)
            .enumerate()
            .all(|(d, (i, s))| d == axis || i <= s);
    assert!(
        ok,
        "{op}: index of shape {:?} does not fit input of shape {shape:?} along axis {axis}",
        index.shape()
    );
    if let Some(&bad) = index.iter().find(|&&i| i >= shape[axis]) {
        panic!("{op}: index {bad} is out of range for axis {axis} of shape {shape:?}");
    }
}

/// `out[p] = x[p with p[axis] replaced by index[p]]` (`torch.gather`); the output
/// has the index's shape.
pub fn gather<T: Float>(
    x: ArrayViewD<'_, T>,
    axis: usize,
    index: ArrayViewD<'_, usize>,
) -> ArrayD<T> {
    check_gather("gather", x.shape(), axis, &index);
    let mut out = super::owned::zeros(index.raw_dim());
    let mut src = vec![0; x.ndim()];
    for (pos, &i) in index.indexed_iter() {
        src.copy_from_slice(pos.slice());
        src[axis] = i;
        out[pos] = x[src.as_slice()];
    }
    out
}

/// Gradient of [`gather`]: `dy` scattered (added) back to where each element came from.
pub fn gather_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axis: usize,
    index: ArrayViewD<'_, usize>,
) -> ArrayD<T> {
    let mut dx = super::owned::zeros(IxDyn(input_shape));
    let mut dst = vec![0; input_shape.len()];
    for (pos, &i) in index.indexed_iter() {
        dst.copy_from_slice(pos.slice());
        dst[axis] = i;
        dx[dst.as_slice()] += dy[pos];
    }
    dx
}

/// `mask ? a : b` element by element, all three broadcasting together.
pub fn where_<T: Float>(
    mask: ArrayViewD<'_, bool>,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
) -> ArrayD<T> {
    let ab = broadcast_shape("where", a.shape(), b.shape());
    let shape = broadcast_shape("where", mask.shape(), &ab);
    let sh = IxDyn(&shape);
    let mut out = super::owned::zeros(sh.clone());
    Zip::from(&mut out)
        .and(mask.broadcast(sh.clone()).expect("checked"))
        .and(a.broadcast(sh.clone()).expect("checked"))
        .and(b.broadcast(sh).expect("checked"))
        .for_each(|o, &m, &x, &y| *o = if m { x } else { y });
    out
}

/// Local gradients of [`where_`] (broadcast shape): `dy` where the mask picks
/// that operand, zero elsewhere.
pub fn where_backward<T: Float>(
    mask: ArrayViewD<'_, bool>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 2],
) -> [Option<ArrayD<T>>; 2] {
    let m = mask
        .broadcast(dy.raw_dim())
        .expect("mask broadcasts to the output");
    let pick = |want: bool| {
        let mut g = dy.to_owned();
        Zip::from(&mut g).and(&m).for_each(|g, &k| {
            if k != want {
                *g = T::zero();
            }
        });
        g
    };
    [need[0].then(|| pick(true)), need[1].then(|| pick(false))]
}
