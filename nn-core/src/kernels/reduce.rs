//! Reductions (`sum`, `mean`, `max`, `min`), over all elements or one axis,
//! each forward beside its backward.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use crate::parallel::ALONE_SPLIT_ELEMENTS;
use crate::Float;

/// Checks `axis` against `x`'s rank, naming the op on failure.
pub fn check_axis(op: &str, shape: &[usize], axis: usize) -> Axis {
    assert!(
        axis < shape.len(),
        "{op}: axis {axis} is out of range for shape {shape:?}"
    );
    Axis(axis)
}

/// The shape of a reduction of `shape` along `axis`.
pub fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

/// Sum along `axis`.
pub fn sum_axis<T: Float>(x: ArrayViewD<'_, T>, axis: usize, keepdim: bool) -> ArrayD<T> {
    let ax = check_axis("sum", x.shape(), axis);
    let s = x.sum_axis(ax);
    if keepdim {
        s.insert_axis(ax)
    } else {
        s
    }
}

/// Mean along `axis`.
pub fn mean_axis<T: Float>(x: ArrayViewD<'_, T>, axis: usize, keepdim: bool) -> ArrayD<T> {
    let n = T::lit(x.shape()[check_axis("mean", x.shape(), axis).index()] as f64);
    sum_axis(x, axis, keepdim) / n
}

/// Gradient of a sum along `axis` (or of all elements when `axis` is `None`):
/// `dy` broadcast back over the reduced axis, times `scale` (1 for sum, 1/n for mean).
pub fn expand_grad<T: Float>(
    dy: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axis: Option<usize>,
    scale: T,
) -> ArrayD<T> {
    if let (None, 1, Some(&g)) = (axis, dy.len(), dy.first()) {
        // One value everywhere: written over the cores when large, where
        // the broadcast below runs element by element on one thread.
        let value = g * scale;
        // SAFETY: `fill` writes every slot it is given.
        return unsafe {
            super::owned::filled(IxDyn(input_shape), ALONE_SPLIT_ELEMENTS, |_, part| {
                for slot in part {
                    slot.write(value);
                }
            })
        };
    }
    let dy = match axis {
        Some(a) if dy.ndim() < input_shape.len() => dy.insert_axis(Axis(a)),
        _ => dy,
    };
    let b = dy
        .broadcast(IxDyn(input_shape))
        .expect("reduction gradient broadcasts to the input shape");
    b.mapv(|g| g * scale)
}

/// Which extreme a [`extreme_axis`] reduction looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extreme {
    /// The largest element.
    Max,
    /// The smallest element.
    Min,
}

impl Extreme {
    fn better<T: Float>(self, a: T, b: T) -> bool {
        match self {
            Extreme::Max => a > b,
            Extreme::Min => a < b,
        }
    }
}

/// Max or min along `axis`, with the index of the first extreme in each lane
/// (the gradient flows to that element only, as `torch.max(x, dim)`'s does).
pub fn extreme_axis<T: Float>(
    x: ArrayViewD<'_, T>,
    axis: usize,
    keepdim: bool,
    which: Extreme,
) -> (ArrayD<T>, ArrayD<usize>) {
    let op = if which == Extreme::Max { "max" } else { "min" };
    let ax = check_axis(op, x.shape(), axis);
    assert!(
        x.shape()[axis] > 0,
        "{op}: cannot reduce an empty axis of shape {:?}",
        x.shape()
    );
    let out_shape = reduced_shape(x.shape(), axis, false);
    let mut vals = super::owned::zeros(IxDyn(&out_shape));
    let mut idx = super::owned::zeros(IxDyn(&out_shape));
    Zip::from(x.lanes(ax))
        .and(&mut vals)
        .and(&mut idx)
        .for_each(|lane, v, i| {
            let (mut bi, mut bv) = (0, lane[0]);
            for (j, &e) in lane.iter().enumerate().skip(1) {
                if which.better(e, bv) || (e.is_nan() && !bv.is_nan()) {
                    bi = j;
                    bv = e;
                }
            }
            *v = bv;
            *i = bi;
        });
    if keepdim {
        (vals.insert_axis(ax), idx.insert_axis(ax))
    } else {
        (vals, idx)
    }
}

/// Gradient of [`extreme_axis`]: `dy` placed at each lane's recorded index.
pub fn extreme_axis_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    idx: ArrayViewD<'_, usize>,
    input_shape: &[usize],
    axis: usize,
) -> ArrayD<T> {
    let mut dx = super::owned::zeros(IxDyn(input_shape));
    let (dy, idx) = if dy.ndim() < input_shape.len() {
        (dy.insert_axis(Axis(axis)), idx.insert_axis(Axis(axis)))
    } else {
        (dy, idx)
    };
    Zip::from(dx.lanes_mut(Axis(axis)))
        .and(dy.lanes(Axis(axis)))
        .and(idx.lanes(Axis(axis)))
        .for_each(|mut d, g, i| d[i[0]] = g[0]);
    dx
}

/// Max or min over all elements.
pub fn extreme_all<T: Float>(x: ArrayViewD<'_, T>, which: Extreme) -> T {
    let op = if which == Extreme::Max { "max" } else { "min" };
    assert!(!x.is_empty(), "{op}: cannot reduce an empty array");
    x.iter()
        .copied()
        .fold(x.iter().copied().next().unwrap(), |b, e| {
            if which.better(e, b) || e.is_nan() {
                e
            } else {
                b
            }
        })
}

/// Gradient of [`extreme_all`]: `dy` shared evenly among the elements equal to the
/// extreme (as in PyTorch's full `max()`/`min()`).
pub fn extreme_all_backward<T: Float>(x: ArrayViewD<'_, T>, value: T, dy: T) -> ArrayD<T> {
    let ties = x.iter().filter(|&&e| e == value).count().max(1);
    let share = dy / T::lit(ties as f64);
    x.mapv(|e| if e == value { share } else { T::zero() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_sums_gradient_is_dy_times_the_scale_everywhere() {
        // d(scale · Σx)/dx = scale · dy for every element: empty, small, and
        // around the size from which the fill splits over the cores.
        for len in [0, 12, ALONE_SPLIT_ELEMENTS - 1, ALONE_SPLIT_ELEMENTS + 13] {
            let dy = ndarray::arr0(3.0f32).into_dyn();
            let scale = 1.0 / 7.0;
            let g = expand_grad(dy.view(), &[len], None, scale);
            assert_eq!(g.shape(), &[len]);
            assert!(g.iter().all(|&v| v == 3.0 * scale), "length {len}");
        }
        let dy = ndarray::arr0(-0.5f64).into_dyn();
        let g = expand_grad(dy.view(), &[2, 3, 4], None, 0.25);
        assert_eq!(g, ArrayD::from_elem(IxDyn(&[2, 3, 4]), -0.125));
        // Along an axis, each reduced lane gets its own dy.
        let dy = ndarray::arr1(&[1.0f64, 2.0]).into_dyn();
        let g = expand_grad(dy.view(), &[2, 3], Some(1), 1.0);
        assert_eq!(
            g,
            ndarray::arr2(&[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]).into_dyn()
        );
    }
}
