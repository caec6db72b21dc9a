//! Pooling layers: `MaxPool2d`, `AvgPool2d`, `GlobalAvgPool`.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{Layer, Share, Workspace};
use crate::kernels::conv::{Padding2d, Window2d};
use crate::kernels::pool;
use crate::tape::Var;
use crate::Float;

/// Which reduction a [`Pool2d`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The window's maximum.
    Max,
    /// The window's mean (padding included in the divisor).
    Avg,
}

/// Max or average pooling over `kernel` windows with a stride (by default the
/// kernel, as in Keras and PyTorch) and symmetric padding.
pub struct Pool2d<T: Float> {
    /// Max or average.
    pub kind: PoolKind,
    /// The window's geometry.
    pub window: Window2d,
    /// Where each window's maximum was (max pooling).
    index: ArrayD<usize>,
    buf: Workspace<T>,
}

/// `MaxPool2d` in a model.
pub type MaxPool2d<T> = Pool2d<T>;
/// `AvgPool2d` in a model.
pub type AvgPool2d<T> = Pool2d<T>;

impl<T: Float> Pool2d<T> {
    /// Pooling with `kernel`, `stride` and symmetric `padding` (rows, cols).
    pub fn new(
        kind: PoolKind,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Self {
        let window = Window2d {
            kernel,
            stride,
            padding: Padding2d::symmetric(padding.0, padding.1),
            dilation: (1, 1),
        };
        Pool2d {
            kind,
            window,
            index: ArrayD::zeros(IxDyn(&[0])),
            buf: Workspace::new(),
        }
    }

    /// Pooling with Keras's `padding="same"` for an input of `(height,
    /// width)`: `ceil(input / stride)` outputs, an odd total padding's extra
    /// row and column at the bottom and right. (Max pooling: the padding is
    /// −∞; for an average it would count in the divisor, where Keras's
    /// leaves it out, so `sequential!` offers it for `MaxPool2d` only.)
    pub fn same(
        kind: PoolKind,
        kernel: (usize, usize),
        stride: (usize, usize),
        input: (usize, usize),
    ) -> Self {
        let mut pool = Pool2d::new(kind, kernel, stride, (0, 0));
        pool.window.padding = Padding2d::same(input, kernel, stride, (1, 1));
        pool
    }

    fn run(&self, x: ArrayViewD<'_, T>) -> (ArrayD<T>, Option<ArrayD<usize>>) {
        match self.kind {
            PoolKind::Max => {
                let (y, i) = pool::max_pool2d(x, &self.window);
                (y, Some(i))
            }
            PoolKind::Avg => (pool::avg_pool2d(x, &self.window), None),
        }
    }
}

impl<T: Float> Share for Pool2d<T> {
    fn share(&self) -> Self {
        Pool2d {
            kind: self.kind,
            window: self.window,
            index: ArrayD::zeros(IxDyn(&[0])),
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Layer<T> for Pool2d<T> {
    fn type_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPool2d",
            PoolKind::Avg => "AvgPool2d",
        }
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let &[c, h, w] = input else {
            return Err(format!(
                "pooling expects (channels, height, width), got {input:?}"
            ));
        };
        let (oh, ow) = self
            .window
            .output_size((h, w))
            .ok_or_else(|| format!("window {:?} does not fit {h}x{w}", self.window.kernel))?;
        Ok(vec![c, oh, ow])
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        match self.kind {
            PoolKind::Max => x.max_pool2d(self.window),
            PoolKind::Avg => x.avg_pool2d(self.window),
        }
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        // A wrong input leaves the shape empty; the kernel then panics naming it.
        let shape = match *x.shape() {
            [n, c, h, w] => {
                let (oh, ow) = self.window.output_size((h, w)).unwrap_or((0, 0));
                [n, c, oh, ow]
            }
            _ => [0; 4],
        };
        let y = self.buf.output_mut(&shape);
        match self.kind {
            PoolKind::Max => {
                if self.index.shape() != shape {
                    self.index = ArrayD::zeros(IxDyn(&shape));
                }
                pool::max_pool2d_into(x, &self.window, y, self.index.view_mut());
            }
            PoolKind::Avg => pool::avg_pool2d_into(x, &self.window, y),
        }
        self.buf.output()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        self.buf
            .input_grad(need_input_grad, x.shape(), |dx| match self.kind {
                PoolKind::Max => {
                    pool::max_pool2d_backward_into(dy, self.index.view(), &self.window, dx)
                }
                PoolKind::Avg => pool::avg_pool2d_backward_into(dy, &self.window, dx),
            })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.run(x).0
    }
}

/// Mean over height and width: `(c, h, w)` → `(c)`.
pub struct GlobalAvgPool<T: Float> {
    buf: Workspace<T>,
}

impl<T: Float> Default for GlobalAvgPool<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> GlobalAvgPool<T> {
    /// A global average pooling layer.
    pub fn new() -> Self {
        GlobalAvgPool {
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Share for GlobalAvgPool<T> {
    fn share(&self) -> Self {
        Self::new()
    }
}

impl<T: Float> Layer<T> for GlobalAvgPool<T> {
    fn type_name(&self) -> &'static str {
        "GlobalAvgPool"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            &[c, _, _] => Ok(vec![c]),
            _ => Err(format!(
                "GlobalAvgPool expects (channels, height, width), got {input:?}"
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.global_avg_pool()
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let y = self.buf.output_mut(&x.shape()[..2]);
        pool::global_avg_pool_into(x, y);
        self.buf.output()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        self.buf.input_grad(need_input_grad, x.shape(), |dx| {
            pool::global_avg_pool_backward_into(dy, dx)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        pool::global_avg_pool(x)
    }
}

crate::instances!(impl Layer for GlobalAvgPool: forward, forward_train, backward, predict);
