//! Embedding lookup: rows of a table picked by integer indices, forward
//! beside backward.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn};

use super::owned::owned;
use crate::Float;

/// The output shape of [`embedding`]: `index`'s shape, then the table's row length.
pub fn embedding_shape(table: &[usize], index: &[usize]) -> smallvec::SmallVec<[usize; 6]> {
    assert!(
        table.len() == 2,
        "embedding: table must be [vocabulary, dim], got {table:?}"
    );
    let mut shape: smallvec::SmallVec<[usize; 6]> = index.into();
    shape.push(table[1]);
    shape
}

/// `out[i…, :] = table[index[i…], :]`; the output has shape `index.shape + [dim]`.
pub fn embedding<T: Float>(table: ArrayViewD<'_, T>, index: ArrayViewD<'_, usize>) -> ArrayD<T> {
    let shape = embedding_shape(table.shape(), index.shape());
    owned(&shape[..], |out| embedding_into(table, index, out))
}

/// [`embedding`] into a preallocated `out` of shape `index.shape + [dim]`.
pub fn embedding_into<T: Float>(
    table: ArrayViewD<'_, T>,
    index: ArrayViewD<'_, usize>,
    mut out: ArrayViewMutD<'_, T>,
) {
    let shape = embedding_shape(table.shape(), index.shape());
    assert!(
        out.shape() == &shape[..],
        "embedding: output buffer {:?}, the output is {shape:?}",
        out.shape()
    );
    let vocab = table.shape()[0];
    if let Some(&bad) = index.iter().find(|&&i| i >= vocab) {
        panic!("embedding: index {bad} is out of range for a vocabulary of {vocab}");
    }
    let rows = out.lanes_mut(Axis(index.ndim()));
    for (mut row, &i) in rows.into_iter().zip(index.iter()) {
        row.assign(&table.index_axis(Axis(0), i));
    }
}

/// Gradient of [`embedding`] for the table: each output row's gradient added
/// to the row it came from (indices may repeat), except rows looked up at
/// `padding` (PyTorch's `padding_idx`), which get none.
pub fn embedding_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    index: ArrayViewD<'_, usize>,
    table_shape: &[usize],
    padding: Option<usize>,
) -> ArrayD<T> {
    owned(IxDyn(table_shape), |dt| {
        embedding_backward_into(dy, index, dt, padding)
    })
}

/// [`embedding_backward`] added into `dt` (the table's gradient accumulates).
pub fn embedding_backward_into<T: Float>(
    dy: ArrayViewD<'_, T>,
    index: ArrayViewD<'_, usize>,
    mut dt: ArrayViewMutD<'_, T>,
    padding: Option<usize>,
) {
    let dim = dt.shape()[1];
    let g = dy.as_standard_layout();
    let g = g.as_slice().expect("standard layout");
    for (k, &i) in index.iter().enumerate() {
        if Some(i) == padding {
            continue;
        }
        let mut row = dt.index_axis_mut(Axis(0), i);
        for (d, &v) in row.iter_mut().zip(&g[k * dim..(k + 1) * dim]) {
            *d += v;
        }
    }
}
