//! 2-D convolution (NCHW, weights `[out, in, kh, kw]` as in PyTorch) by
//! im2col + one GEMM for the whole batch, forward beside backward.

use super::gemm::gemm;
use ndarray::{
    Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, Ix2, IxDyn,
};

use crate::Float;

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
        let total = |i: usize, k: usize, s: usize, d: usize| {
            let out = i.div_ceil(s);
            ((out - 1) * s + d * (k - 1) + 1).saturating_sub(i)
        };
        let (r, c) = (
            total(input.0, kernel.0, stride.0, dilation.0),
            total(input.1, kernel.1, stride.1, dilation.1),
        );
        Padding2d {
            top: r / 2,
            bottom: r - r / 2,
            left: c / 2,
            right: c - c / 2,
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
        let one = |i: usize, k: usize, s: usize, d: usize, p: usize| {
            let span = d * (k - 1) + 1;
            (i + p >= span && s > 0).then(|| (i + p - span) / s + 1)
        };
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

/// im2col: `[c·kh·kw, n·oh·ow]`, column `(n, oy, ox)` holding the patch that
/// output position reads (zeros in the padding).
pub fn im2col<T: Float>(
    x: ArrayViewD<'_, T>,
    window: &Window2d,
    out_hw: (usize, usize),
) -> Array2<T> {
    let (n, c, h, w) = dims4("im2col", &x);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let (kh, kw) = window.kernel;
    let (oh, ow) = out_hw;
    let p = window.padding;
    let mut cols = Array2::zeros((c * kh * kw, n * oh * ow));
    for ci in 0..c {
        for ky in 0..kh {
            for kx in 0..kw {
                let mut row = cols.row_mut((ci * kh + ky) * kw + kx);
                let row = row.as_slice_mut().expect("contiguous row");
                for ni in 0..n {
                    let plane = &xs[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
                    for (oy, iy) in taps(oh, window.stride.0, ky * window.dilation.0, p.top, h) {
                        let Some(iy) = iy else { continue };
                        let src = &plane[iy * w..(iy + 1) * w];
                        let dst = &mut row[(ni * oh + oy) * ow..(ni * oh + oy + 1) * ow];
                        for (ox, ix) in taps(ow, window.stride.1, kx * window.dilation.1, p.left, w)
                        {
                            if let Some(ix) = ix {
                                dst[ox] = src[ix];
                            }
                        }
                    }
                }
            }
        }
    }
    cols
}

/// col2im: the adjoint of [`im2col`], adding each column entry back to the
/// input position it was read from.
pub fn col2im<T: Float>(
    cols: ArrayView2<'_, T>,
    shape: [usize; 4],
    window: &Window2d,
    out_hw: (usize, usize),
) -> ArrayD<T> {
    let [n, c, h, w] = shape;
    let (kh, kw) = window.kernel;
    let (oh, ow) = out_hw;
    let p = window.padding;
    let mut dx = vec![T::zero(); n * c * h * w];
    let cols = cols.as_standard_layout();
    for ci in 0..c {
        for ky in 0..kh {
            for kx in 0..kw {
                let row = cols.row((ci * kh + ky) * kw + kx);
                let row = row.as_slice().expect("contiguous row");
                for ni in 0..n {
                    let plane = &mut dx[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
                    for (oy, iy) in taps(oh, window.stride.0, ky * window.dilation.0, p.top, h) {
                        let Some(iy) = iy else { continue };
                        let src = &row[(ni * oh + oy) * ow..(ni * oh + oy + 1) * ow];
                        let dst = &mut plane[iy * w..(iy + 1) * w];
                        for (ox, ix) in taps(ow, window.stride.1, kx * window.dilation.1, p.left, w)
                        {
                            if let Some(ix) = ix {
                                dst[ix] += src[ox];
                            }
                        }
                    }
                }
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), dx).expect("sizes match")
}

/// `[oc, n·oh·ow]` (the GEMM's layout) to NCHW.
fn to_nchw<T: Float>(y: Array2<T>, shape: [usize; 4]) -> ArrayD<T> {
    let [n, oc, oh, ow] = shape;
    y.into_shape_with_order((oc, n, oh, ow))
        .expect("sizes match")
        .permuted_axes([1, 0, 2, 3])
        .as_standard_layout()
        .into_owned()
        .into_dyn()
}

/// NCHW to `[oc, n·oh·ow]`.
fn from_nchw<T: Float>(dy: ArrayViewD<'_, T>) -> Array2<T> {
    let (n, oc, oh, ow) = dims4("conv2d backward", &dy);
    dy.permuted_axes(IxDyn(&[1, 0, 2, 3]))
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((oc, n * oh * ow))
        .expect("sizes match")
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

/// Forward: `y = w ⋆ x + b`, returning the output and the im2col matrix
/// (which backward reuses for the weight gradient).
pub fn conv2d<T: Float>(
    x: ArrayViewD<'_, T>,
    w: ArrayViewD<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    window: &Window2d,
) -> (ArrayD<T>, Array2<T>) {
    let shape = conv2d_shape(x.shape(), w.shape(), window);
    let [_, oc, oh, ow] = shape;
    let cols = im2col(x, window, (oh, ow));
    let w = w.as_standard_layout();
    let wm = weight_matrix(&w);
    let mut y = Array2::zeros((oc, cols.ncols()));
    if let Some(b) = b {
        assert!(
            b.len() == oc,
            "conv2d: bias of {} for {oc} output channels",
            b.len()
        );
        for (mut row, &bv) in y.rows_mut().into_iter().zip(b.iter()) {
            row.fill(bv);
        }
    }
    gemm_into(wm, cols.view(), y.view_mut(), b.is_some());
    (to_nchw(y, shape), cols)
}

fn gemm_into<T: Float>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    mut c: ArrayViewMut2<'_, T>,
    accumulate: bool,
) {
    let beta = if accumulate { T::one() } else { T::zero() };
    gemm(T::one(), &a, &b, beta, &mut c);
}

/// Gradients of [`conv2d`] from the output gradient `dy` and the forward's
/// im2col matrix: `(dx, dw, db)`, each only when asked.
pub fn conv2d_backward<T: Float>(
    x_shape: &[usize],
    w: ArrayViewD<'_, T>,
    cols: ArrayView2<'_, T>,
    dy: ArrayViewD<'_, T>,
    window: &Window2d,
    need: [bool; 3],
) -> [Option<ArrayD<T>>; 3] {
    let dy_mat = from_nchw(dy.view());
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let w = w.as_standard_layout();
    let wm = weight_matrix(&w);
    let dx = need[0].then(|| {
        let mut dcols = Array2::zeros((wm.ncols(), dy_mat.ncols()));
        gemm(T::one(), &wm.t(), &dy_mat, T::zero(), &mut dcols);
        let s = [x_shape[0], x_shape[1], x_shape[2], x_shape[3]];
        col2im(dcols.view(), s, window, (oh, ow))
    });
    let dw = need[1].then(|| {
        let mut dwm = Array2::zeros(wm.raw_dim());
        gemm(T::one(), &dy_mat, &cols.t(), T::zero(), &mut dwm);
        dwm.into_shape_with_order(IxDyn(w.shape()))
            .expect("weight shape")
    });
    let db = need[2].then(|| dy_mat.sum_axis(Axis(1)).into_dyn());
    [dx, dw, db]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

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
}
