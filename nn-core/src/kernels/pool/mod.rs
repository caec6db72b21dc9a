//! Max and average pooling over NCHW windows, and global average pooling
//! (of images and of sequences), each forward beside backward.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use super::conv::{Padding2d, Window2d};
use super::lanes::lane_sum;
use super::owned::owned;
use crate::parallel::{for_each_range, Shared};
use crate::Float;

#[cfg(target_arch = "x86_64")]
mod two_by_two;

fn nchw<T: Float>(op: &str, x: &ArrayViewD<'_, T>) -> [usize; 4] {
    match x.shape() {
        &[n, c, h, w] => [n, c, h, w],
        s => panic!("{op}: expected an NCHW input [batch, channels, height, width], got {s:?}"),
    }
}

/// What is wrong with pooling the NCHW input of shape `x` over `window`,
/// if anything.
pub(crate) fn window_problem(op: &str, x: [usize; 4], window: &Window2d) -> Option<String> {
    let (k, s, p) = (window.kernel, window.stride, window.padding);
    if s.0 == 0 || s.1 == 0 {
        return Some(format!(
            "{op}: the stride {s:?} must be positive in both directions"
        ));
    }
    // PyTorch's rule, on the window's taps whatever the dilation: at most
    // half of them, or a window could lie in the padding alone.
    if 2 * p.top.max(p.bottom) > k.0 || 2 * p.left.max(p.right) > k.1 {
        return Some(format!(
            "{op}: padding {p:?} is more than half the window {k:?}"
        ));
    }
    window
        .output_size((x[2], x[3]))
        .is_none()
        .then(|| format!("{op}: window {k:?} does not fit input {x:?} with padding {p:?}"))
}

fn out_size(op: &str, x: [usize; 4], window: &Window2d) -> (usize, usize) {
    if let Some(problem) = window_problem(op, x, window) {
        panic!("{problem}");
    }
    window.output_size((x[2], x[3])).expect("checked above")
}

/// Max pooling (padding counts as -∞), with the flat `h·w` index of each
/// window's first maximum for backward.
pub fn max_pool2d<T: Float>(x: ArrayViewD<'_, T>, window: &Window2d) -> (ArrayD<T>, ArrayD<usize>) {
    let s = nchw("max_pool2d", &x);
    let (oh, ow) = out_size("max_pool2d", s, window);
    let shape = IxDyn(&[s[0], s[1], oh, ow]);
    let mut idx = crate::kernels::owned::zeros(shape.clone());
    let y = owned(shape, |y| max_pool2d_into(x, window, y, idx.view_mut()));
    (y, idx)
}

/// [`max_pool2d`] into preallocated `y` and `idx` of the output's shape.
pub fn max_pool2d_into<T: Float>(
    x: ArrayViewD<'_, T>,
    window: &Window2d,
    mut y: ArrayViewMutD<'_, T>,
    mut idx: ArrayViewMutD<'_, usize>,
) {
    let s = nchw("max_pool2d", &x);
    let (oh, ow) = out_size("max_pool2d", s, window);
    check_out("max_pool2d", y.shape(), [s[0], s[1], oh, ow]);
    check_out("max_pool2d", idx.shape(), [s[0], s[1], oh, ow]);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let y = y.as_slice_mut().expect("standard-layout output");
    let idx = idx.as_slice_mut().expect("standard-layout index");
    let (h, w) = (s[2], s[3]);
    let (ys, is) = (Shared::new(y), Shared::new(idx));
    // Planes (sample, channel) are independent: split them over the cores.
    for_each_range(s[0] * s[1], xs.len(), &|planes| {
        // SAFETY: each part writes only its own planes' outputs.
        let (y, idx) = unsafe {
            (
                ys.slice(planes.start * oh * ow..planes.end * oh * ow),
                is.slice(planes.start * oh * ow..planes.end * oh * ow),
            )
        };
        let planes_in = &xs[planes.start * h * w..planes.end * h * w];
        for ((plane, yp), ip) in planes_in
            .chunks(h * w)
            .zip(y.chunks_mut(oh * ow))
            .zip(idx.chunks_mut(oh * ow))
        {
            max_pool_plane_dispatch(plane, (h, w), (oh, ow), window, yp, ip);
        }
    });
}

/// [`max_pool_plane`], compiled for the widest vectors the CPU has.
fn max_pool_plane_dispatch<T: Float>(
    plane: &[T],
    hw: (usize, usize),
    out: (usize, usize),
    window: &Window2d,
    yp: &mut [T],
    ip: &mut [usize],
) {
    #[cfg(target_arch = "x86_64")]
    if two_by_two::forward(plane, hw, out, window, yp, ip) {
        return;
    }
    crate::run_widest!(<T: Float> (
        plane: &[T] = plane,
        hw: (usize, usize) = hw,
        out: (usize, usize) = out,
        window: &Window2d = window,
        yp: &mut [T] = yp,
        ip: &mut [usize] = ip,
    ) => max_pool_plane(plane, hw, out, window, yp, ip))
}

/// Max pooling of one `h × w` plane into the `oh × ow` outputs `yp` and their
/// argmax indices `ip`.
#[inline(always)]
fn max_pool_plane<T: Float>(
    plane: &[T],
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    window: &Window2d,
    yp: &mut [T],
    ip: &mut [usize],
) {
    let simple = window.padding == Padding2d::default() && window.dilation == (1, 1);
    if simple && window.kernel == (2, 2) && window.stride == (2, 2) {
        // The common case, unrolled and branch-free so it vectorizes: the four
        // taps in scan order, the first maximum (or a NaN) winning.
        for oy in 0..oh {
            let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
            let top = &plane[r0..r0 + 2 * ow];
            let bottom = &plane[r1..r1 + 2 * ow];
            let y = &mut yp[oy * ow..(oy + 1) * ow];
            let idx = &mut ip[oy * ow..(oy + 1) * ow];
            for (ox, (((t, b), y), i)) in top
                .chunks_exact(2)
                .zip(bottom.chunks_exact(2))
                .zip(y.iter_mut())
                .zip(idx.iter_mut())
                .enumerate()
            {
                let (mut best, mut at) = (t[0], r0 + 2 * ox);
                for (v, tap) in [
                    (t[1], r0 + 2 * ox + 1),
                    (b[0], r1 + 2 * ox),
                    (b[1], r1 + 2 * ox + 1),
                ] {
                    let take = v > best || v.is_nan();
                    best = if take { v } else { best };
                    at = if take { tap } else { at };
                }
                *y = best;
                *i = at;
            }
        }
        return;
    }
    if simple {
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
        return;
    }
    for oy in 0..oh {
        for ox in 0..ow {
            let (mut best, mut at) = (T::neg_infinity(), usize::MAX);
            for ky in 0..window.kernel.0 {
                for kx in 0..window.kernel.1 {
                    let Some((r, c)) = window_source(window, (oy, ox), (ky, kx), (h, w)) else {
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

/// Gradient of [`max_pool2d`] with `window`: each output's gradient goes to
/// its maximum.
pub fn max_pool2d_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    idx: ArrayViewD<'_, usize>,
    x_shape: &[usize],
    window: &Window2d,
) -> ArrayD<T> {
    owned(x_shape, |dx| max_pool2d_backward_into(dy, idx, window, dx))
}

/// [`max_pool2d_backward`] into a preallocated `dx` of the input's shape:
/// `dy` and `idx` (the forward's indices) have the output's shape under
/// `window`.
///
/// # Panics
/// If `dx` is not NCHW, or `dy` or `idx` is not the output's shape, naming
/// the op and the shapes.
pub fn max_pool2d_backward_into<T: Float>(
    dy: ArrayViewD<'_, T>,
    idx: ArrayViewD<'_, usize>,
    window: &Window2d,
    mut dx: ArrayViewMutD<'_, T>,
) {
    const OP: &str = "max_pool2d backward";
    let x_shape = nchw(OP, &dx.view());
    let out = out_size(OP, x_shape, window);
    let want = [x_shape[0], x_shape[1], out.0, out.1];
    assert!(
        dy.shape() == want && idx.shape() == want,
        "{OP}: gradient {:?} and indices {:?} for input {x_shape:?}, whose output is {want:?}",
        dy.shape(),
        idx.shape()
    );
    let (h, w) = (x_shape[2], x_shape[3]);
    let (plane_in, plane_out) = (h * w, out.0 * out.1);
    let (dy, idx) = (dy.as_standard_layout(), idx.as_standard_layout());
    let (gs, is) = (
        dy.as_slice().expect("standard"),
        idx.as_slice().expect("standard"),
    );
    let dx = dx.as_slice_mut().expect("standard-layout gradient");
    if dx.is_empty() {
        return;
    }
    // Planes are independent: each part fills its own while they are in
    // cache (one memset of the whole gradient, then the scatter, on one
    // thread, were a tenth of LeNet-5's epoch).
    let planes = dx.len() / plane_in;
    let work = dx.len() + gs.len();
    let dx = Shared::new(dx);
    for_each_range(planes, work, &|r| {
        // SAFETY: the parts' plane ranges are disjoint.
        let part = unsafe { dx.slice(r.start * plane_in..r.end * plane_in) };
        for (p, plane) in r.zip(part.chunks_mut(plane_in)) {
            let outputs = p * plane_out..(p + 1) * plane_out;
            #[cfg(target_arch = "x86_64")]
            if two_by_two::backward(
                window,
                (h, w),
                out,
                &gs[outputs.clone()],
                &is[outputs.clone()],
                plane,
            ) {
                continue;
            }
            plane.fill(T::zero());
            for k in outputs {
                if is[k] != usize::MAX {
                    plane[is[k]] += gs[k];
                }
            }
        }
    });
}

/// Average pooling; the divisor is the full window, padding included
/// (PyTorch's default `count_include_pad=True`).
pub fn avg_pool2d<T: Float>(x: ArrayViewD<'_, T>, window: &Window2d) -> ArrayD<T> {
    let s = nchw("avg_pool2d", &x);
    let (oh, ow) = out_size("avg_pool2d", s, window);
    owned(&[s[0], s[1], oh, ow][..], |y| avg_pool2d_into(x, window, y))
}

/// [`avg_pool2d`] into a preallocated `y` of the output's shape.
pub fn avg_pool2d_into<T: Float>(
    x: ArrayViewD<'_, T>,
    window: &Window2d,
    mut y: ArrayViewMutD<'_, T>,
) {
    let s = nchw("avg_pool2d", &x);
    let (oh, ow) = out_size("avg_pool2d", s, window);
    check_out("avg_pool2d", y.shape(), [s[0], s[1], oh, ow]);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let y = y.as_slice_mut().expect("standard-layout output");
    let (h, w) = (s[2], s[3]);
    let area = T::lit((window.kernel.0 * window.kernel.1) as f64);
    for (p, yp) in y.chunks_mut(oh * ow).enumerate() {
        let plane = &xs[p * h * w..(p + 1) * h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = T::zero();
                for ky in 0..window.kernel.0 {
                    for kx in 0..window.kernel.1 {
                        if let Some((r, c)) = window_source(window, (oy, ox), (ky, kx), (h, w)) {
                            sum += plane[r * w + c];
                        }
                    }
                }
                yp[oy * ow + ox] = sum / area;
            }
        }
    }
}

/// Gradient of [`avg_pool2d`]: each output's gradient shared over its window.
pub fn avg_pool2d_backward<T: Float>(
    dy: ArrayViewD<'_, T>,
    x_shape: &[usize],
    window: &Window2d,
) -> ArrayD<T> {
    owned(x_shape, |dx| avg_pool2d_backward_into(dy, window, dx))
}

/// [`avg_pool2d_backward`] into a preallocated `dx` of the input's shape.
pub fn avg_pool2d_backward_into<T: Float>(
    dy: ArrayViewD<'_, T>,
    window: &Window2d,
    mut dx: ArrayViewMutD<'_, T>,
) {
    let [_, _, h, w] = nchw("avg_pool2d backward", &dx.view());
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let dy = dy.as_standard_layout();
    let gs = dy.as_slice().expect("standard");
    let dx = dx.as_slice_mut().expect("standard-layout gradient");
    dx.fill(T::zero());
    let area = T::lit((window.kernel.0 * window.kernel.1) as f64);
    for (plane, gp) in dx.chunks_mut(h * w).zip(gs.chunks(oh * ow)) {
        for oy in 0..oh {
            for ox in 0..ow {
                let g = gp[oy * ow + ox] / area;
                for ky in 0..window.kernel.0 {
                    for kx in 0..window.kernel.1 {
                        if let Some((r, c)) = window_source(window, (oy, ox), (ky, kx), (h, w)) {
                            plane[r * w + c] += g;
                        }
                    }
                }
            }
        }
    }
}

/// Mean over height and width: `[n, c, h, w]` → `[n, c]`.
pub fn global_avg_pool<T: Float>(x: ArrayViewD<'_, T>) -> ArrayD<T> {
    let s = nchw("global_avg_pool", &x);
    owned(&s[..2], |y| global_avg_pool_into(x, y))
}

/// [`global_avg_pool`] into a preallocated `y: [n, c]`.
pub fn global_avg_pool_into<T: Float>(x: ArrayViewD<'_, T>, mut y: ArrayViewMutD<'_, T>) {
    let s = nchw("global_avg_pool", &x);
    assert!(
        y.shape() == [s[0], s[1]],
        "global_avg_pool: output buffer {:?} for input {s:?}",
        y.shape()
    );
    let plane = s[2] * s[3];
    let area = T::lit(plane as f64);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let y = y.as_slice_mut().expect("standard-layout output");
    if plane == 0 {
        // The mean of nothing, as PyTorch gives it.
        y.fill(T::nan());
        return;
    }
    // Planes split over the threads and summed in vector lanes: summed in
    // one chain on one thread, this was 2 % of a 16-channel CNN's epoch.
    let shared = Shared::new(y);
    for_each_range(y.len(), xs.len(), &|r| {
        // SAFETY: the parts' output ranges are disjoint.
        let out = unsafe { shared.slice(r.clone()) };
        for (o, p) in out.iter_mut().zip(r) {
            *o = lane_sum(&xs[p * plane..(p + 1) * plane], |v| v) / area;
        }
    });
}

/// Gradient of [`global_avg_pool`].
pub fn global_avg_pool_backward<T: Float>(dy: ArrayViewD<'_, T>, x_shape: &[usize]) -> ArrayD<T> {
    owned(x_shape, |dx| global_avg_pool_backward_into(dy, dx))
}

/// [`global_avg_pool_backward`] into a preallocated `dx` of the input's shape.
pub fn global_avg_pool_backward_into<T: Float>(
    dy: ArrayViewD<'_, T>,
    mut dx: ArrayViewMutD<'_, T>,
) {
    let s = nchw("global_avg_pool backward", &dx.view());
    let plane = s[2] * s[3];
    let area = T::lit(plane as f64);
    let dy = dy.as_standard_layout();
    let gs = dy.as_slice().expect("standard layout");
    assert!(
        gs.len() == s[0] * s[1],
        "global_avg_pool backward: gradient {:?} for input {s:?}",
        dy.shape()
    );
    let dx = dx.as_slice_mut().expect("standard-layout gradient");
    if plane == 0 {
        return;
    }
    let shared = Shared::new(dx);
    for_each_range(gs.len(), gs.len() * plane, &|r| {
        // SAFETY: the parts' plane ranges are disjoint.
        let part = unsafe { shared.slice(r.start * plane..r.end * plane) };
        for (out, &g) in part.chunks_mut(plane).zip(&gs[r]) {
            out.fill(g / area);
        }
    });
}

/// Mean over the time axis of a sequence batch: `[n, t, d]` → `[n, d]`
/// (Keras's `GlobalAveragePooling1D`), into `y`.
pub fn global_avg_pool1d_into<T: Float>(x: ArrayViewD<'_, T>, mut y: ArrayViewMutD<'_, T>) {
    let [n, t, d] = ntd("global_avg_pool1d", x.shape());
    assert!(
        y.shape() == [n, d],
        "global_avg_pool1d: output buffer {:?} for input {:?}",
        y.shape(),
        x.shape()
    );
    let scale = T::one() / T::lit(t as f64);
    if let (Some(xs), Some(ys), true) = (x.as_slice(), y.as_slice_mut(), d > 0) {
        // Row slices: per-row views of dynamic rank cost more than the sums.
        for (out, seq) in ys.chunks_exact_mut(d).zip(xs.chunks_exact(t * d)) {
            out.fill(T::zero());
            for step in seq.chunks_exact(d) {
                out.iter_mut().zip(step).for_each(|(o, &v)| *o += v);
            }
            out.iter_mut().for_each(|o| *o *= scale);
        }
        return;
    }
    for (mut out, seq) in y.outer_iter_mut().zip(x.outer_iter()) {
        out.fill(T::zero());
        for step in seq.outer_iter() {
            out.zip_mut_with(&step, |o, &v| *o += v);
        }
        out.mapv_inplace(|v| v * scale);
    }
}

/// Gradient of [`global_avg_pool1d_into`]: `dy: [n, d]` spread evenly over
/// the `t` steps of `dx: [n, t, d]`.
pub fn global_avg_pool1d_backward_into<T: Float>(
    dy: ArrayViewD<'_, T>,
    mut dx: ArrayViewMutD<'_, T>,
) {
    let [n, t, d] = ntd("global_avg_pool1d backward", dx.shape());
    assert!(
        dy.shape() == [n, d],
        "global_avg_pool1d backward: gradient {:?} for input {:?}",
        dy.shape(),
        dx.shape()
    );
    let scale = T::one() / T::lit(t as f64);
    if let (Some(gs), Some(dxs), true) = (dy.as_slice(), dx.as_slice_mut(), d > 0) {
        for (seq, g) in dxs.chunks_exact_mut(t * d).zip(gs.chunks_exact(d)) {
            for step in seq.chunks_exact_mut(d) {
                step.iter_mut().zip(g).for_each(|(o, &g)| *o = g * scale);
            }
        }
        return;
    }
    for (mut seq, g) in dx.outer_iter_mut().zip(dy.outer_iter()) {
        for mut step in seq.outer_iter_mut() {
            step.zip_mut_with(&g, |d, &g| *d = g * scale);
        }
    }
}

fn ntd(op: &str, shape: &[usize]) -> [usize; 3] {
    match *shape {
        [n, t, d] if t > 0 => [n, t, d],
        _ => panic!("{op}: expected a batch of sequences [batch, time, features], got {shape:?}"),
    }
}

fn check_out(op: &str, got: &[usize], want: [usize; 4]) {
    assert!(
        got == want,
        "{op}: output buffer of shape {got:?}, the output is {want:?}"
    );
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
mod tests;
