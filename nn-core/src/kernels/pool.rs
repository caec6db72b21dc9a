//! Max and average pooling over NCHW windows, and global average pooling,
//! each forward beside backward.

use ndarray::{Array4, ArrayD, ArrayViewD, Axis, Ix4};

use super::conv::Window2d;
use crate::Float;

fn nchw<T: Float>(op: &str, x: &ArrayViewD<'_, T>) -> [usize; 4] {
    match x.shape() {
        &[n, c, h, w] => [n, c, h, w],
        s => panic!("{op}: expected an NCHW input [batch, channels, height, width], got {s:?}"),
    }
}

fn out_size(op: &str, x: [usize; 4], window: &Window2d) -> (usize, usize) {
    window.output_size((x[2], x[3])).unwrap_or_else(|| {
        panic!(
            "{op}: window {:?} does not fit input {x:?} with padding {:?}",
            window.kernel, window.padding
        )
    })
}

/// Max pooling (padding counts as -∞), with the flat `h·w` index of each
/// window's first maximum for backward.
pub fn max_pool2d<T: Float>(x: ArrayViewD<'_, T>, window: &Window2d) -> (ArrayD<T>, ArrayD<usize>) {
    let s = nchw("max_pool2d", &x);
    let (oh, ow) = out_size("max_pool2d", s, window);
    let x = x.into_dimensionality::<Ix4>().expect("4-D");
    let mut y = Array4::from_elem((s[0], s[1], oh, ow), T::neg_infinity());
    let mut idx = Array4::zeros((s[0], s[1], oh, ow));
    for n in 0..s[0] {
        for c in 0..s[1] {
            let plane = x.index_axis(Axis(0), n);
            let plane = plane.index_axis(Axis(0), c);
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut at) = (T::neg_infinity(), usize::MAX);
                    for ky in 0..window.kernel.0 {
                        for kx in 0..window.kernel.1 {
                            if let Some((r, col)) =
                                window_source(window, (oy, ox), (ky, kx), (s[2], s[3]))
                            {
                                let v = plane[[r, col]];
                                if v > best || at == usize::MAX || v.is_nan() {
                                    best = v;
                                    at = r * s[3] + col;
                                }
                            }
                        }
                    }
                    y[[n, c, oy, ox]] = best;
                    idx[[n, c, oy, ox]] = at;
                }
            }
        }
    }
    (y.into_dyn(), idx.into_dyn())
}

/// Gradient of [`max_pool2d`]: each output's gradient goes to its maximum.
pub fn max_pool2d_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    idx: ArrayViewD<'_, usize>,
    x_shape: &[usize],
) -> ArrayD<T> {
    let w = x_shape[3];
    let mut dx = Array4::zeros((x_shape[0], x_shape[1], x_shape[2], x_shape[3]));
    for ((pos, &g), &i) in dy.indexed_iter().zip(idx.iter()) {
        if i != usize::MAX {
            dx[[pos[0], pos[1], i / w, i % w]] += g;
        }
    }
    dx.into_dyn()
}

/// Average pooling; the divisor is the full window, padding included
/// (PyTorch's default `count_include_pad=True`).
pub fn avg_pool2d<T: Float>(x: ArrayViewD<'_, T>, window: &Window2d) -> ArrayD<T> {
    let s = nchw("avg_pool2d", &x);
    let (oh, ow) = out_size("avg_pool2d", s, window);
    let x = x.into_dimensionality::<Ix4>().expect("4-D");
    let area = T::lit((window.kernel.0 * window.kernel.1) as f64);
    let mut y = Array4::zeros((s[0], s[1], oh, ow));
    for n in 0..s[0] {
        for c in 0..s[1] {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut sum = T::zero();
                    for ky in 0..window.kernel.0 {
                        for kx in 0..window.kernel.1 {
                            if let Some((r, col)) =
                                window_source(window, (oy, ox), (ky, kx), (s[2], s[3]))
                            {
                                sum += x[[n, c, r, col]];
                            }
                        }
                    }
                    y[[n, c, oy, ox]] = sum / area;
                }
            }
        }
    }
    y.into_dyn()
}

/// Gradient of [`avg_pool2d`]: each output's gradient shared over its window.
pub fn avg_pool2d_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    x_shape: &[usize],
    window: &Window2d,
) -> ArrayD<T> {
    let area = T::lit((window.kernel.0 * window.kernel.1) as f64);
    let mut dx = Array4::zeros((x_shape[0], x_shape[1], x_shape[2], x_shape[3]));
    for (pos, &g) in dy.indexed_iter() {
        for ky in 0..window.kernel.0 {
            for kx in 0..window.kernel.1 {
                if let Some((r, col)) =
                    window_source(window, (pos[2], pos[3]), (ky, kx), (x_shape[2], x_shape[3]))
                {
                    dx[[pos[0], pos[1], r, col]] += g / area;
                }
            }
        }
    }
    dx.into_dyn()
}

/// Mean over height and width: `[n, c, h, w]` → `[n, c]`.
pub fn global_avg_pool<T: Float>(x: ArrayViewD<'_, T>) -> ArrayD<T> {
    let s = nchw("global_avg_pool", &x);
    let area = T::lit((s[2] * s[3]) as f64);
    x.sum_axis(Axis(3)).sum_axis(Axis(2)).mapv(|v| v / area)
}

/// Gradient of [`global_avg_pool`].
pub fn global_avg_pool_backward<T: Float>(dy: ArrayViewD<'_, T>, x_shape: &[usize]) -> ArrayD<T> {
    let area = T::lit((x_shape[2] * x_shape[3]) as f64);
    let g = dy
        .mapv(|v| v / area)
        .insert_axis(Axis(2))
        .insert_axis(Axis(3));
    g.broadcast(ndarray::IxDyn(x_shape))
        .expect("broadcasts over h, w")
        .to_owned()
}

fn window_source(
    w: &Window2d,
    o: (usize, usize),
    k: (usize, usize),
    hw: (usize, usize),
) -> Option<(usize, usize)> {
    let r = (o.0 * w.stride.0 + k.0 * w.dilation.0).checked_sub(w.padding.top)?;
    let c = (o.1 * w.stride.1 + k.1 * w.dilation.1).checked_sub(w.padding.left)?;
    (r < hw.0 && c < hw.1).then_some((r, c))
}
