//! 2-D convolution (NCHW, weights `[out, in, kh, kw]` as in PyTorch),
//! forward beside backward: by im2col and the GEMM, or, for stride-1 `f32`
//! convolutions where the kernels use AVX-512 or AVX2, by the direct kernels
//! of `direct_conv/`, which read the input planes themselves.

use std::ops::Range;

use super::direct_conv::Geometry;
use super::gemm::gemm;
use super::norm::channel_sum;
use super::owned::{owned, Output};
use ndarray::{
    Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis, Ix2,
    IxDyn,
};

use crate::parallel::{for_each_chunk, for_each_range, parts_for, Shared};
use crate::Float;
use nn_spec::shapes::split_padding;

/// Padding of the four borders of an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding2d {
    /// Rows of zeros above.
    pub top: usize,
    /// Rows of zeros below.
    pub bottom: usize,
    /// Columns of zeros on the left.
    pub left: usize,
    /// Columns of zeros on the right.
    pub right: usize,
}

impl Padding2d {
    /// The same padding on every border.
    pub fn uniform(p: usize) -> Self {
        Padding2d {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// `(rows, cols)` of symmetric padding.
    pub fn symmetric(rows: usize, cols: usize) -> Self {
        Padding2d {
            top: rows,
            bottom: rows,
            left: cols,
            right: cols,
        }
    }

    /// Keras's and PyTorch's `"same"`: the output has `ceil(in / stride)` rows
    /// and columns; an odd total goes to the bottom and right.
    pub fn same(
        input: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
    ) -> Self {
        use nn_spec::shapes::same_padding_total as total;
        let (r, c) = (
            total(input.0, kernel.0, stride.0, dilation.0),
            total(input.1, kernel.1, stride.1, dilation.1),
        );
        let ((top, bottom), (left, right)) = (split_padding(r), split_padding(c));
        Padding2d {
            top,
            bottom,
            left,
            right,
        }
    }
}

/// Geometry of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// Kernel rows and columns.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Zeros (or, for max pooling, -∞) around the input.
    pub padding: Padding2d,
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
}

impl Window2d {
    /// A window with the given kernel, stride 1, no padding, no dilation.
    pub fn new(kernel: (usize, usize)) -> Self {
        Window2d {
            kernel,
            stride: (1, 1),
            padding: Padding2d::default(),
            dilation: (1, 1),
        }
    }

    /// Output rows and columns for an input of `(h, w)`, or `None` when the
    /// (dilated) kernel does not fit the padded input.
    pub fn output_size(&self, input: (usize, usize)) -> Option<(usize, usize)> {
        let one = nn_spec::shapes::window_output_len;
        let p = self.padding;
        Some((
            one(
                input.0,
                self.kernel.0,
                self.stride.0,
                self.dilation.0,
                p.top + p.bottom,
            )?,
            one(
                input.1,
                self.kernel.1,
                self.stride.1,
                self.dilation.1,
                p.left + p.right,
            )?,
        ))
    }
}

fn dims4<T: Float>(op: &str, x: &ArrayViewD<'_, T>) -> (usize, usize, usize, usize) {
    match x.shape() {
        &[n, c, h, w] => (n, c, h, w),
        s => panic!("{op}: expected an NCHW input [batch, channels, height, width], got {s:?}"),
    }
}

/// Output shape `[n, out, oh, ow]` of a convolution, or a panic naming the shapes.
pub fn conv2d_shape(x: &[usize], w: &[usize], window: &Window2d) -> [usize; 4] {
    let (&[n, c, h, ww], &[oc, ic, kh, kw]) = (x, w) else {
        panic!(
            "conv2d: expected input [n, c, h, w] and weight [out, in, kh, kw], got {x:?} and {w:?}"
        )
    };
    assert!(
        c == ic,
        "conv2d: input {x:?} has {c} channels but weight {w:?} expects {ic}"
    );
    assert!(
        window.kernel == (kh, kw),
        "conv2d: window kernel {:?} does not match weight {w:?}",
        window.kernel
    );
    let (oh, ow) = window.output_size((h, ww)).unwrap_or_else(|| {
        panic!(
            "conv2d: kernel {kh}x{kw} (dilation {:?}) does not fit input {x:?} with padding {:?}",
            window.dilation, window.padding
        )
    });
    [n, oc, oh, ow]
}

/// For one kernel tap along one axis: the input index each output position
/// reads, or `None` in the padding. (Shared by im2col and col2im.)
#[inline]
fn taps(
    out: usize,
    stride: usize,
    offset: usize,
    pad: usize,
    len: usize,
) -> impl Iterator<Item = (usize, Option<usize>)> {
    (0..out).map(move |o| {
        let i = (o * stride + offset).checked_sub(pad).filter(|&i| i < len);
        (o, i)
    })
}

/// For one kernel tap along one axis: the outputs `lo..hi` whose input index
/// `o · stride + offset - pad` lies inside `0..len` (the others read padding).
#[inline]
fn tap_range(out: usize, stride: usize, offset: usize, pad: usize, len: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(offset).div_ceil(stride).min(out);
    let hi = (len + pad).saturating_sub(offset).div_ceil(stride).min(out);
    (lo, hi.max(lo))
}

/// im2col: `[c·kh·kw, n·oh·ow]`, column `(n, oy, ox)` holding the patch that
/// output position reads (zeros in the padding).
pub fn im2col<T: Float>(
    x: ArrayViewD<'_, T>,
    window: &Window2d,
    out_hw: (usize, usize),
) -> Array2<T> {
    let (n, c, _, _) = dims4("im2col", &x);
    let (kh, kw) = window.kernel;
    let shape = (c * kh * kw, n * out_hw.0 * out_hw.1);
    owned(shape, |cols| im2col_into(x, window, out_hw, cols))
}

/// [`im2col`] into a preallocated `cols` (every entry is written).
pub fn im2col_into<T: Float>(
    x: ArrayViewD<'_, T>,
    window: &Window2d,
    out_hw: (usize, usize),
    mut cols: ArrayViewMut2<'_, T>,
) {
    let (n, c, h, w) = dims4("im2col", &x);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let (kh, kw) = window.kernel;
    let (oh, ow) = out_hw;
    let p = window.padding;
    assert!(
        cols.dim() == (c * kh * kw, n * oh * ow),
        "im2col: buffer {:?} for {} rows and {} columns",
        cols.shape(),
        c * kh * kw,
        n * oh * ow
    );
    let width = n * oh * ow;
    let shared = Shared::new(cols.as_slice_mut().expect("contiguous im2col buffer"));
    // Rows (channel, ky, kx) are independent: split them over the cores.
    for_each_range(c * kh * kw, c * kh * kw * width, &|rows| {
        for r in rows {
            let (ci, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
            // SAFETY: each part writes only its own rows.
            let row = unsafe { shared.slice(r * width..(r + 1) * width) };
            let (sx, off) = (window.stride.1, kx * window.dilation.1);
            let (lo, hi) = tap_range(ow, sx, off, p.left, w);
            // Input column of output column lo (never negative when lo < hi).
            let first = (lo * sx + off).saturating_sub(p.left);
            let (sy, off_y) = (window.stride.0, ky * window.dilation.0);
            let (top, bottom) = tap_range(oh, sy, off_y, p.top, h);
            // Stride 1 with rows as wide as the input's ("same" padding): the
            // valid rows are one contiguous run in both, so one copy, then
            // the padding columns zeroed.
            if sx == 1 && sy == 1 && ow == w && lo < hi && top < bottom {
                let first_y = top + off_y - p.top;
                for ni in 0..n {
                    let plane = &xs[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
                    let dst = &mut row[ni * oh * ow..(ni + 1) * oh * ow];
                    dst[..top * ow].fill(T::zero());
                    dst[bottom * ow..].fill(T::zero());
                    let (from, to) = (top * ow + lo, (bottom - 1) * ow + hi);
                    let src = first_y * w + first;
                    dst[from..to].copy_from_slice(&plane[src..src + (to - from)]);
                    if lo > 0 || hi < ow {
                        for dst_row in dst[top * ow..bottom * ow].chunks_exact_mut(ow) {
                            dst_row[..lo].fill(T::zero());
                            dst_row[hi..].fill(T::zero());
                        }
                    }
                }
                continue;
            }
            for ni in 0..n {
                let plane = &xs[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
                for (oy, iy) in taps(oh, window.stride.0, ky * window.dilation.0, p.top, h) {
                    let dst = &mut row[(ni * oh + oy) * ow..(ni * oh + oy + 1) * ow];
                    let Some(iy) = iy else {
                        dst.fill(T::zero());
                        continue;
                    };
                    let src = &plane[iy * w..(iy + 1) * w];
                    // Guarded: an empty fill still costs a memset call.
                    if lo > 0 {
                        dst[..lo].fill(T::zero());
                    }
                    if hi < ow {
                        dst[hi..].fill(T::zero());
                    }
                    if lo == hi {
                        continue;
                    }
                    if sx == 1 {
                        copy_run(&mut dst[lo..hi], &src[first..first + (hi - lo)]);
                    } else {
                        for (d, &v) in dst[lo..hi].iter_mut().zip(src[first..].iter().step_by(sx)) {
                            *d = v;
                        }
                    }
                }
            }
        }
    });
}

/// `dst = src` for the short runs of im2col (one image row): fixed-size chunks
/// the compiler turns into vector moves, where `copy_from_slice` would call
/// `memcpy` for a few dozen bytes.
#[inline]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let chunk: [T; 8] = s.try_into().expect("chunk of 8");
        d.copy_from_slice(&chunk);
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s;
    }
}

/// col2im: the adjoint of [`im2col`], adding each column entry back to the
/// input position it was read from.
pub fn col2im<T: Float>(
    cols: ArrayView2<'_, T>,
    shape: [usize; 4],
    window: &Window2d,
    out_hw: (usize, usize),
) -> ArrayD<T> {
    owned(&shape[..], |dx| col2im_into(cols, window, out_hw, dx))
}

/// [`col2im`] into a preallocated `dx` of the input's shape (overwritten).
pub fn col2im_into<T: Float>(
    cols: ArrayView2<'_, T>,
    window: &Window2d,
    out_hw: (usize, usize),
    mut dx: ArrayViewMutD<'_, T>,
) {
    let (n, c, h, w) = dims4("col2im", &dx.view());
    let (kh, kw) = window.kernel;
    let (oh, ow) = out_hw;
    let p = window.padding;
    let shared = Shared::new(dx.as_slice_mut().expect("standard-layout gradient"));
    let cols = cols.as_standard_layout();
    // Channels are independent (each owns its planes): split them over the cores.
    for_each_range(c, cols.len(), &|channels| {
        for ci in channels {
            for ni in 0..n {
                // SAFETY: each part writes only its own channels' planes.
                let plane =
                    unsafe { shared.slice((ni * c + ci) * h * w..(ni * c + ci + 1) * h * w) };
                plane.fill(T::zero());
                for ky in 0..kh {
                    for kx in 0..kw {
                        let row = cols.row((ci * kh + ky) * kw + kx);
                        let row = row.as_slice().expect("contiguous row");
                        let (sx, off) = (window.stride.1, kx * window.dilation.1);
                        let (lo, hi) = tap_range(ow, sx, off, p.left, w);
                        if lo == hi {
                            continue;
                        }
                        let first = lo * sx + off - p.left;
                        for (oy, iy) in taps(oh, window.stride.0, ky * window.dilation.0, p.top, h)
                        {
                            let Some(iy) = iy else { continue };
                            let src = &row[(ni * oh + oy) * ow..(ni * oh + oy + 1) * ow];
                            let dst = &mut plane[iy * w..(iy + 1) * w];
                            if sx == 1 {
                                for (d, &g) in dst[first..].iter_mut().zip(&src[lo..hi]) {
                                    *d += g;
                                }
                            } else {
                                for (d, &g) in dst[first..].iter_mut().step_by(sx).zip(&src[lo..hi])
                                {
                                    *d += g;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Whether `T` is `f32`, the one type the direct kernels take.
fn is_f32<T: Float>() -> bool {
    std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
}

/// `s` as the `f32` values it holds.
fn f32s<T: Float>(s: &[T]) -> &[f32] {
    assert!(is_f32::<T>(), "conv2d (direct): f32 only");
    // SAFETY: `T` is `f32` (checked just above).
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// [`f32s`] of a mutable slice.
fn f32s_mut<T: Float>(s: &mut [T]) -> &mut [f32] {
    assert!(is_f32::<T>(), "conv2d (direct): f32 only");
    // SAFETY: `T` is `f32` (checked just above).
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// The weight `[out, in, kh, kw]` viewed as `[out, in·kh·kw]`.
fn weight_matrix<'a, T: Float>(w: &'a ndarray::CowArray<'_, T, IxDyn>) -> ArrayView2<'a, T> {
    let s = w.shape();
    w.view()
        .into_shape_with_order((s[0], s[1] * s[2] * s[3]))
        .expect("standard-layout weight")
        .into_dimensionality::<Ix2>()
        .expect("2-D")
}

/// `buf` reshaped to `dim` (contents unspecified), reallocating only when the
/// element count grows.
fn resize<T: Float>(buf: &mut Array2<T>, dim: (usize, usize)) {
    if buf.dim() != dim {
        let mut v = std::mem::take(buf).into_raw_vec_and_offset().0;
        v.resize(dim.0 * dim.1, T::zero());
        *buf = Array2::from_shape_vec(dim, v).expect("sizes match");
    }
}

/// Makes `buf` hold at least `rows` rows of `cols` values, keeping it as it
/// is when it does: the direct kernels read a prefix of it. (Sized exactly,
/// the staged buffers alternated between a forward's one sample and a
/// backward's chunk, and every backward zero-filled the chunk's again.)
fn grow_rows<T: Float>(buf: &mut Array2<T>, rows: usize, cols: usize) {
    if buf.ncols() != cols || buf.nrows() < rows {
        resize(buf, (rows, cols));
    }
}

/// One thread's intermediates: the im2col matrix of a chunk of samples (or,
/// for the direct kernels, their staged inputs), the chunk's output gradient
/// in GEMM layout, the im2col matrix's gradient (or the staged output
/// gradient of one sample), partial weight and bias gradients, and the
/// direct weight gradient's scratch.
#[derive(Clone, Debug)]
struct PartScratch<T> {
    cols: Array2<T>,
    mat: Array2<T>,
    dcols: Array2<T>,
    dw: Array2<T>,
    db: Vec<T>,
    /// The direct weight gradient's own (a sample's transposed output
    /// gradient and partial sums).
    direct_dw: Vec<f32>,
}

impl<T: Float> Default for PartScratch<T> {
    fn default() -> Self {
        PartScratch {
            cols: Array2::zeros((0, 0)),
            mat: Array2::zeros((0, 0)),
            dcols: Array2::zeros((0, 0)),
            dw: Array2::zeros((0, 0)),
            db: Vec::new(),
            direct_dw: Vec::new(),
        }
    }
}

/// The largest im2col matrix of a batch that forward keeps for backward.
/// Measured (`bench cnn convnet`, 32 MiB last-level cache): LeNet-5's 10 and
/// 7.7 MB matrices are 4% faster kept; `convnet`'s four of 14.4 MB, 23% faster
/// rebuilt, since kept they come back from memory.
const KEEP_BYTES: usize = 12 << 20;

/// Reusable intermediates of a convolution, one set per thread: once grown to
/// a batch's size, forward and backward allocate nothing.
#[derive(Clone, Debug)]
pub struct ConvScratch<T> {
    parts: Vec<PartScratch<T>>,
    /// The last forward's im2col matrices, chunk after chunk, kept for the
    /// weight gradient (they stay in the last-level cache at LeNet sizes).
    kept: Vec<T>,
    /// Which input `kept` was built from: its data pointer and shape.
    kept_for: Option<(usize, [usize; 4])>,
    /// The weight flipped and transposed for [`transposed_window`]'s input
    /// gradient: `[in, out·kh·kw]`.
    flipped: Array2<T>,
    /// The weights as the direct forward kernel reads them (see
    /// `Geometry::forward_weights`).
    direct_w: Vec<f32>,
}

/// The samples of a batch are processed in chunks whose im2col matrix stays
/// in cache (about 1 MiB): written, then read by the GEMM at once, instead of
/// a whole batch's matrix going out to memory and back. The chunks form
/// groups, as many as the size alone decides, each with its scratch and its
/// partial weight gradient (added in group order: the same bits on any number
/// of threads); the groups are split over the cores.
struct Chunks {
    samples: usize,
    per_chunk: usize,
    count: usize,
    groups: usize,
    threads: usize,
}

impl Chunks {
    fn new(samples: usize, cols_per_sample: usize, macs: usize) -> Self {
        let per_chunk = (262_144 / cols_per_sample.max(1)).clamp(1, samples.max(1));
        let count = samples.div_ceil(per_chunk);
        let groups = if macs >= crate::parallel::PARALLEL_ELEMENTS {
            crate::parallel::REDUCTION_CHUNKS.min(count).max(1)
        } else {
            1
        };
        Chunks {
            samples,
            per_chunk,
            count,
            groups,
            threads: parts_for(groups, macs),
        }
    }

    /// The sample ranges group `g` handles.
    fn of_group(&self, g: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        let (from, to) = (
            g * self.count / self.groups,
            (g + 1) * self.count / self.groups,
        );
        (from..to).map(|c| c * self.per_chunk..((c + 1) * self.per_chunk).min(self.samples))
    }
}

impl<T: Float> Default for ConvScratch<T> {
    fn default() -> Self {
        ConvScratch {
            parts: Vec::new(),
            kept: Vec::new(),
            kept_for: None,
            flipped: Array2::zeros((0, 0)),
            direct_w: Vec::new(),
        }
    }
}

/// For a stride-1 convolution: the window under which the input gradient is
/// the output gradient convolved with the flipped kernel (`dx = dy ⋆
/// flip(w)ᵀ`, the borders padded by what the forward's padding left
/// uncovered). On the GEMM path that is one im2col and a GEMM as deep as the
/// forward's, where the general way — a GEMM only `out` deep, then col2im
/// scattering every entry back — was a third of a backward pass; there it is
/// taken only when the output is at least as large as the input (see
/// [`gemm_takes_transposed`]). The direct kernels take it for any such
/// window. `None` when strided, or padded beyond the kernel's reach.
fn transposed_window(window: &Window2d) -> Option<Window2d> {
    let (k, d, p) = (window.kernel, window.dilation, window.padding);
    let (reach_y, reach_x) = ((k.0 - 1) * d.0, (k.1 - 1) * d.1);
    let fits =
        window.stride == (1, 1) && p.top.max(p.bottom) <= reach_y && p.left.max(p.right) <= reach_x;
    fits.then(|| Window2d {
        kernel: k,
        stride: (1, 1),
        padding: Padding2d {
            top: reach_y - p.top,
            bottom: reach_y - p.bottom,
            left: reach_x - p.left,
            right: reach_x - p.right,
        },
        dilation: d,
    })
}

/// Whether the GEMM path computes the input gradient in the transposed form:
/// for a smaller output (a valid convolution) it would multiply more zeros
/// (the wide border around `dy`) than col2im's scatter costs.
fn gemm_takes_transposed(input: (usize, usize), output: (usize, usize)) -> bool {
    output.0 * output.1 >= input.0 * input.1
}

/// `w` (`[out, in, kh, kw]`) flipped in both spatial axes with its channel
/// axes swapped, as the matrix `[in, out·kh·kw]`.
fn flip_into<T: Float>(w: &ArrayViewD<'_, T>, into: &mut Array2<T>) {
    let (o, c, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    resize(into, (c, o * kh * kw));
    for ci in 0..c {
        for oi in 0..o {
            for ky in 0..kh {
                for kx in 0..kw {
                    into[[ci, (oi * kh + ky) * kw + kx]] = w[[oi, ci, kh - 1 - ky, kw - 1 - kx]];
                }
            }
        }
    }
}

impl<T: Float> ConvScratch<T> {
    /// Per-part scratch, grown to `parts` entries.
    fn parts(&mut self, parts: usize) -> Shared<PartScratch<T>> {
        if self.parts.len() < parts {
            self.parts.resize_with(parts, PartScratch::default);
        }
        Shared::new(&mut self.parts[..parts])
    }
}

fn key<T>(x: &ArrayViewD<'_, T>) -> Option<(usize, [usize; 4])> {
    match *x.shape() {
        [n, c, h, w] => Some((x.as_ptr() as usize, [n, c, h, w])),
        _ => None,
    }
}

/// Forward: `y = w ⋆ x + b`, keeping in `scratch` what backward reuses.
pub fn conv2d<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
) -> ArrayD<T> {
    let shape = conv2d_shape(x.shape(), w.shape(), window);
    let mut y = ArrayD::uninit(IxDyn(&shape));
    let slots = y.as_slice_mut().expect("a new array is one slice");
    conv2d_slots(x, w, b, window, scratch, false, Output::fresh(slots));
    // SAFETY: `conv2d_slots` takes every sample's range of the output once.
    unsafe { y.assume_init() }
}

/// [`conv2d`] into a preallocated `y`, with intermediates in `scratch`.
pub fn conv2d_into<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    y: ArrayViewMutD<'_, T>,
) {
    conv2d_then(x, w, b, window, scratch, false, y)
}

/// [`conv2d_into`] followed by plain `relu` (`max(·, 0)`, NaN and `-0.0`
/// kept), the same bits, applied while each output is still in registers
/// or cache instead of in a pass of its own over the whole output.
pub fn conv2d_relu_into<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    y: ArrayViewMutD<'_, T>,
) {
    conv2d_then(x, w, b, window, scratch, true, y)
}

/// [`conv2d_into`], then plain `relu` where `relu`.
fn conv2d_then<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    relu: bool,
    mut y: ArrayViewMutD<'_, T>,
) {
    let shape = conv2d_shape(x.shape(), w.shape(), window);
    assert!(
        y.shape() == shape,
        "conv2d: output buffer {:?}, the output is {shape:?}",
        y.shape()
    );
    let ys = Output::initialized(y.as_slice_mut().expect("standard-layout output"));
    conv2d_slots(x, w, b, window, scratch, relu, ys)
}

/// [`conv2d_then`] into `ys`, the output's elements in standard order,
/// taking each sample's range once.
fn conv2d_slots<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    relu: bool,
    ys: Output<T>,
) {
    let [n, oc, oh, ow] = conv2d_shape(x.shape(), w.shape(), window);
    if let Some(b) = b {
        assert!(
            b.len() == oc,
            "conv2d: bias of {} for {oc} output channels",
            b.len()
        );
    }
    let plane = oh * ow;
    let rows = x.shape()[1] * window.kernel.0 * window.kernel.1;
    let w = w.as_standard_layout();
    let wm = weight_matrix(&w);
    let chunks = Chunks::new(n, rows * plane, n * oc * plane * rows);
    let (c, h, w_in) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let contiguous_bias = b.is_none_or(|b| b.to_slice().is_some());
    let direct = Geometry::direct(is_f32::<T>(), window, (c, h, w_in), (oc, oh, ow))
        .filter(|_| contiguous_bias);
    if let Some(g) = direct {
        scratch.kept.clear();
        scratch.kept_for = None;
        let x = x.as_standard_layout();
        let (xs, ws) = (
            f32s(x.as_slice().expect("standard layout")),
            f32s(w.as_slice().expect("standard layout")),
        );
        let bias = b.and_then(|b| b.to_slice()).map(f32s);
        let mut prepared = std::mem::take(&mut scratch.direct_w);
        let weights = g.forward_weights(ws, &mut prepared);
        let parts = scratch.parts(chunks.groups);
        for_each_chunk(chunks.groups, chunks.threads, &|p| {
            // SAFETY: part p alone uses scratch p.
            let part = unsafe { &mut parts.slice(p..p + 1)[0] };
            // The buffer the weight gradient stages a chunk in: it keeps
            // that size, and one sample (and room to align it) is its first
            // two rows.
            grow_rows(&mut part.cols, 2, g.staged_len());
            let staged = f32s_mut(part.cols.as_slice_mut().expect("standard layout"));
            let staged = g.staged_in(staged, 1);
            for ni in chunks.of_group(p).flatten() {
                // SAFETY: each part writes its own samples' outputs.
                let yi = f32s_mut(unsafe { ys.slice(ni * oc * plane..(ni + 1) * oc * plane) });
                g.stage(&xs[ni * c * h * w_in..][..c * h * w_in], staged);
                g.forward(staged, weights, bias, relu, yi);
            }
        });
        scratch.direct_w = prepared;
        return;
    }
    // Chunk after chunk, each chunk's matrix contiguous: [rows, samples·oh·ow],
    // kept for backward up to [`KEEP_BYTES`]; larger ones would come back from
    // memory slower than backward rebuilds them chunk by chunk.
    let keep = rows * n * plane * size_of::<T>() <= KEEP_BYTES;
    scratch
        .kept
        .resize(if keep { rows * n * plane } else { 0 }, T::zero());
    scratch.kept_for = if keep { key(&x) } else { None };
    let kept = Shared::new(&mut scratch.kept[..]);
    let parts = scratch.parts(chunks.groups);
    for_each_chunk(chunks.groups, chunks.threads, &|p| {
        // SAFETY: part p alone uses scratch p.
        let part = unsafe { &mut parts.slice(p..p + 1)[0] };
        for samples in chunks.of_group(p) {
            let count = samples.len();
            let mut cols = if keep {
                // SAFETY: each part writes its own chunks' matrices and outputs.
                let cols =
                    unsafe { kept.slice(samples.start * plane * rows..samples.end * plane * rows) };
                ArrayViewMut2::from_shape((rows, count * plane), cols).expect("sizes match")
            } else {
                resize(&mut part.cols, (rows, count * plane));
                part.cols.view_mut()
            };
            let xs = x.slice_axis(Axis(0), (samples.start..samples.end).into());
            im2col_into(xs, window, (oh, ow), cols.view_mut());
            let ys = unsafe { ys.slice(samples.start * oc * plane..samples.end * oc * plane) };
            // Each sample's output [oc, oh·ow] is one GEMM, written in place.
            for (i, yi) in ys.chunks_mut(oc * plane).enumerate() {
                let mut yi = ArrayViewMut2::from_shape((oc, plane), yi).expect("sizes match");
                if let Some(b) = b {
                    for (mut row, &bv) in yi.rows_mut().into_iter().zip(b.iter()) {
                        row.fill(bv);
                    }
                }
                let beta = if b.is_some() { T::one() } else { T::zero() };
                let cols = cols.slice(ndarray::s![.., i * plane..(i + 1) * plane]);
                gemm(T::one(), &wm, &cols, beta, &mut yi);
                if relu {
                    // As plain `relu`: negatives to 0, NaN and -0.0 kept.
                    yi.mapv_inplace(|v| if v < T::zero() { T::zero() } else { v });
                }
            }
        }
    });
}

/// Gradients of [`conv2d`] from the input `x` and the output gradient `dy`:
/// `(dx, dw, db)`, each only when asked. `scratch` is the forward's (its
/// im2col matrices are reused) or a fresh one.
pub fn conv2d_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    need: [bool; 3],
) -> [Option<ArrayD<T>>; 3] {
    let mut dx = need[0].then(|| ArrayD::uninit(x.raw_dim()));
    let mut dw = need[1].then(|| ArrayD::zeros(w.raw_dim()));
    let mut db = need[2].then(|| ArrayD::zeros(IxDyn(&[w.shape()[0]])));
    backward_slots(
        x,
        w,
        dy,
        window,
        scratch,
        dx.as_mut()
            .map(|d| Output::fresh(d.as_slice_mut().expect("a new array is one slice"))),
        dw.as_mut().map(|d| d.view_mut()),
        db.as_mut().map(|d| d.view_mut()),
    );
    // SAFETY: `backward_slots` takes every sample's range of `dx` once.
    let dx = dx.map(|d| unsafe { d.assume_init() });
    [dx, dw, db]
}

/// Where [`conv2d_backward_into`] puts the gradients: `dx` is overwritten,
/// `dw` and `db` are added to (parameter gradients accumulate). `None`: not needed.
pub struct ConvGrads<'a, T> {
    /// The input's gradient, of the input's shape.
    pub dx: Option<ArrayViewMutD<'a, T>>,
    /// Added to: the weight's gradient `[out, in, kh, kw]`.
    pub dw: Option<ArrayViewMutD<'a, T>>,
    /// Added to: the bias's gradient `[out]`.
    pub db: Option<ArrayViewMutD<'a, T>>,
}

/// [`conv2d_backward`] with intermediates in `scratch` and the gradients
/// written as [`ConvGrads`] says (allocation-free once warmed up). The weight
/// and input gradients each take the direct kernels where their shapes allow
/// (see the module's documentation), else the GEMM: its im2col matrix is the
/// forward's when it kept one for this input, and otherwise rebuilt chunk by
/// chunk from `x`.
pub fn conv2d_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    grads: ConvGrads<'_, T>,
) {
    let ConvGrads { mut dx, dw, db } = grads;
    let dxs = dx
        .as_mut()
        .map(|d| Output::initialized(d.as_slice_mut().expect("standard-layout gradient")));
    backward_slots(x, w, dy, window, scratch, dxs, dw, db)
}

/// [`conv2d_backward_into`] with the input gradient's elements, in standard
/// order, in `dxs`, taking each sample's range once.
#[allow(clippy::too_many_arguments)]
fn backward_slots<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    dxs: Option<Output<T>>,
    dw: Option<ArrayViewMutD<'_, T>>,
    db: Option<ArrayViewMutD<'_, T>>,
) {
    // `dxs` is cut into samples by `dy`'s count and `x`'s size: both must
    // be this convolution's, or part of a fresh `dx` would go unwritten.
    let expected = conv2d_shape(x.shape(), w.shape(), window);
    assert!(
        dy.shape() == expected,
        "conv2d backward: output gradient {:?} for input {:?}, weight {:?}: the output is {expected:?}",
        dy.shape(),
        x.shape(),
        w.shape()
    );
    if let Some(dxs) = &dxs {
        assert!(
            dxs.len() == x.len(),
            "conv2d backward: input gradient of {} values for input {:?}",
            dxs.len(),
            x.shape()
        );
    }
    let (n, oc, oh, ow) = dims4("conv2d backward", &dy);
    let (c, h, w_in) = (x.shape()[1], x.shape()[2], x.shape()[3]);
    let plane = oh * ow;
    let rows = c * window.kernel.0 * window.kernel.1;
    let w = w.as_standard_layout();
    let wm = weight_matrix(&w);
    let dy = dy.as_standard_layout();
    let gs = dy.as_slice().expect("standard layout");
    let (need_dw, need_db) = (dw.is_some(), db.is_some());
    let transposed = transposed_window(window).filter(|_| dxs.is_some() && n * c * h * w_in > 0);
    // The direct kernel for the input gradient (the flipped weight over dy)
    // where it takes the shapes; otherwise the transposed form only where
    // the GEMM gains by it.
    let direct_dx = transposed
        .as_ref()
        .and_then(|tw| Geometry::direct(is_f32::<T>(), tw, (oc, oh, ow), (c, h, w_in)));
    let transposed =
        transposed.filter(|_| direct_dx.is_some() || gemm_takes_transposed((h, w_in), (oh, ow)));
    // The forward's matrices, when they were built from this same input (the
    // layers' static path; a fresh scratch, as on the tape, rebuilds them).
    let use_kept = scratch.kept_for.is_some() && scratch.kept_for == key(&x);
    // Chunks sized by the larger matrix a chunk builds: x's im2col, or dy's
    // for the transposed input gradient — but as the forward's when its
    // matrices, laid out chunk by chunk, are read.
    let per_sample = match transposed {
        Some(_) if !use_kept => {
            (rows * plane).max(oc * window.kernel.0 * window.kernel.1 * h * w_in)
        }
        _ => rows * plane,
    };
    let chunks = Chunks::new(n, per_sample, 2 * n * oc * plane * rows);
    if transposed.is_some() {
        flip_into(&w.view(), &mut scratch.flipped);
    }
    // The direct kernel for the weight gradient (from x and dy), where it
    // takes the shapes.
    let direct = Geometry::direct(is_f32::<T>(), window, (c, h, w_in), (oc, oh, ow));
    let (gemm_dw, gemm_dx) = (
        need_dw && direct.is_none(),
        dxs.is_some() && direct_dx.is_none(),
    );
    let x = x.as_standard_layout();
    let sample = c * h * w_in;
    let kept = Shared::new(&mut scratch.kept[..]);
    let parts = scratch.parts(chunks.groups);
    let flipped = scratch.flipped.view();
    let mut prepared = std::mem::take(&mut scratch.direct_w);
    let dx_weights = direct_dx.map(|g| {
        g.forward_weights(
            f32s(flipped.as_slice().expect("standard layout")),
            &mut prepared,
        )
    });
    for_each_chunk(chunks.groups, chunks.threads, &|p| {
        // SAFETY: part p alone uses scratch p and writes its own samples' dx.
        let s = unsafe { &mut parts.slice(p..p + 1)[0] };
        resize(&mut s.dw, wm.dim());
        s.dw.fill(T::zero());
        s.db.clear();
        s.db.resize(oc, T::zero());
        for samples in chunks.of_group(p) {
            let width = samples.len() * plane;
            let dys = &gs[samples.start * oc * plane..samples.end * oc * plane];
            if let Some(g) = direct.filter(|_| need_dw) {
                // The samples' staged inputs, one after another.
                grow_rows(&mut s.cols, samples.len() + 1, g.staged_len());
                let staged = f32s_mut(s.cols.as_slice_mut().expect("standard layout"));
                let staged = g.staged_in(staged, samples.len());
                let xs = f32s(x.as_slice().expect("standard layout"));
                for (ni, out) in samples.clone().zip(staged.chunks_exact_mut(g.staged_len())) {
                    g.stage(&xs[ni * sample..][..sample], out);
                }
                let dw = f32s_mut(s.dw.as_slice_mut().expect("standard layout"));
                g.weight_grad(samples.len(), staged, f32s(dys), dw, &mut s.direct_dw);
            }
            if let (Some(g), Some(ws), Some(dxs)) = (direct_dx, dx_weights, &dxs) {
                grow_rows(&mut s.dcols, 2, g.staged_len());
                let staged = f32s_mut(s.dcols.as_slice_mut().expect("standard layout"));
                let staged = g.staged_in(staged, 1);
                for ni in samples.clone() {
                    g.stage(f32s(&gs[ni * oc * plane..(ni + 1) * oc * plane]), staged);
                    // SAFETY: each part writes its own samples' dx.
                    let dxi = f32s_mut(unsafe { dxs.slice(ni * sample..(ni + 1) * sample) });
                    g.forward(staged, ws, None, false, dxi);
                }
            }
            if need_db {
                // In the widest vectors: the sums' registers (`lanes`).
                let db = &mut s.db;
                super::simd::widest(
                    #[inline(always)]
                    || {
                        for (o, d) in db.iter_mut().enumerate() {
                            *d += channel_sum(dys, [oc, plane], o, |g| g);
                        }
                    },
                );
            }
            // dy of these samples, NCHW → [oc, samples·oh·ow], for the GEMMs
            // that read it (not the flipped-kernel input gradient).
            if gemm_dw || (gemm_dx && transposed.is_none()) {
                resize(&mut s.mat, (oc, width));
                for (o, mut row) in s.mat.rows_mut().into_iter().enumerate() {
                    let row = row.as_slice_mut().expect("contiguous row");
                    for (i, ni) in samples.clone().enumerate() {
                        row[i * plane..][..plane]
                            .copy_from_slice(&gs[(ni * oc + o) * plane..][..plane]);
                    }
                }
            }
            if gemm_dw {
                let at = samples.start * plane * rows;
                let cols = if use_kept {
                    // SAFETY: kept is only read during this loop.
                    ArrayView2::from_shape((rows, width), unsafe {
                        &kept.slice(at..at + rows * width)[..]
                    })
                    .expect("sizes match")
                } else {
                    resize(&mut s.cols, (rows, width));
                    let xs = x.slice_axis(Axis(0), (samples.start..samples.end).into());
                    im2col_into(xs, window, (oh, ow), s.cols.view_mut());
                    s.cols.view()
                };
                gemm(T::one(), &s.mat, &cols.t(), T::one(), &mut s.dw);
            }
            if let Some(dxs) = dxs.as_ref().filter(|_| gemm_dx) {
                let (at, in_plane) = (samples.start * c * h * w_in, h * w_in);
                // SAFETY: each part writes its own samples' dx.
                let part = unsafe { dxs.slice(at..at + samples.len() * c * in_plane) };
                if let Some(tw) = &transposed {
                    resize(&mut s.dcols, (flipped.ncols(), samples.len() * in_plane));
                    let dys = dy.slice_axis(Axis(0), (samples.start..samples.end).into());
                    im2col_into(dys, tw, (h, w_in), s.dcols.view_mut());
                    for (i, dxi) in part.chunks_mut(c * in_plane).enumerate() {
                        let mut dxi =
                            ArrayViewMut2::from_shape((c, in_plane), dxi).expect("sizes match");
                        let cols = s
                            .dcols
                            .slice(ndarray::s![.., i * in_plane..(i + 1) * in_plane]);
                        gemm(T::one(), &flipped, &cols, T::zero(), &mut dxi);
                    }
                } else {
                    resize(&mut s.dcols, (rows, width));
                    gemm(T::one(), &wm.t(), &s.mat, T::zero(), &mut s.dcols);
                    let part = ArrayViewMutD::from_shape(IxDyn(&[samples.len(), c, h, w_in]), part)
                        .expect("sizes match");
                    col2im_into(s.dcols.view(), window, (oh, ow), part);
                }
            }
        }
    });
    scratch.direct_w = prepared;
    // Partial sums added in group order: the result does not depend on the
    // number of threads.
    let used = &scratch.parts[..chunks.groups];
    if let Some(dw) = dw {
        let mut dwm = dw
            .into_shape_with_order(wm.dim())
            .expect("weight-shaped gradient");
        for s in used {
            dwm += &s.dw;
        }
    }
    if let Some(mut db) = db {
        for s in used {
            for (d, &v) in db.iter_mut().zip(&s.db) {
                *d += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array4};

    /// A batch of 128 four-channel images, padded "same".
    fn big() -> (Array4<f64>, Window2d, (usize, usize)) {
        let x = Array4::from_shape_fn((128, 4, 16, 16), |(n, c, h, w)| {
            ((n * 7 + c * 5 + h * 3 + w) % 17) as f64 - 8.0
        });
        let window = Window2d {
            kernel: (3, 3),
            stride: (1, 1),
            padding: Padding2d::uniform(1),
            dilation: (1, 1),
        };
        (x, window, (16, 16))
    }

    /// `n` inputs of `c` channels of `hw × hw`, an `o × c × 3 × 3` weight, an
    /// output gradient, and the "same" 3×3 window: fractional values.
    fn same_3x3(
        n: usize,
        c: usize,
        o: usize,
        hw: usize,
    ) -> (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>, Window2d) {
        let x = Array4::from_shape_fn((n, c, hw, hw), |(n, c, h, w)| {
            ((n * 7 + c * 5 + h * 3 + w) % 17) as f64 / 17.0 - 0.5
        });
        let w = Array4::from_shape_fn((o, c, 3, 3), |(o, c, h, w)| {
            ((o * 3 + c * 5 + h * 7 + w) % 13) as f64 / 13.0 - 0.5
        });
        let dy = ArrayD::from_shape_fn(IxDyn(&[n, o, hw, hw]), |i| {
            ((i[0] + i[1] * 3 + i[2] * 5 + i[3] * 7) % 11) as f64 / 11.0 - 0.5
        });
        let window = Window2d {
            kernel: (3, 3),
            stride: (1, 1),
            padding: Padding2d::uniform(1),
            dilation: (1, 1),
        };
        (x.into_dyn(), w.into_dyn(), dy, window)
    }

    /// `got` within 1e-12 of `want`'s largest value.
    fn assert_close(got: &ArrayD<f64>, want: &ArrayD<f64>) {
        let worst = (got - want).iter().fold(0.0f64, |m, d| m.max(d.abs()));
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert!(worst <= 1e-12 * scale, "off by {worst:e}");
    }

    /// `len` slots holding NaN: memory a fresh array could have been given.
    fn stale<T: Float>(len: usize) -> Vec<std::mem::MaybeUninit<T>> {
        vec![std::mem::MaybeUninit::new(T::nan()); len]
    }

    #[test]
    fn fresh_outputs_match_the_into_forms_over_stale_memory() {
        // The allocating forms write arrays that are not filled first: every
        // element must still be written, in the direct kernels (f32 on
        // AVX-512) and the GEMM paths (f64; a stride of 2 takes col2im for
        // the input gradient), with and without a bias, split over the cores.
        fn check<T: Float>(x: ArrayD<T>, w: ArrayD<T>, b: Option<Array1<T>>, window: Window2d) {
            let bits = |a: &[T]| a.iter().map(|v| v.as_f64().to_bits()).collect::<Vec<_>>();
            let b = b.as_ref().map(|b| b.view());
            let shape = conv2d_shape(x.shape(), w.shape(), &window);
            let mut y = ArrayD::zeros(IxDyn(&shape));
            conv2d_into(
                x.view(),
                w.view(),
                b,
                &window,
                &mut ConvScratch::default(),
                y.view_mut(),
            );
            let mut fresh = stale::<T>(y.len());
            let out = Output::fresh(&mut fresh);
            conv2d_slots(
                x.view(),
                w.view(),
                b,
                &window,
                &mut ConvScratch::default(),
                false,
                out,
            );
            // SAFETY: checked just below against every element of `y`.
            let fresh: Vec<T> = fresh.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(
                bits(&fresh),
                bits(y.as_slice().unwrap()),
                "forward {shape:?}"
            );
            let dy = y.mapv(|v| v * T::lit(0.5) - T::lit(0.25));
            let mut dx = ArrayD::zeros(x.raw_dim());
            let grads = ConvGrads {
                dx: Some(dx.view_mut()),
                dw: None,
                db: None,
            };
            let mut scratch = ConvScratch::default();
            conv2d_backward_into(x.view(), w.view(), dy.view(), &window, &mut scratch, grads);
            let mut fresh = stale::<T>(dx.len());
            let out = Some(Output::fresh(&mut fresh));
            let mut scratch = ConvScratch::default();
            backward_slots(
                x.view(),
                w.view(),
                dy.view(),
                &window,
                &mut scratch,
                out,
                None,
                None,
            );
            // SAFETY: as above.
            let fresh: Vec<T> = fresh.iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(
                bits(&fresh),
                bits(dx.as_slice().unwrap()),
                "input gradient {shape:?}"
            );
        }
        let (x, w, _, same) = same_3x3(128, 16, 16, 12);
        let strided = Window2d {
            stride: (2, 2),
            ..same
        };
        let bias = Array1::from_shape_fn(16, |o| o as f64 / 8.0 - 1.0);
        let f32s = |a: &ArrayD<f64>| a.mapv(|v| v as f32);
        for window in [same, strided] {
            for b in [None, Some(bias.clone())] {
                check(x.clone(), w.clone(), b.clone(), window);
                check(f32s(&x), f32s(&w), b.map(|b| b.mapv(|v| v as f32)), window);
            }
        }
    }

    #[test]
    fn backward_rejects_an_output_gradient_of_another_shape() {
        let (x, w, dy, window) = same_3x3(4, 2, 3, 6);
        let short = dy.slice_axis(Axis(0), (0..3).into());
        let caught = std::panic::catch_unwind(|| {
            let mut scratch = ConvScratch::default();
            conv2d_backward(x.view(), w.view(), short, &window, &mut scratch, [true; 3])
        });
        let message = caught.expect_err("a short output gradient");
        let message = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message
                .contains("conv2d backward: output gradient [3, 3, 6, 6] for input [4, 2, 6, 6]"),
            "{message}"
        );
    }

    #[test]
    fn im2col_reads_the_right_patch() {
        let (x, window, hw) = big();
        let cols = im2col(x.view().into_dyn(), &window, hw);
        // Row (c, ky, kx), column (n, oy, ox) holds x[n, c, oy + ky - 1, ox + kx - 1] (zero outside).
        for &(n, c, oy, ox, ky, kx) in &[
            (0, 0, 0, 0, 0, 0),
            (127, 3, 15, 15, 2, 2),
            (64, 2, 7, 9, 1, 0),
            (5, 1, 0, 8, 0, 2),
        ] {
            let (r, col) = ((c * 3 + ky) * 3 + kx, (n * 16 + oy) * 16 + ox);
            let (iy, ix) = ((oy + ky) as isize - 1, (ox + kx) as isize - 1);
            let want = if (0..16).contains(&iy) && (0..16).contains(&ix) {
                x[[n, c, iy as usize, ix as usize]]
            } else {
                0.0
            };
            assert_eq!(
                cols[[r, col]],
                want,
                "patch ({n}, {c}, {oy}, {ox}) tap ({ky}, {kx})"
            );
        }
    }

    #[test]
    fn im2col_matches_its_definition_for_every_window() {
        // Every entry against the definition: row (c, ky, kx), column
        // (n, oy, ox) holds x[n, c, oy·sy + ky·dy - top, ox·sx + kx·dx - left],
        // zero in the padding. "Same" padding at stride 1 takes the one-copy
        // path; the others (no padding, asymmetric, wider than the kernel's
        // reach, dilated, a non-square kernel, strided) the row-by-row one.
        let x = Array4::from_shape_fn((3, 2, 9, 7), |(n, c, h, w)| {
            (n * 100 + c * 10 + h) as f64 + w as f64 / 10.0 + 1.0
        });
        let pad = |top, bottom, left, right| Padding2d {
            top,
            bottom,
            left,
            right,
        };
        let windows = [
            ((3, 3), (1, 1), pad(1, 1, 1, 1), (1, 1)),
            ((3, 3), (1, 1), pad(0, 0, 0, 0), (1, 1)),
            ((3, 2), (1, 1), pad(2, 0, 1, 3), (1, 1)),
            ((2, 2), (1, 1), pad(4, 4, 4, 4), (1, 1)),
            ((3, 3), (1, 1), pad(2, 2, 2, 2), (2, 2)),
            ((3, 3), (2, 2), pad(1, 1, 1, 1), (1, 1)),
            ((1, 3), (2, 1), pad(0, 1, 2, 0), (1, 2)),
        ];
        let (h, w) = (9, 7);
        for (kernel, stride, padding, dilation) in windows {
            let window = Window2d {
                kernel,
                stride,
                padding,
                dilation,
            };
            let (oh, ow) = window.output_size((h, w)).expect("fits");
            let cols = im2col(x.view().into_dyn(), &window, (oh, ow));
            let (kh, kw) = window.kernel;
            for ((r, col), &got) in cols.indexed_iter() {
                let (c, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
                let (n, oy, ox) = (col / (oh * ow), col / ow % oh, col % ow);
                let iy = (oy * stride.0 + ky * dilation.0) as isize - padding.top as isize;
                let ix = (ox * stride.1 + kx * dilation.1) as isize - padding.left as isize;
                let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                let want = if inside {
                    x[[n, c, iy as usize, ix as usize]]
                } else {
                    0.0
                };
                assert_eq!(got, want, "{window:?}: row {r}, column {col}");
            }
        }
    }

    #[test]
    fn direct_kernels_match_the_gemm_path() {
        // f32 through the direct kernels (where the kernels use AVX-512 or
        // AVX2: CI runs this with both) against the same convolution in f64
        // through im2col and the GEMM: y, dx, dw, db within f32 rounding of
        // sums of at most 1 600 terms (1e-5 of the largest value). Rows of
        // 14, 8, 28 and 17 (on AVX-512 one vector or two; on AVX2 one to four),
        // channel and tap counts that do not fill a block, padding on one
        // side, a valid convolution (its dx over dy bordered by the kernel's
        // reach, where the f64 GEMM path scatters by col2im) and a bias-free
        // one. Every case takes the direct kernels for dx too.
        let cases = [
            // n, c, o, (h, w), kernel, padding (top, bottom, left, right), bias
            (3, 16, 16, (14, 14), (3, 3), (1, 1, 1, 1), true),
            (2, 1, 16, (28, 28), (3, 3), (1, 1, 1, 1), true),
            (2, 6, 16, (12, 12), (5, 5), (0, 0, 0, 0), true),
            (2, 3, 6, (9, 17), (2, 3), (1, 0, 2, 0), false),
        ];
        for (n, c, o, (h, w), kernel, (top, bottom, left, right), bias) in cases {
            let window = Window2d {
                kernel,
                stride: (1, 1),
                padding: Padding2d {
                    top,
                    bottom,
                    left,
                    right,
                },
                dilation: (1, 1),
            };
            let shape = conv2d_shape(&[n, c, h, w], &[o, c, kernel.0, kernel.1], &window);
            let value = |i: usize| ((i * 7919) % 97) as f64 / 97.0 - 0.5;
            let x = ArrayD::from_shape_fn(IxDyn(&[n, c, h, w]), |i| {
                value(i[0] * 1000 + i[1] * 100 + i[2] * 10 + i[3])
            });
            let wt = ArrayD::from_shape_fn(IxDyn(&[o, c, kernel.0, kernel.1]), |i| {
                value(i[0] * 31 + i[1] * 7 + i[2] * 3 + i[3] + 5)
            });
            let b = ndarray::Array1::from_shape_fn(o, |i| value(i + 11));
            let dy = ArrayD::from_shape_fn(IxDyn(&shape[..]), |i| {
                value(i[0] * 500 + i[1] * 50 + i[2] * 5 + i[3] + 3)
            });
            let f32s = |a: &ArrayD<f64>| a.mapv(|v| v as f32);
            let (x32, w32, dy32, b32) = (f32s(&x), f32s(&wt), f32s(&dy), b.mapv(|v| v as f32));
            let (oh, ow) = (shape[2], shape[3]);
            if crate::kernels::cpu::avx2() {
                assert!(Geometry::direct(true, &window, (c, h, w), (o, oh, ow)).is_some());
                let flipped = transposed_window(&window).expect("stride 1, padding in reach");
                assert!(Geometry::direct(true, &flipped, (o, oh, ow), (c, h, w)).is_some());
            }
            let mut s64 = ConvScratch::default();
            let y = conv2d(
                x.view(),
                wt.view(),
                bias.then(|| b.view()),
                &window,
                &mut s64,
            );
            let g = conv2d_backward(x.view(), wt.view(), dy.view(), &window, &mut s64, [true; 3]);
            let mut s32 = ConvScratch::default();
            let y32 = conv2d(
                x32.view(),
                w32.view(),
                bias.then(|| b32.view()),
                &window,
                &mut s32,
            );
            let g32 = conv2d_backward(
                x32.view(),
                w32.view(),
                dy32.view(),
                &window,
                &mut s32,
                [true; 3],
            );
            let mut pairs = vec![("y", y, y32)];
            for (name, (a, b)) in ["dx", "dw", "db"].into_iter().zip(g.into_iter().zip(g32)) {
                pairs.push((name, a.expect("asked"), b.expect("asked")));
            }
            for (name, want, got) in pairs {
                let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let worst = want
                    .iter()
                    .zip(got.iter())
                    .fold(0.0f64, |m, (&a, &b)| m.max((a - b as f64).abs()));
                assert!(
                    worst <= 1e-5 * scale,
                    "{name} of {n}x{c}x{h}x{w} by {kernel:?}: off by {worst:e} (scale {scale})"
                );
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), g> = <x, col2im(g)> for any g; integer values keep sums exact.
        let (x, window, hw) = big();
        let cols = im2col(x.view().into_dyn(), &window, hw);
        let g = Array2::from_shape_fn(cols.raw_dim(), |(i, j)| {
            ((i * 13 + j * 7) % 11) as f64 - 5.0
        });
        let back = col2im(g.view(), [128, 4, 16, 16], &window, hw);
        let lhs: f64 = cols.iter().zip(g.iter()).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(back.iter()).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }

    #[test]
    fn a_batch_too_large_to_keep_matches_its_halves_kept() {
        // 64 samples of 16 channels, 3×3: a 14.5 MB im2col matrix in f64,
        // rebuilt in backward; each half's (7.2 MB) is kept.
        let (x, w, dy, window) = same_3x3(64, 16, 16, 14);
        assert!(144 * 64 * 196 * size_of::<f64>() > KEEP_BYTES);
        assert!(144 * 32 * 196 * size_of::<f64>() <= KEEP_BYTES);
        let run = |x: ArrayViewD<'_, f64>, dy: ArrayViewD<'_, f64>| {
            let mut scratch = ConvScratch::default();
            let y = conv2d(x.view(), w.view(), None, &window, &mut scratch);
            let [dx, dw, _] =
                conv2d_backward(x, w.view(), dy, &window, &mut scratch, [true, true, false]);
            (y, dx.unwrap(), dw.unwrap())
        };
        let (y, dx, dw) = run(x.view(), dy.view());
        let halves = [0..32, 32..64].map(|r| {
            run(
                x.slice_axis(Axis(0), r.clone().into()),
                dy.slice_axis(Axis(0), r.into()),
            )
        });
        for (k, (yh, dxh, _)) in halves.iter().enumerate() {
            let r = (k * 32..(k + 1) * 32).into();
            assert_close(&y.slice_axis(Axis(0), r).to_owned(), yh);
            assert_close(&dx.slice_axis(Axis(0), r).to_owned(), dxh);
        }
        assert_close(&dw, &(&halves[0].2 + &halves[1].2));
    }

    #[test]
    fn input_gradient_by_the_flipped_kernel_matches_col2im() {
        // Same-size outputs take the transposed form; col2im of `wᵀ · dy` is
        // the definition it must agree with, for odd and even kernels,
        // asymmetric padding and dilation.
        let windows = [
            ((3, 3), Padding2d::uniform(1), (1, 1)),
            ((5, 5), Padding2d::uniform(2), (1, 1)),
            ((3, 3), Padding2d::uniform(2), (2, 2)),
            (
                (4, 2),
                Padding2d {
                    top: 1,
                    bottom: 2,
                    left: 0,
                    right: 1,
                },
                (1, 1),
            ),
        ];
        for (kernel, padding, dilation) in windows {
            let window = Window2d {
                kernel,
                stride: (1, 1),
                padding,
                dilation,
            };
            let (n, c, o, h, w_in) = (3, 4, 5, 9, 7);
            assert_eq!(window.output_size((h, w_in)), Some((h, w_in)));
            assert!(transposed_window(&window).is_some());
            let x = Array4::from_shape_fn((n, c, h, w_in), |(a, b, y, z)| {
                ((a * 7 + b * 5 + y * 3 + z) % 17) as f64 - 8.0
            })
            .into_dyn();
            let w = Array4::from_shape_fn((o, c, kernel.0, kernel.1), |(a, b, y, z)| {
                ((a * 3 + b * 5 + y * 7 + z) % 13) as f64 - 6.0
            })
            .into_dyn();
            let dy = Array4::from_shape_fn((n, o, h, w_in), |(a, b, y, z)| {
                ((a + b * 3 + y * 5 + z * 7) % 11) as f64 - 5.0
            })
            .into_dyn();
            let mut scratch = ConvScratch::default();
            let [dx, _, _] = conv2d_backward(
                x.view(),
                w.view(),
                dy.view(),
                &window,
                &mut scratch,
                [true, false, false],
            );
            let wm = w
                .view()
                .into_shape_with_order((o, c * kernel.0 * kernel.1))
                .unwrap();
            let g = dy
                .view()
                .permuted_axes(vec![1, 0, 2, 3])
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((o, n * h * w_in))
                .unwrap();
            let want = col2im(wm.t().dot(&g).view(), [n, c, h, w_in], &window, (h, w_in));
            // Integer values: both sums are exact.
            assert_eq!(dx.unwrap(), want, "{window:?}");
        }
    }

    #[test]
    fn kept_matrices_are_read_in_the_forward_chunks_when_channels_grow() {
        // 2 → 8 channels, same padding: the transposed input gradient's
        // matrix is 4× x's, so fresh backward chunks are smaller than the
        // forward's; the kept matrices must still be read in the forward's.
        let (x, w, dy, window) = same_3x3(64, 2, 8, 16);
        let need = [true, true, false];
        let mut kept = ConvScratch::default();
        conv2d(x.view(), w.view(), None, &window, &mut kept);
        let [dx, dw, _] = conv2d_backward(x.view(), w.view(), dy.view(), &window, &mut kept, need);
        let mut fresh = ConvScratch::default();
        let [dx2, dw2, _] =
            conv2d_backward(x.view(), w.view(), dy.view(), &window, &mut fresh, need);
        for (a, b) in [(dx, dx2), (dw, dw2)] {
            assert_close(&a.unwrap(), &b.unwrap());
        }
    }
}
