//! NumPy broadcasting: the shape two operands broadcast to, and the reverse
//! step that sums a gradient back to an operand's shape.

use ndarray::{ArrayD, Axis, IxDyn};

use crate::Float;

/// The shape `a` and `b` broadcast to under NumPy's rules (align trailing axes;
/// each pair of sizes is equal or one of them is 1).
///
/// # Panics
/// If the shapes are incompatible, with a message naming `op` and both shapes.
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => panic!("{op}: cannot broadcast shapes {a:?} and {b:?}"),
        };
    }
    out
}

fn dim_from_right(shape: &[usize], k: usize) -> usize {
    if k < shape.len() {
        shape[shape.len() - 1 - k]
    } else {
        1
    }
}

/// Sums `grad` (of a broadcast result's shape) back to `shape`, the shape of the
/// operand that was broadcast. Returns `grad` untouched when the shapes agree.
pub fn sum_to_shape<T: Float>(grad: ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    if grad.shape() == shape || !sums_to(grad.shape(), shape) {
        // Equal: nothing to do. Incompatible: the caller reports the mismatch.
        return grad;
    }
    let extra = grad.ndim() - shape.len();
    let mut g = grad;
    // Leading axes the operand never had.
    for _ in 0..extra {
        g = g.sum_axis(Axis(0));
    }
    // Axes where the operand had size 1.
    for (axis, &size) in shape.iter().enumerate() {
        if size == 1 && g.shape()[axis] != 1 {
            g = g.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    g.into_shape_with_order(IxDyn(shape))
        .expect("sum_to_shape: size preserved")
}

/// Whether an array of shape `from` can be summed down to `to`.
fn sums_to(from: &[usize], to: &[usize]) -> bool {
    from.len() >= to.len()
        && from[from.len() - to.len()..]
            .iter()
            .zip(to)
            .all(|(&f, &t)| f == t || t == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn shapes_broadcast_like_numpy() {
        assert_eq!(broadcast_shape("add", &[5, 4], &[1, 4]), vec![5, 4]);
        assert_eq!(broadcast_shape("add", &[3, 1, 2], &[4, 1]), vec![3, 4, 2]);
        assert_eq!(broadcast_shape("add", &[], &[2, 3]), vec![2, 3]);
    }

    #[test]
    #[should_panic(expected = "add: cannot broadcast shapes [2, 3] and [4, 3]")]
    fn incompatible_shapes_name_the_op() {
        broadcast_shape("add", &[2, 3], &[4, 3]);
    }

    #[test]
    fn sums_back_over_broadcast_axes() {
        let g = ArrayD::<f64>::ones(IxDyn(&[3, 4, 2]));
        let s = sum_to_shape(g, &[4, 1]);
        assert_eq!(s.shape(), &[4, 1]);
        // each element of a [4,1] operand was used 3 * 2 times
        assert!(s.iter().all(|&v| v == 6.0));
    }
}
