//! `Conv2d`: 2-D convolution over NCHW images with PyTorch's weight layout.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Ix1};
use rand::Rng;

use super::{trainable_grad_buffer, Layer, Share, Workspace};
use crate::activation::{ActivationFn, Linear};
use crate::init::Initializer;
use crate::kernels::conv::{
    conv2d_backward_into, conv2d_into, conv2d_relu_into, conv2d_shape, ConvGrads, ConvScratch,
    Padding2d, Window2d,
};
use crate::kernels::owned::owned;
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
    A: ActivationFn = Linear,
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
    /// The output of the last `forward_train`, the pre-activation, and their
    /// gradients.
    buf: Workspace<T>,
}

impl<
        T: Float,
        const IN_C: usize,
        const OUT_C: usize,
        const KH: usize,
        const KW: usize,
        A: ActivationFn,
    > Conv2d<T, IN_C, OUT_C, KH, KW, A>
{
    /// A layer with Keras's defaults and the given padding, in one line as
    /// PyTorch's `nn.Conv2d(IN_C, OUT_C, K, padding=..)`: stride 1, no
    /// dilation, the activation's default, a glorot_uniform kernel and a zero
    /// bias. Channels and kernel size are the type's.
    ///
    /// ```
    /// use nn_core::activation::Relu;
    /// use nn_core::layers::{Conv2d, Layer, Padding};
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let conv: Conv2d<f32, 1, 16, 3, 3, Relu> = Conv2d::init(Padding::Same, &mut rng);
    /// assert_eq!(conv.output_shape(&[1, 28, 28]), Ok(vec![16, 28, 28]));
    /// assert_eq!(conv.param_count(), 16 * 9 + 16);
    /// ```
    pub fn init<R: Rng + ?Sized>(padding: Padding, rng: &mut R) -> Self
    where
        A: Default,
    {
        Self::new(
            A::default(),
            (1, 1),
            padding,
            (1, 1),
            true,
            Initializer::GlorotUniform,
            Initializer::Zeros,
            rng,
        )
    }

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
        let bias = use_bias
            .then(|| Param::new(bias_init.init_bias::<T, R>(&[OUT_C, IN_C, KH, KW], OUT_C, rng)));
        Conv2d {
            weight,
            bias,
            activation,
            stride,
            padding,
            dilation,
            scratch: ConvScratch::default(),
            buf: Workspace::new(),
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
        A: ActivationFn,
    > Share for Conv2d<T, IN_C, OUT_C, KH, KW, A>
{
    /// Shares the weight and bias; the new instance has its own im2col
    /// scratch (kept from forward for the weight gradient) and buffers.
    fn share(&self) -> Self {
        Conv2d {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            activation: self.activation.clone(),
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            scratch: ConvScratch::default(),
            buf: Workspace::new(),
        }
    }
}

/// The convolution `z = w ⋆ x + b`, into `z`; with `relu`, plain `relu` of it.
fn conv_forward<T: Float>(
    weight: &Param<T>,
    bias: Option<&Param<T>>,
    x: ArrayViewD<'_, T>,
    window: &Window2d,
    scratch: &mut ConvScratch<T>,
    relu: bool,
    z: ArrayViewMutD<'_, T>,
) {
    let b = bias.map(|b| b.value());
    let b = b
        .as_ref()
        .map(|b| b.view().into_dimensionality::<Ix1>().expect("1-D"));
    let w = weight.value();
    if relu {
        conv2d_relu_into(x, w.view(), b, window, scratch, z);
    } else {
        conv2d_into(x, w.view(), b, window, scratch, z);
    }
}

impl<
        T: Float,
        const IN_C: usize,
        const OUT_C: usize,
        const KH: usize,
        const KW: usize,
        A: ActivationFn,
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
        super::activated_shape(&self.activation, &[OUT_C, oh, ow])
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let hw = self.check(&x.shape());
        let tape = x.tape();
        let bias = self.bias.as_ref().map(|b| tape.param(b));
        let z = x.conv2d(&tape.param(&self.weight), bias.as_ref(), self.window(hw));
        super::activate_var(&self.activation, z)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let hw = self.check(x.shape());
        let window = self.window(hw);
        let shape = conv2d_shape(x.shape(), &[OUT_C, IN_C, KH, KW], &window);
        let bias = self.bias.as_ref();
        if self.activation.is_plain_relu() {
            // Applied by the kernel to each output while it is in registers:
            // a pass over the whole output fewer (LeNet-5's first
            // convolution writes 2.4 MB a batch).
            let y = self.buf.output_mut(&shape);
            conv_forward(&self.weight, bias, x, &window, &mut self.scratch, true, y);
            return self.buf.output();
        }
        let z = self.buf.pre_activation_mut(&self.activation, &shape);
        conv_forward(&self.weight, bias, x, &window, &mut self.scratch, false, z);
        self.buf.activate(&self.activation)
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
        let window = self.window((x.shape()[2], x.shape()[3]));
        let (activation, shape) = (&self.activation, x.shape());
        let (weight, bias, scratch) = (&self.weight, self.bias.as_ref(), &mut self.scratch);
        let grads = |dz: ArrayViewD<'_, T>, dx: Option<ArrayViewMutD<'_, T>>| {
            // A frozen parameter's gradient is neither computed nor stored.
            let mut dw = trainable_grad_buffer(weight);
            let mut db = bias.and_then(trainable_grad_buffer);
            conv2d_backward_into(
                x.view(),
                weight.value().view(),
                dz,
                &window,
                scratch,
                ConvGrads {
                    dx,
                    dw: dw.as_mut().map(|d| d.view_mut()),
                    db: db.as_mut().map(|d| d.view_mut()),
                },
            );
        };
        if activation.is_plain_relu() {
            // The forward pass kept the output only (see `forward_train`).
            return self
                .buf
                .relu_output_input_grad(activation, dy, need_input_grad, shape, grads);
        }
        self.buf
            .activated_input_grad(activation, dy, need_input_grad, shape, grads)
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let window = self.window(self.check(x.shape()));
        let shape = conv2d_shape(x.shape(), &[OUT_C, IN_C, KH, KW], &window);
        let z = owned(&shape[..], |z| {
            let scratch = &mut ConvScratch::default();
            conv_forward(
                &self.weight,
                self.bias.as_ref(),
                x,
                &window,
                scratch,
                false,
                z,
            )
        });
        super::activate(&self.activation, z)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        super::visit_weight_bias(&self.weight, self.bias.as_ref(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::{linear, relu, Relu};
    use ndarray::IxDyn;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// A 5 × 5 convolution of 1 to 6 channels (LeNet-5's first) with `relu`,
    /// which its kernel applies to each output, gives the bits of the same
    /// convolution followed by `relu`'s own passes: output, input gradient
    /// and parameter gradients, with NaN in the input. In `f32` on an
    /// AVX-512 CPU this is the direct kernel, in `f64` the GEMM path.
    fn fused_relu_is_the_composition<T: Float>() {
        // One seed, the same draws: equal weights and biases.
        fn layer<T: Float, A: ActivationFn>(activation: A) -> Conv2d<T, 1, 6, 5, 5, A> {
            let init = Initializer::GlorotUniform;
            let rng = &mut StdRng::seed_from_u64(4);
            Conv2d::new(
                activation,
                (1, 1),
                Padding::Same,
                (1, 1),
                true,
                init,
                init,
                rng,
            )
        }
        let (mut fused, mut plain) = (layer::<T, Relu>(relu), layer::<T, Linear>(linear));
        assert_eq!(*fused.weight.value(), *plain.weight.value());

        let mut x = ArrayD::from_shape_fn(IxDyn(&[3, 1, 9, 20]), |i| {
            T::lit((((i[0] * 7 + i[2] * 5 + i[3] * 3) % 11) as f64 - 5.0) / 4.0)
        });
        x[[1, 0, 4, 7]] = T::nan();
        let dy = ArrayD::from_shape_fn(IxDyn(&[3, 6, 9, 20]), |i| {
            T::lit((((i[1] * 3 + i[2] + i[3] * 7) % 13) as f64 - 6.0) / 8.0)
        });

        let y = fused.forward_train(x.view()).to_owned();
        let z = plain.forward_train(x.view()).to_owned();
        let want = relu.forward(z.view());
        let bits = |a: &ArrayD<T>| a.iter().map(|v| v.as_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&want), "output");

        let dx = fused.backward(x.view(), dy.view(), true).to_owned();
        let mut dz = ArrayD::zeros(z.raw_dim());
        relu.backward_into(z.view(), want.view(), dy.view(), dz.view_mut());
        let dx_plain = plain.backward(x.view(), dz.view(), true).to_owned();
        assert_eq!(bits(&dx), bits(&dx_plain), "input gradient");
        let grad = |p: &Param<T>| p.grad().clone().expect("a gradient");
        assert_eq!(
            bits(&grad(&fused.weight)),
            bits(&grad(&plain.weight)),
            "weight"
        );
        let (fb, pb) = (fused.bias.as_ref(), plain.bias.as_ref());
        assert_eq!(
            bits(&grad(fb.expect("a bias"))),
            bits(&grad(pb.expect("a bias"))),
            "bias"
        );
    }

    #[test]
    fn fused_relu_is_the_composition_in_f32_and_f64() {
        fused_relu_is_the_composition::<f32>();
        fused_relu_is_the_composition::<f64>();
    }
}
