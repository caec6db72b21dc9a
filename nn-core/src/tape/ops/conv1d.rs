//! One-dimensional convolution and pooling on `[batch, channels, length]`
//! sequences (PyTorch's `F.conv1d`, `F.max_pool1d`, `F.avg_pool1d`): the 2-D
//! ops on a one-row image, so their gradients are those ops'.

use crate::kernels::conv::{Padding2d, Window2d};
use crate::tape::Var;
use crate::Float;

/// A window along a sequence: its length, stride, padding on each end and
/// dilation (PyTorch's `kernel_size`, `stride`, `padding`, `dilation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window1d {
    /// Taps.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Zeros (or, for max pooling, −∞) before the start and after the end.
    pub padding: usize,
    /// Spacing between taps.
    pub dilation: usize,
}

impl Window1d {
    /// A window of `kernel` taps, stride 1, no padding, no dilation.
    pub fn new(kernel: usize) -> Self {
        Window1d {
            kernel,
            stride: 1,
            padding: 0,
            dilation: 1,
        }
    }

    /// The same window as one row of a 2-D one.
    fn as_2d(self) -> Window2d {
        Window2d {
            kernel: (1, self.kernel),
            stride: (1, self.stride),
            padding: Padding2d::symmetric(0, self.padding),
            dilation: (1, self.dilation),
        }
    }
}

/// The three axes of a `[batch, channels, length]` input, or a panic naming
/// `op` and the shape.
#[track_caller]
fn ncl<T: Float>(op: &str, x: &Var<T>) -> [usize; 3] {
    match x.shape()[..] {
        [n, c, l] => [n, c, l],
        ref s => panic!("{op}: expected an input [batch, channels, length], got {s:?}"),
    }
}

impl<T: Float> Var<T> {
    /// 1-D convolution (cross-correlation, as PyTorch's `F.conv1d`) of a
    /// `[batch, in, length]` input with a `[out, in, kernel]` weight and an
    /// optional `[out]` bias.
    ///
    /// # Panics
    /// If the shapes do not fit or the window does not fit the input (at
    /// the caller's line).
    #[track_caller]
    pub fn conv1d(&self, weight: &Var<T>, bias: Option<&Var<T>>, window: Window1d) -> Var<T> {
        let [n, c, l] = ncl("conv1d", self);
        let w = weight.shape();
        let &[o, i, k] = w.as_slice() else {
            panic!("conv1d: the weight must be [out, in, kernel], got {w:?}");
        };
        assert!(
            i == c && k == window.kernel,
            "conv1d: weight {w:?} does not fit input [{n}, {c}, {l}] with a window of {}",
            window.kernel
        );
        let y = self.reshape(&[n, c, 1, l]).conv2d(
            &weight.reshape(&[o, i, 1, k]),
            bias,
            window.as_2d(),
        );
        let out = y.shape()[3];
        y.reshape(&[n, o, out])
    }

    /// 1-D max pooling (PyTorch's `F.max_pool1d`; padding counts as −∞).
    ///
    /// # Panics
    /// If the input is not `[batch, channels, length]` or the window does not
    /// fit it (at the caller's line).
    #[track_caller]
    pub fn max_pool1d(&self, window: Window1d) -> Var<T> {
        self.pool1d("max_pool1d", window, true)
    }

    /// 1-D average pooling (PyTorch's `F.avg_pool1d`, padding counted in
    /// the divisor as its default).
    ///
    /// # Panics
    /// If the input is not `[batch, channels, length]` or the window does not
    /// fit it (at the caller's line).
    #[track_caller]
    pub fn avg_pool1d(&self, window: Window1d) -> Var<T> {
        self.pool1d("avg_pool1d", window, false)
    }

    /// Max (`max`) or average pooling as the 2-D op on a one-row image.
    #[track_caller]
    fn pool1d(&self, op: &str, window: Window1d, max: bool) -> Var<T> {
        let [n, c, l] = ncl(op, self);
        let image = self.reshape(&[n, c, 1, l]);
        let y = match max {
            true => image.max_pool2d(window.as_2d()),
            false => image.avg_pool2d(window.as_2d()),
        };
        let out = y.shape()[3];
        y.reshape(&[n, c, out])
    }
}

crate::instances!(Var: conv1d, max_pool1d, avg_pool1d, pool1d);
