//! Max and average pooling over NCHW windows, and global average pooling,
//! each forward beside backward.

use ndarray::{Array4, ArrayD, ArrayViewD, Axis, Ix4};

use super::conv::{Padding2d, Window2d};
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
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let (h, w) = (s[2], s[3]);
    let mut y = vec![T::neg_infinity(); s[0] * s[1] * oh * ow];
    let mut idx = vec![usize::MAX; y.len()];
    let simple = window.padding == Padding2d::default() && window.dilation == (1, 1);
    for (p, (yp, ip)) in y
        .chunks_mut(oh * ow)
        .zip(idx.chunks_mut(oh * ow))
        .enumerate()
    {
        let plane = &xs[p * h * w..(p + 1) * h * w];
        if simple {
            // No padding: every tap is inside the plane, no bounds to check.
            let (sy, sx) = window.stride;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut at = oy * sy * w + ox * sx;
                    let mut best = plane[at];
                    for ky in 0..window.kernel.0 {
                        let base = (oy * sy + ky) * w + ox * sx;
                        for (kx, &v) in plane[base..base + window.kernel.1].iter().enumerate() {
                            if v > best || v.is_nan() {
                                best = v;
                                at = base + kx;
                            }
                        }
                    }
                    yp[oy * ow + ox] = best;
                    ip[oy * ow + ox] = at;
                }
            }
            continue;
        }
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut best, mut at) = (T::neg_infinity(), usize::MAX);
                for ky in 0..window.kernel.0 {
                    let Some(r) = (oy * window.stride.0 + ky * window.dilation.0)
                        .checked_sub(window.padding.top)
                        .filter(|&r| r < h)
                    else {
                        continue;
                    };
                    for kx in 0..window.kernel.1 {
                        let Some(c) = (ox * window.stride.1 + kx * window.dilation.1)
                            .checked_sub(window.padding.left)
                            .filter(|&c| c < w)
                        else {
                            continue;
                        };
                        let v = plane[r * w + c];
                        if v > best || at == usize::MAX || v.is_nan() {
                            best = v;
                            at = r * w + c;
                        }
                    }
                }
                yp[oy * ow + ox] = best;
                ip[oy * ow + ox] = at;
            }
        }
    }
    let shape = [s[0], s[1], oh, ow];
    (
        ArrayD::from_shape_vec(ndarray::IxDyn(&shape), y).expect("sizes match"),
        ArrayD::from_shape_vec(ndarray::IxDyn(&shape), idx).expect("sizes match"),
    )
}

/// Gradient of [`max_pool2d`]: each output's gradient goes to its maximum.
pub fn max_pool2d_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    idx: ArrayViewD<'_, usize>,
    x_shape: &[usize],
) -> ArrayD<T> {
    let plane_in = x_shape[2] * x_shape[3];
    let plane_out = dy.shape()[2] * dy.shape()[3];
    let mut dx = vec![T::zero(); x_shape.iter().product()];
    let (dy, idx) = (dy.as_standard_layout(), idx.as_standard_layout());
    let (gs, is) = (
        dy.as_slice().expect("standard"),
        idx.as_slice().expect("standard"),
    );
    for (p, plane) in dx.chunks_mut(plane_in).enumerate() {
        for k in p * plane_out..(p + 1) * plane_out {
            if is[k] != usize::MAX {
                plane[is[k]] += gs[k];
            }
        }
    }
    ArrayD::from_shape_vec(ndarray::IxDyn(x_shape), dx).expect("sizes match")
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn max_pool_on_many_planes_matches_the_definition() {
        // 1,024 planes, checked against the definition at a few windows.
        let x = Array4::from_shape_fn((128, 8, 32, 32), |(n, c, h, w)| {
            ((n * 31 + c * 17 + h * 7 + w * 3) % 101) as f32
        });
        let window = Window2d::new((2, 2));
        let window = Window2d {
            stride: (2, 2),
            ..window
        };
        let (y, idx) = max_pool2d(x.view().into_dyn(), &window);
        for &(n, c, oy, ox) in &[(0, 0, 0, 0), (127, 7, 15, 15), (63, 3, 8, 2)] {
            let window_max = (0..2)
                .flat_map(|ky| (0..2).map(move |kx| (ky, kx)))
                .map(|(ky, kx)| x[[n, c, 2 * oy + ky, 2 * ox + kx]])
                .fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(y[[n, c, oy, ox]], window_max);
            let i = idx[[n, c, oy, ox]];
            assert_eq!(x[[n, c, i / 32, i % 32]], window_max);
        }
    }
}
