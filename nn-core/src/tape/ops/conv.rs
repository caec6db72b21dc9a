//! Convolution and pooling on the tape.

use std::cell::RefCell;

use ndarray::{ArrayD, ArrayView1};

use crate::kernels::conv::{self as k, Window2d};
use crate::kernels::pool;
use crate::tape::var::checked;
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
    window: Window2d,
}

unary_op!(MaxPool, |op| "max_pool2d", |x, _y, dy| {
    pool::max_pool2d_backward(dy.view(), op.index.view(), x.shape(), &op.window)
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
    ///
    /// # Panics
    /// If the shapes do not fit one another or the window, naming `conv2d`
    /// and the shapes (at the caller's line).
    #[track_caller]
    pub fn conv2d(&self, weight: &Var<T>, bias: Option<&Var<T>>, window: Window2d) -> Var<T> {
        let b = bias.map(|b| b.shape());
        checked(self.with_shapes(weight, |x, w| conv2d_fits(x, w, b, &window)));
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        self.tape().record(&inputs, |v| {
            let b: Option<ArrayView1<'_, T>> = v.get(2).map(|b| {
                b.view()
                    .into_dimensionality()
                    .expect("conv2d: the bias was checked to be 1-D")
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
    ///
    /// # Panics
    /// If the input is not NCHW or the window does not fit it (at the
    /// caller's line).
    #[track_caller]
    pub fn max_pool2d(&self, window: Window2d) -> Var<T> {
        checked(self.with_value(|x| pool_fits("max_pool2d", x.shape(), Some(&window))));
        self.tape().record(&[self], |v| {
            let (y, index) = pool::max_pool2d(v[0].view(), &window);
            (y, MaxPool { index, window })
        })
    }

    /// Average pooling over `window` (padding included in the divisor, as PyTorch's default).
    ///
    /// # Panics
    /// If the input is not NCHW or the window does not fit it (at the
    /// caller's line).
    #[track_caller]
    pub fn avg_pool2d(&self, window: Window2d) -> Var<T> {
        checked(self.with_value(|x| pool_fits("avg_pool2d", x.shape(), Some(&window))));
        self.tape().record(&[self], |v| {
            (pool::avg_pool2d(v[0].view(), &window), AvgPool(window))
        })
    }

    /// Mean over height and width: `[n, c, h, w]` → `[n, c]`.
    ///
    /// # Panics
    /// If the input is not NCHW (at the caller's line).
    #[track_caller]
    pub fn global_avg_pool(&self) -> Var<T> {
        checked(self.with_value(|x| pool_fits("global_avg_pool", x.shape(), None)));
        self.tape().record(&[self], |v| {
            (pool::global_avg_pool(v[0].view()), GlobalAvgPool)
        })
    }
}

/// Whether a convolution's operands fit one another and the window (the
/// kernel's own checks, made before recording so a panic names the user's line).
fn conv2d_fits(
    x: &[usize],
    w: &[usize],
    b: Option<Vec<usize>>,
    window: &Window2d,
) -> Result<(), String> {
    let (&[_, c, h, width], &[oc, ic, kh, kw]) = (x, w) else {
        return Err(format!(
            "conv2d: expected input [n, c, h, w] and weight [out, in, kh, kw], got {x:?} and {w:?}"
        ));
    };
    if c != ic {
        return Err(format!(
            "conv2d: input {x:?} has {c} channels but weight {w:?} expects {ic}"
        ));
    }
    if window.kernel != (kh, kw) {
        return Err(format!(
            "conv2d: window kernel {:?} does not match weight {w:?}",
            window.kernel
        ));
    }
    if window.output_size((h, width)).is_none() {
        return Err(format!(
            "conv2d: kernel {kh}x{kw} (dilation {:?}) does not fit input {x:?} with padding {:?}",
            window.dilation, window.padding
        ));
    }
    match b {
        Some(b) if b != [oc] => Err(format!("conv2d: bias {b:?} does not match weight {w:?}")),
        _ => Ok(()),
    }
}

/// Whether a pooling input is NCHW and (when given) the window fits it.
fn pool_fits(op: &str, x: &[usize], window: Option<&Window2d>) -> Result<(), String> {
    let &[n, c, h, w] = x else {
        return Err(format!(
            "{op}: expected an NCHW input [batch, channels, height, width], got {x:?}"
        ));
    };
    match window.and_then(|window| pool::window_problem(op, [n, c, h, w], window)) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

crate::instances!(Var: conv2d, max_pool2d, avg_pool2d, global_avg_pool);
