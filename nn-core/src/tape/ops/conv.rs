//! Convolution and pooling on the tape.

use std::cell::RefCell;

use ndarray::{ArrayD, ArrayView1};

use crate::kernels::conv::{self as k, Window2d};
use crate::kernels::pool;
use crate::tape::{Op, Var};
use crate::Float;

/// Keeps the forward's scratch, so backward reuses its im2col matrices.
struct Conv2d<T> {
    window: Window2d,
    scratch: RefCell<k::ConvScratch<T>>,
}

impl<T: Float> Op<T> for Conv2d<T> {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let need = [need[0], need[1], x.len() == 3 && need[2]];
        let [dx, dw, db] = k::conv2d_backward(
            x[0].view(),
            x[1].view(),
            dy.view(),
            &self.window,
            &mut self.scratch.borrow_mut(),
            need,
        );
        let mut out = vec![dx, dw];
        if x.len() == 3 {
            out.push(db);
        }
        out
    }
}

struct MaxPool {
    index: ArrayD<usize>,
}

unary_op!(MaxPool, |op| "max_pool2d", |x, _y, dy| {
    pool::max_pool2d_backward(dy.view(), op.index.view(), x.shape())
});

struct AvgPool(Window2d);

unary_op!(AvgPool, |op| "avg_pool2d", |x, _y, dy| {
    pool::avg_pool2d_backward(dy.view(), x.shape(), &op.0)
});

struct GlobalAvgPool;

unary_op!(GlobalAvgPool, |op| "global_avg_pool", |x, _y, dy| {
    pool::global_avg_pool_backward(dy.view(), x.shape())
});

impl<T: Float> Var<T> {
    /// 2-D convolution of an NCHW input with weights `[out, in, kh, kw]` (PyTorch's
    /// layout), an optional bias `[out]`, and the stride, padding and dilation of
    /// `window` (whose kernel must match the weight's).
    pub fn conv2d(&self, weight: &Var<T>, bias: Option<&Var<T>>, window: Window2d) -> Var<T> {
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.tape().record(&inputs, |v| {
            let b: Option<ArrayView1<'_, T>> = v.get(2).map(|b| {
                b.view()
                    .into_dimensionality()
                    .unwrap_or_else(|_| panic!("conv2d: bias must be 1-D, got {:?}", b.shape()))
            });
            let mut scratch = k::ConvScratch::default();
            let y = k::conv2d(v[0].view(), v[1].view(), b, &window, &mut scratch);
            (
                y,
                Conv2d {
                    window,
                    scratch: RefCell::new(scratch),
                },
            )
        })
    }

    /// Max pooling over `window` (padding counts as -∞).
    pub fn max_pool2d(&self, window: Window2d) -> Var<T> {
        self.tape().record(&[self], |v| {
            let (y, index) = pool::max_pool2d(v[0].view(), &window);
            (y, MaxPool { index })
        })
    }

    /// Average pooling over `window` (padding included in the divisor, as PyTorch's default).
    pub fn avg_pool2d(&self, window: Window2d) -> Var<T> {
        self.tape().record(&[self], |v| {
            (pool::avg_pool2d(v[0].view(), &window), AvgPool(window))
        })
    }

    /// Mean over height and width: `[n, c, h, w]` → `[n, c]`.
    pub fn global_avg_pool(&self) -> Var<T> {
        self.tape().record(&[self], |v| {
            (pool::global_avg_pool(v[0].view()), GlobalAvgPool)
        })
    }
}
