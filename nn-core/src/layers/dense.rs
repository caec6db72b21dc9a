//! `Dense`: `y = activation(x Wᵀ + b)`, Keras's densely connected layer with
//! PyTorch's weight layout `W: [out, in]`.

use ndarray::{Array2, ArrayD, ArrayViewD, Ix1, Ix2};
use rand::Rng;

use super::{batch_shape, check_input, ensure_shape, grad_buffer, Layer};
use crate::activation::{Activation, Linear};
use crate::init::Initializer;
use crate::kernels::matmul::{linear_backward_into, linear_into};
use crate::tape::{Param, Var};
use crate::Float;

/// A fully connected layer from `IN` to `OUT` features with activation `A`.
///
/// Parameters: `weight` `[OUT, IN]` and, unless built without bias, `bias`
/// `[OUT]` — the layout and names of PyTorch's `nn.Linear`.
pub struct Dense<T: Float, const IN: usize, const OUT: usize, A: Activation = Linear> {
    /// `[OUT, IN]`.
    pub weight: Param<T>,
    /// `[OUT]`, if the layer has one.
    pub bias: Option<Param<T>>,
    /// Applied after the affine map.
    pub activation: A,
    /// Pre-activation `z = x Wᵀ + b` of the last `forward_train`.
    z: ArrayD<T>,
    /// Output `activation(z)`.
    y: ArrayD<T>,
    /// Gradient of `z`.
    dz: ArrayD<T>,
    /// Gradient of the input.
    dx: ArrayD<T>,
}

impl<T: Float, const IN: usize, const OUT: usize, A: Activation> Dense<T, IN, OUT, A> {
    /// A layer with the given initializers (Keras: glorot_uniform kernel, zero bias).
    pub fn new<R: Rng + ?Sized>(
        activation: A,
        use_bias: bool,
        kernel_init: Initializer,
        bias_init: Initializer,
        rng: &mut R,
    ) -> Self {
        assert!(
            IN > 0 && OUT > 0,
            "Dense: sizes must be positive, got {IN} -> {OUT}"
        );
        let weight = Param::new(kernel_init.init::<T, R>(&[OUT, IN], rng));
        let bias = use_bias.then(|| Param::new(bias_init.init::<T, R>(&[OUT], rng)));
        Self::from_params(weight, bias, activation)
    }

    /// A layer around existing parameters.
    ///
    /// # Panics
    /// If the shapes are not `[OUT, IN]` and `[OUT]`.
    pub fn from_params(weight: Param<T>, bias: Option<Param<T>>, activation: A) -> Self {
        assert_eq!(weight.shape(), [OUT, IN], "Dense: weight shape");
        if let Some(b) = &bias {
            assert_eq!(b.shape(), [OUT], "Dense: bias shape");
        }
        let empty = || ArrayD::zeros(ndarray::IxDyn(&[0, OUT]));
        Dense {
            weight,
            bias,
            activation,
            z: empty(),
            y: empty(),
            dz: empty(),
            dx: ArrayD::zeros(ndarray::IxDyn(&[0, IN])),
        }
    }

    fn is_identity(&self) -> bool {
        self.activation.is_identity()
    }
}

fn two_d<'a, T: Float>(a: &'a ArrayD<T>) -> ndarray::ArrayView2<'a, T> {
    a.view().into_dimensionality::<Ix2>().expect("2-D")
}

impl<T: Float, const IN: usize, const OUT: usize, A: Activation> Layer<T> for Dense<T, IN, OUT, A> {
    fn type_name(&self) -> &'static str {
        "Dense"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        if input != [IN] {
            return Err(format!("Dense expects input shape [{IN}], got {input:?}"));
        }
        Ok(vec![OUT])
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let tape = x.tape();
        let bias = self.bias.as_ref().map(|b| tape.param(b));
        let z = x.linear(&tape.param(&self.weight), bias.as_ref());
        if self.is_identity() {
            z
        } else {
            self.activation.apply(&z)
        }
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        check_input("Dense", x.shape(), &[IN]);
        let shape = batch_shape(x.shape()[0], &[OUT]);
        ensure_shape(&mut self.z, &shape);
        let x = x.into_dimensionality::<Ix2>().expect("2-D");
        {
            let w = self.weight.value();
            let b = self.bias.as_ref().map(|b| b.value());
            let b1 = b
                .as_ref()
                .map(|b| b.view().into_dimensionality::<Ix1>().expect("1-D"));
            linear_into(
                x,
                two_d(&w),
                b1,
                self.z.view_mut().into_dimensionality().expect("2-D"),
            );
        }
        if self.is_identity() {
            return self.z.view();
        }
        ensure_shape(&mut self.y, &shape);
        self.activation
            .forward_into(self.z.view(), self.y.view_mut());
        self.y.view()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        if self.is_identity() {
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
        if self.is_identity() {
            return self.backward_from_logits(x, dy, need_input_grad);
        }
        ensure_shape(&mut self.dz, dy.shape());
        self.activation
            .backward_into(self.z.view(), self.y.view(), dy, self.dz.view_mut());
        let dz = std::mem::take(&mut self.dz);
        self.backward_linear(x, dz.view(), need_input_grad);
        self.dz = dz;
        self.dx.view()
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        check_input("Dense", x.shape(), &[IN]);
        let mut z = Array2::zeros((x.shape()[0], OUT));
        let w = self.weight.value();
        let b = self.bias.as_ref().map(|b| b.value());
        let b1 = b
            .as_ref()
            .map(|b| b.view().into_dimensionality::<Ix1>().expect("1-D"));
        linear_into(
            x.into_dimensionality::<Ix2>().expect("2-D"),
            two_d(&w),
            b1,
            z.view_mut(),
        );
        let z = z.into_dyn();
        if self.is_identity() {
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

    fn softmax_output(&self) -> bool {
        self.activation.is_softmax_last_axis()
    }

    fn backward_from_logits(
        &mut self,
        x: ArrayViewD<'_, T>,
        dlogits: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        self.backward_linear(x, dlogits, need_input_grad);
        self.dx.view()
    }
}

impl<T: Float, const IN: usize, const OUT: usize, A: Activation> Dense<T, IN, OUT, A> {
    /// Backward of the affine part from the pre-activation gradient `dz`.
    fn backward_linear(
        &mut self,
        x: ArrayViewD<'_, T>,
        dz: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) {
        let batch = x.shape()[0];
        if need_input_grad {
            ensure_shape(&mut self.dx, &[batch, IN]);
        } else {
            ensure_shape(&mut self.dx, &[0, IN]);
        }
        let w = self.weight.value();
        let mut dw = grad_buffer(&self.weight);
        let mut db = self.bias.as_ref().map(grad_buffer);
        linear_backward_into(
            x.into_dimensionality::<Ix2>().expect("2-D"),
            two_d(&w),
            dz.into_dimensionality::<Ix2>().expect("2-D"),
            need_input_grad.then(|| {
                self.dx
                    .view_mut()
                    .into_dimensionality::<Ix2>()
                    .expect("2-D")
            }),
            Some(dw.view_mut().into_dimensionality::<Ix2>().expect("2-D")),
            db.as_mut()
                .map(|d| d.view_mut().into_dimensionality::<Ix1>().expect("1-D")),
        );
    }
}
