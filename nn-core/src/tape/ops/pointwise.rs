//! Element-wise ops on the tape: math functions and activations, all through
//! one generic node that calls the activation's own backward.

use ndarray::ArrayD;

use crate::activation::{self as act, Activation, Gelu};
use crate::kernels::math::{Abs, Clamp, Exp, Log, Pow, Sqrt};
use crate::kernels::pointwise::Pointwise;
use crate::tape::{Op, Var};
use crate::Float;

/// The tape node of any [`Activation`] (element-wise functions included).
pub struct ActivationOp<A>(pub A);

impl<T: Float, A: Activation> Op<T> for ActivationOp<A> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let mut dx = ArrayD::zeros(x[0].raw_dim());
        self.0
            .backward_into(x[0].view(), y.view(), dy.view(), dx.view_mut());
        vec![Some(dx)]
    }
}

macro_rules! activation_methods {
    ($($(#[$doc:meta])* $method:ident => $value:expr;)*) => {
        impl<T: Float> Var<T> {
            $(
                $(#[$doc])*
                pub fn $method(&self) -> Var<T> {
                    self.apply($value)
                }
            )*
        }
    };
}

activation_methods! {
    /// `eˣ`.
    exp => Exp;
    /// Natural logarithm.
    log => Log;
    /// Square root.
    sqrt => Sqrt;
    /// `|x|` (gradient 0 at 0).
    abs => Abs;
    /// `max(x, 0)`.
    relu => act::relu;
    /// `min(max(x, 0), 6)`.
    relu6 => act::relu6;
    /// SELU.
    selu => act::selu;
    /// GELU, exact erf form.
    gelu => act::gelu;
    /// GELU, tanh approximation.
    gelu_tanh => act::gelu_tanh;
    /// Logistic sigmoid.
    sigmoid => act::sigmoid;
    /// `relu6(x + 3) / 6`.
    hard_sigmoid => act::hard_sigmoid;
    /// `x * hard_sigmoid(x)`.
    hard_silu => act::hard_silu;
    /// Hyperbolic tangent.
    tanh => act::tanh;
    /// `log(1 + eˣ)`, stable.
    softplus => act::softplus;
    /// `x / (1 + |x|)`.
    softsign => act::softsign;
    /// `x * sigmoid(x)`.
    silu => act::silu;
    /// Alias of [`Var::silu`].
    swish => act::silu;
    /// `x * tanh(softplus(x))`.
    mish => act::mish;
    /// `log(sigmoid(x))`, stable.
    log_sigmoid => act::log_sigmoid;
    /// `eˣ` (Keras's `exponential`).
    exponential => act::exponential;
}

impl<T: Float> Var<T> {
    /// Applies any [`Activation`] (a built-in such as `relu`, or your own).
    pub fn apply<A: Activation>(&self, activation: A) -> Var<T> {
        activation.apply(self)
    }

    /// Applies an element-wise function.
    pub fn pointwise<P: Pointwise>(&self, f: P) -> Var<T> {
        self.apply(f)
    }

    /// `x^exponent` for a scalar exponent.
    pub fn pow(&self, exponent: f64) -> Var<T> {
        self.apply(Pow(exponent))
    }

    /// Clamps to `[min, max]`; either bound may be `None`. The gradient is 1
    /// inside the bounds (inclusive) and 0 outside.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Var<T> {
        self.apply(Clamp { min, max })
    }

    /// Leaky ReLU with the given slope for negative inputs.
    pub fn leaky_relu(&self, negative_slope: f64) -> Var<T> {
        self.apply(act::LeakyRelu { negative_slope })
    }

    /// ELU with the given `alpha`.
    pub fn elu(&self, alpha: f64) -> Var<T> {
        self.apply(act::Elu { alpha })
    }

    /// GELU; `approximate` selects the tanh form.
    pub fn gelu_with(&self, approximate: bool) -> Var<T> {
        self.apply(Gelu { approximate })
    }

    /// Softmax along `axis` (negative counts from the end), max-shifted.
    pub fn softmax(&self, axis: isize) -> Var<T> {
        self.apply(act::Softmax { axis })
    }

    /// Log-softmax along `axis` (negative counts from the end), max-shifted.
    pub fn log_softmax(&self, axis: isize) -> Var<T> {
        self.apply(act::LogSoftmax { axis })
    }
}
