//! `Dense`: `y = activation(x Wᵀ + b)`, Keras's densely connected layer with
//! PyTorch's weight layout `W: [out, in]`, on the last axis of its input (a
//! `[T, IN]` sequence gives `[T, OUT]`, each step mapped alike, as in Keras
//! and PyTorch).

use ndarray::{ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Ix1, Ix2};
use rand::Rng;

use super::{trainable_grad_output, Layer, Share, Workspace};
use crate::activation::{ActivationFn, Linear};
use crate::init::Initializer;
use crate::kernels::matmul::{linear_backward_into, linear_into};
use crate::kernels::owned::owned;
use crate::tape::{Param, Var};
use crate::Float;

/// A fully connected layer from `IN` to `OUT` features with activation `A`.
///
/// Parameters: `weight` `[OUT, IN]` and, unless built without bias, `bias`
/// `[OUT]` — the layout and names of PyTorch's `nn.Linear`.
pub struct Dense<T: Float, const IN: usize, const OUT: usize, A: ActivationFn = Linear> {
    /// `[OUT, IN]`.
    pub weight: Param<T>,
    /// `[OUT]`, if the layer has one.
    pub bias: Option<Param<T>>,
    /// Applied after the affine map.
    pub activation: A,
    /// The output `activation(z)` of the last `forward_train`, the
    /// pre-activation `z = x Wᵀ + b`, and their gradients.
    buf: Workspace<T>,
}

impl<T: Float, const IN: usize, const OUT: usize, A: ActivationFn> Dense<T, IN, OUT, A> {
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
        let bias = use_bias.then(|| Param::new(bias_init.init_bias::<T, R>(&[OUT, IN], OUT, rng)));
        Self::from_params(weight, bias, activation)
    }

    /// A layer with Keras's defaults, in one line as PyTorch's `nn.Linear(IN,
    /// OUT)`: the activation's default, a bias, a glorot_uniform kernel and
    /// a zero bias. The sizes are the type's (`Dense<f32, 784, 128, Relu>`),
    /// so parts that do not fit together fail to compile.
    ///
    /// ```
    /// use nn_core::activation::Relu;
    /// use nn_core::layers::{Dense, Layer};
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let hidden: Dense<f32, 784, 128, Relu> = Dense::init(&mut rng);
    /// assert_eq!(hidden.param_count(), 784 * 128 + 128);
    /// ```
    pub fn init<R: Rng + ?Sized>(rng: &mut R) -> Self
    where
        A: Default,
    {
        Self::new(
            A::default(),
            true,
            Initializer::GlorotUniform,
            Initializer::Zeros,
            rng,
        )
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
        Dense {
            weight,
            bias,
            activation,
            buf: Workspace::new(),
        }
    }
}

impl<T: Float, const IN: usize, const OUT: usize, A: ActivationFn> Share for Dense<T, IN, OUT, A> {
    fn share(&self) -> Self {
        Dense {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            activation: self.activation.clone(),
            buf: Workspace::new(),
        }
    }
}

fn two_d<'a, T: Float>(a: &'a ArrayD<T>) -> ndarray::ArrayView2<'a, T> {
    a.view().into_dimensionality::<Ix2>().expect("2-D")
}

/// `x: [.., n]` as the matrix `[rows, n]` whose rows are its last-axis
/// vectors (a view: the static path's buffers are contiguous).
fn rows<T: Float>(x: ArrayViewD<'_, T>) -> ndarray::ArrayView2<'_, T> {
    let n = x.shape().last().copied().unwrap_or(1);
    let m = x.len() / n.max(1);
    x.into_shape_with_order((m, n))
        .expect("Dense: the input is contiguous")
}

/// [`rows`] of a mutable buffer.
fn rows_mut<T: Float>(x: ArrayViewMutD<'_, T>) -> ndarray::ArrayViewMut2<'_, T> {
    let n = x.shape().last().copied().unwrap_or(1);
    let m = x.len() / n.max(1);
    x.into_shape_with_order((m, n))
        .expect("Dense: buffers are contiguous")
}

/// Checks that `x` is a batch whose last axis has `IN` features.
fn check_features(x: &[usize], features: usize) {
    assert!(
        x.len() >= 2 && x.last() == Some(&features),
        "Dense: expected input of shape [batch, .., {features}], got {x:?}"
    );
}

/// `x`'s shape with the last axis `out` wide.
fn out_shape(x: &[usize], out: usize) -> smallvec::SmallVec<[usize; 6]> {
    let mut s: smallvec::SmallVec<[usize; 6]> = x.iter().copied().collect();
    if let Some(last) = s.last_mut() {
        *last = out;
    }
    s
}

/// The affine part `z = x Wᵀ + b`, into `z`.
fn linear_forward<T: Float>(
    weight: &Param<T>,
    bias: Option<&Param<T>>,
    x: ArrayViewD<'_, T>,
    z: ArrayViewMutD<'_, T>,
) {
    let w = weight.value();
    let b = bias.map(|b| b.value());
    linear_into(
        rows(x),
        two_d(&w),
        b.as_ref()
            .map(|b| b.view().into_dimensionality::<Ix1>().expect("1-D")),
        rows_mut(z),
    );
}

/// Backward of the affine part `z = x Wᵀ + b` from the gradient `dz` (rows
/// of samples): writes the trainable parameters' gradients, or adds them to
/// a shared parameter's (a frozen weight's GEMM is skipped), and the
/// input's into `dx`, if given. Dense layers, attention's projections and
/// the transformer's feed-forward layers all use it.
pub(in crate::layers) fn linear_grads<T: Float>(
    weight: &Param<T>,
    bias: Option<&Param<T>>,
    x: ArrayView2<'_, T>,
    dz: ArrayView2<'_, T>,
    dx: Option<ArrayViewMut2<'_, T>>,
) {
    // Gradients before the value: the order optimizers and the other layers
    // lock in, so threads sharing a parameter cannot deadlock.
    let mut dw = trainable_grad_output(weight);
    let mut db = bias.and_then(trainable_grad_output);
    let w = weight.value();
    linear_backward_into(
        x,
        two_d(&w),
        dz,
        dx,
        dw.as_mut().map(|(d, beta)| {
            let d = d.view_mut().into_dimensionality::<Ix2>().expect("2-D");
            (d, *beta)
        }),
        db.as_mut().map(|(d, beta)| {
            let d = d.view_mut().into_dimensionality::<Ix1>().expect("1-D");
            (d, *beta)
        }),
    );
}

impl<T: Float, const IN: usize, const OUT: usize, A: ActivationFn> Layer<T>
    for Dense<T, IN, OUT, A>
{
    fn type_name(&self) -> &'static str {
        "Dense"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        if input.last() != Some(&IN) {
            return Err(format!(
                "Dense expects input shape [.., {IN}] (its last axis {IN} wide), got {input:?}"
            ));
        }
        super::activated_shape(&self.activation, &out_shape(input, OUT))
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let tape = x.tape();
        let bias = self.bias.as_ref().map(|b| tape.param(b));
        let z = x.linear(&tape.param(&self.weight), bias.as_ref());
        super::activate_var(&self.activation, z)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        check_features(x.shape(), IN);
        let shape = out_shape(x.shape(), OUT);
        let z = self.buf.pre_activation_mut(&self.activation, &shape);
        linear_forward(&self.weight, self.bias.as_ref(), x, z);
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
        let (weight, bias) = (&self.weight, self.bias.as_ref());
        self.buf.activated_input_grad(
            &self.activation,
            dy,
            need_input_grad,
            x.shape(),
            |dz, dx| linear_grads(weight, bias, rows(x.view()), rows(dz), dx.map(rows_mut)),
        )
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        check_features(x.shape(), IN);
        let z = owned(ndarray::IxDyn(&out_shape(x.shape(), OUT)), |z| {
            linear_forward(&self.weight, self.bias.as_ref(), x, z)
        });
        super::activate(&self.activation, z)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        super::visit_weight_bias(&self.weight, self.bias.as_ref(), f)
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
        let (weight, bias) = (&self.weight, self.bias.as_ref());
        self.buf.maybe_input_grad(need_input_grad, x.shape(), |dx| {
            linear_grads(
                weight,
                bias,
                rows(x.view()),
                rows(dlogits),
                dx.map(rows_mut),
            )
        })
    }
}
