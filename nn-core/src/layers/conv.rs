//! `Conv2d`: 2-D convolution over NCHW images with PyTorch's weight layout.

use ndarray::{ArrayD, ArrayViewD, Ix1, IxDyn};
use rand::Rng;

use super::{ensure_shape, grad_buffer, no_input_grad, Layer};
use crate::activation::{Activation, Linear};
use crate::init::Initializer;
use crate::kernels::conv::{
    conv2d, conv2d_backward_into, conv2d_into, conv2d_shape, ConvGrads, ConvScratch, Padding2d,
    Window2d,
};
use crate::tape::{Param, Var};
use crate::Float;

/// How a convolution or pooling layer pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// None (Keras's `"valid"`).
    Valid,
    /// Enough for `ceil(in / stride)` outputs (Keras's and PyTorch's `"same"`).
    Same,
    /// `(rows, cols)` on each side.
    Explicit(usize, usize),
}

impl Padding {
    /// The padding for an input of `hw` with this kernel, stride and dilation.
    pub fn resolve(
        self,
        hw: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
    ) -> Padding2d {
        match self {
            Padding::Valid => Padding2d::default(),
            Padding::Same => Padding2d::same(hw, kernel, stride, dilation),
            Padding::Explicit(r, c) => Padding2d::symmetric(r, c),
        }
    }
}

/// Convolution from `IN_C` to `OUT_C` channels with a `KH×KW` kernel, then `A`.
///
/// Parameters: `weight` `[OUT_C, IN_C, KH, KW]` and `bias` `[OUT_C]`, PyTorch's
/// `nn.Conv2d` layout and names.
pub struct Conv2d<
    T: Float,
    const IN_C: usize,
    const OUT_C: usize,
    const KH: usize,
    const KW: usize,
    A: Activation = Linear,
> {
    /// `[OUT_C, IN_C, KH, KW]`.
    pub weight: Param<T>,
    /// `[OUT_C]`, if the layer has one.
    pub bias: Option<Param<T>>,
    /// Applied after the convolution.
    pub activation: A,
    /// Step between windows.
    pub stride: (usize, usize),
    /// Border handling.
    pub padding: Padding,
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
    scratch: ConvScratch<T>,
    z: ArrayD<T>,
    y: ArrayD<T>,
    dz: ArrayD<T>,
    dx: ArrayD<T>,
}

impl<
        T: Float,
        const IN_C: usize,
        const OUT_C: usize,
        const KH: usize,
        const KW: usize,
        A: Activation,
    > Conv2d<T, IN_C, OUT_C, KH, KW, A>
{
    /// A layer with the given geometry and initializers (Keras: glorot_uniform kernel, zero bias).
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        activation: A,
        stride: (usize, usize),
        padding: Padding,
        dilation: (usize, usize),
        use_bias: bool,
        kernel_init: Initializer,
        bias_init: Initializer,
        rng: &mut R,
    ) -> Self {
        let weight = Param::new(kernel_init.init::<T, R>(&[OUT_C, IN_C, KH, KW], rng));
        let bias = use_bias.then(|| Param::new(bias_init.init::<T, R>(&[OUT_C], rng)));
        let empty = || ArrayD::zeros(IxDyn(&[0]));
        Conv2d {
            weight,
            bias,
            activation,
            stride,
            padding,
            dilation,
            scratch: ConvScratch::default(),
            z: empty(),
            y: empty(),
            dz: empty(),
            dx: empty(),
        }
    }

    /// The window for an input of `hw`.
    pub fn window(&self, hw: (usize, usize)) -> Window2d {
        Window2d {
            kernel: (KH, KW),
            stride: self.stride,
            padding: self
                .padding
                .resolve(hw, (KH, KW), self.stride, self.dilation),
            dilation: self.dilation,
        }
    }

    fn check(&self, x: &[usize]) -> (usize, usize) {
        assert!(
            x.len() == 4 && x[1] == IN_C,
            "Conv2d: expected input [batch, {IN_C}, height, width], got {x:?}"
        );
        (x[2], x[3])
    }
}

impl<
        T: Float,
        const IN_C: usize,
        const OUT_C: usize,
        const KH: usize,
        const KW: usize,
        A: Activation,
    > Layer<T> for Conv2d<T, IN_C, OUT_C, KH, KW, A>
{
    fn type_name(&self) -> &'static str {
        "Conv2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let &[c, h, w] = input else {
            return Err(format!(
                "Conv2d expects (channels, height, width), got {input:?}"
            ));
        };
        if c != IN_C {
            return Err(format!("Conv2d expects {IN_C} channels, got {c}"));
        }
        let (oh, ow) = self
            .window((h, w))
            .output_size((h, w))
            .ok_or_else(|| format!("kernel {KH}x{KW} does not fit {h}x{w}"))?;
        Ok(vec![OUT_C, oh, ow])
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let hw = self.check(&x.shape());
        let tape = x.tape();
        let bias = self.bias.as_ref().map(|b| tape.param(b));
        let z = x.conv2d(&tape.param(&self.weight), bias.as_ref(), self.window(hw));
        if self.activation.is_identity() {
            z
        } else {
            self.activation.apply(&z)
        }
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let hw = self.check(x.shape());
        let window = self.window(hw);
        {
            let w = self.weight.value();
            let b = self.bias.as_ref().map(|b| b.value());
            let shape = conv2d_shape(x.shape(), w.shape(), &window);
            ensure_shape(&mut self.z, &shape);
            conv2d_into(
                x,
                w.view(),
                b.as_ref()
                    .map(|b| b.view().into_dimensionality::<Ix1>().expect("1-D")),
                &window,
                &mut self.scratch,
                self.z.view_mut(),
            );
        }
        if self.activation.is_identity() {
            return self.z.view();
        }
        ensure_shape(&mut self.y, self.z.shape());
        self.activation
            .forward_into(self.z.view(), self.y.view_mut());
        self.y.view()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        if self.activation.is_identity() {
            self.z.view()
        } else {
            self.y.view()
        }
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        let dz = if self.activation.is_identity() {
            dy
        } else {
            ensure_shape(&mut self.dz, dy.shape());
            self.activation
                .backward_into(self.z.view(), self.y.view(), dy, self.dz.view_mut());
            self.dz.view()
        };
        let window = self.window((x.shape()[2], x.shape()[3]));
        if need_input_grad {
            ensure_shape(&mut self.dx, x.shape());
        }
        let mut dw = grad_buffer(&self.weight);
        let mut db = self.bias.as_ref().map(grad_buffer);
        conv2d_backward_into(
            x,
            self.weight.value().view(),
            dz,
            &window,
            &mut self.scratch,
            ConvGrads {
                dx: need_input_grad.then(|| self.dx.view_mut()),
                dw: Some(dw.view_mut()),
                db: db.as_mut().map(|d| d.view_mut()),
            },
        );
        if need_input_grad {
            self.dx.view()
        } else {
            no_input_grad(&self.dx)
        }
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let hw = self.check(x.shape());
        let w = self.weight.value();
        let b = self.bias.as_ref().map(|b| b.value());
        let z = conv2d(
            x,
            w.view(),
            b.as_ref()
                .map(|b| b.view().into_dimensionality::<Ix1>().expect("1-D")),
            &self.window(hw),
            &mut ConvScratch::default(),
        );
        if self.activation.is_identity() {
            z
        } else {
            self.activation.forward(z.view())
        }
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
}
