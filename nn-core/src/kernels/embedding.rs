//! Embedding lookup: rows of a table picked by integer indices, forward
//! beside backward.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use crate::Float;

/// `out[i…, :] = table[index[i…], :]`; the output has shape `index.shape + [dim]`.
pub fn embedding<T: Float>(table: ArrayViewD<'_, T>, index: ArrayViewD<'_, usize>) -> ArrayD<T> {
    assert!(
        table.ndim() == 2,
        "embedding: table must be [vocabulary, dim], got {:?}",
        table.shape()
    );
    let (vocab, dim) = (table.shape()[0], table.shape()[1]);
    if let Some(&bad) = index.iter().find(|&&i| i >= vocab) {
        panic!("embedding: index {bad} is out of range for a vocabulary of {vocab}");
    }
    let flat: Vec<usize> = index.iter().copied().collect();
    let rows = table.select(Axis(0), &flat);
    let mut shape = index.shape().to_vec();
    shape.push(dim);
    rows.into_shape_with_order(IxDyn(&shape))
        .expect("sizes match")
}

/// Gradient of [`embedding`] for the table: each output row's gradient added
/// to the row it came from (indices may repeat).
pub fn embedding_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    index: ArrayViewD<'_, usize>,
    table_shape: &[usize],
) -> ArrayD<T> {
    let dim = table_shape[1];
    let mut dt = ArrayD::zeros(IxDyn(table_shape));
    let g = dy.as_standard_layout();
    let g = g.as_slice().expect("standard layout");
    for (k, &i) in index.iter().enumerate() {
        let mut row = dt.index_axis_mut(Axis(0), i);
        for (d, &v) in row.iter_mut().zip(&g[k * dim..(k + 1) * dim]) {
            *d += v;
        }
    }
    dt
}
