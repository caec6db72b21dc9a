//! The gated linear unit along one axis: the input splits into halves `a, b`
//! and the output is `a * sigmoid(b)`, so that axis is halved.

use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Zip};

use super::activation::sigmoid;
use crate::activation::Shape;
use crate::Float;

/// The output shape: `input` with `axis` (negative counts from the end) halved.
pub fn output_shape(input: &[usize], axis: isize) -> Result<Shape, String> {
    let a = nn_spec::halved_axis(input, axis)?;
    let mut out: Shape = input.into();
    out[a] /= 2;
    Ok(out)
}

/// `out = a * sigmoid(b)` with `a, b` the halves of `x` along `axis`.
pub fn glu_into<T: Float>(x: ArrayViewD<'_, T>, axis: Axis, out: ArrayViewMutD<'_, T>) {
    let half = x.len_of(axis) / 2;
    check("glu", x.shape(), out.shape(), axis);
    let (a, b) = x.split_at(axis, half);
    Zip::from(out)
        .and(&a)
        .and(&b)
        .for_each(|o, &av, &bv| *o = av * sigmoid(bv));
}

/// Backward: `da = dy * sigmoid(b)`, `db = dy * a * s (1 - s)`, into `dx`
/// shaped like `x`.
pub fn glu_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    axis: Axis,
    dx: ArrayViewMutD<'_, T>,
) {
    let half = x.len_of(axis) / 2;
    check("glu backward", x.shape(), dy.shape(), axis);
    assert!(
        dx.shape() == x.shape(),
        "glu backward: gradient buffer of shape {:?} does not match input shape {:?}",
        dx.shape(),
        x.shape()
    );
    let (a, b) = x.split_at(axis, half);
    let (da, db) = dx.split_at(axis, half);
    Zip::from(da)
        .and(db)
        .and(&a)
        .and(&b)
        .and(&dy)
        .for_each(|da, db, &av, &bv, &g| {
            let s = sigmoid(bv);
            *da = g * s;
            *db = g * av * s * (T::one() - s);
        });
}

fn check(op: &str, x: &[usize], y: &[usize], axis: Axis) {
    let ok = x.len() == y.len()
        && x[axis.0].is_multiple_of(2)
        && x.iter()
            .zip(y)
            .enumerate()
            .all(|(i, (&a, &b))| if i == axis.0 { a == 2 * b } else { a == b });
    assert!(
        ok,
        "{op}: input shape {x:?} and halved shape {y:?} do not match along axis {}",
        axis.0
    );
}
