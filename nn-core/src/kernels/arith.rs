//! Broadcasting `+ - * /`, each forward beside the local gradients it returns.
//! Local gradients have the broadcast shape; the tape sums them back to each
//! operand's shape in one place ([`super::broadcast::sum_to_shape`]).

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::broadcast::broadcast_shape;
use crate::Float;

/// `a + b`, broadcasting.
pub fn add<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    if a.shape() == b.shape() {
        return Zip::from(&a).and(&b).map_collect(|&x, &y| x + y);
    }
    broadcast_shape("add", a.shape(), b.shape());
    &a + &b
}

/// `a - b`, broadcasting.
pub fn sub<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    if a.shape() == b.shape() {
        return Zip::from(&a).and(&b).map_collect(|&x, &y| x - y);
    }
    broadcast_shape("sub", a.shape(), b.shape());
    &a - &b
}

/// `a * b`, broadcasting.
pub fn mul<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    if a.shape() == b.shape() {
        return Zip::from(&a).and(&b).map_collect(|&x, &y| x * y);
    }
    broadcast_shape("mul", a.shape(), b.shape());
    &a * &b
}

/// `a / b`, broadcasting.
pub fn div<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    if a.shape() == b.shape() {
        return Zip::from(&a).and(&b).map_collect(|&x, &y| x / y);
    }
    broadcast_shape("div", a.shape(), b.shape());
    &a / &b
}

/// Local gradients of `a * b`: `(dy * b, dy * a)`.
pub fn mul_backward<T: Float>(
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 2],
) -> [Option<ArrayD<T>>; 2] {
    [need[0].then(|| &dy * &b), need[1].then(|| &dy * &a)]
}

/// Local gradients of `a / b`: `(dy / b, -dy * a / b²)`.
pub fn div_backward<T: Float>(
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    need: [bool; 2],
) -> [Option<ArrayD<T>>; 2] {
    [
        need[0].then(|| &dy / &b),
        need[1].then(|| {
            let mut g = &dy * &a;
            g = g / &b / &b;
            g.mapv_inplace(|v| -v);
            g
        }),
    ]
}
