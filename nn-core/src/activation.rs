//! Every Keras built-in activation, by its Keras name.
//!
//! Each is a small `Copy` type implementing [`Activation`], with a lowercase
//! constant of the same name (`relu`, `sigmoid`, `softmax`, …) so it can be
//! passed as a value: `x.apply(relu)`, or `activation = relu` in a model. The
//! names also resolve at run time through [`Builtin`]:
//!
//! ```
//! use nn_core::activation::{Activation, Builtin};
//! use ndarray::array;
//!
//! let a: Builtin = "relu".parse().unwrap();
//! let y = a.forward(array![-1.0f32, 2.0].into_dyn().view());
//! assert_eq!(y, array![0.0f32, 2.0].into_dyn());
//! ```
//!
//! Your own activation: implement [`Pointwise`] (a scalar `f` and its
//! derivative) and it is an `Activation` everywhere; implement `Activation`
//! directly for anything that is not element-wise.

#![allow(non_upper_case_globals)]

use std::fmt::Debug;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis};

pub use crate::kernels::activation::{
    Elu, Exponential, Gelu, HardSigmoid, HardSilu, LeakyRelu, Linear, LogSigmoid, Mish, Relu,
    Relu6, Selu, Sigmoid, Silu, Softplus, Softsign, Tanh,
};
pub use crate::kernels::pointwise::Pointwise;
use crate::kernels::{pointwise, softmax as sm};
use crate::tape::{ActivationOp, Var};
use crate::Float;

/// An activation function: forward and backward on arrays (the models' static
/// path), and on the tape.
pub trait Activation: Clone + Debug + Send + Sync + 'static {
    /// The Keras name (`"relu"`), shown by summaries and messages.
    fn name(&self) -> &'static str;

    /// `y = f(x)` into a buffer of `x`'s shape.
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>);

    /// `dx` from the input `x`, the output `y` and the output gradient `dy`.
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    );

    /// `f(x)` into a new array.
    fn forward<T: Float>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let mut y = ArrayD::zeros(x.raw_dim());
        self.forward_into(x, y.view_mut());
        y
    }

    /// Whether this is the identity (`linear`), which layers skip.
    fn is_identity(&self) -> bool {
        false
    }

    /// Whether this is softmax over the last axis, whose gradient fuses with a
    /// following cross-entropy into `p - y`.
    fn is_softmax_last_axis(&self) -> bool {
        false
    }

    /// Records `f(x)` on `x`'s tape.
    fn apply<T: Float>(&self, x: &Var<T>) -> Var<T> {
        let a = self.clone();
        x.tape()
            .record(&[x], |v| (a.forward(v[0].view()), ActivationOp(a.clone())))
    }
}

impl<P: Pointwise> Activation for P {
    fn name(&self) -> &'static str {
        Pointwise::name(self)
    }
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
        pointwise::forward_into(self, x, y);
    }
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    ) {
        pointwise::backward_into(self, x, y, dy, dx);
    }
    fn forward<T: Float>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        pointwise::forward(self, x)
    }
    fn is_identity(&self) -> bool {
        Pointwise::is_identity(self)
    }
}

/// Resolves a possibly negative axis (`-1` = last) against a rank.
pub(crate) fn resolve_axis(op: &str, axis: isize, shape: &[usize]) -> Axis {
    let n = shape.len() as isize;
    let a = if axis < 0 { axis + n } else { axis };
    assert!(
        (0..n).contains(&a),
        "{op}: axis {axis} is out of range for shape {shape:?}"
    );
    Axis(a as usize)
}

/// Declares an activation that normalizes along an axis: the type, its default
/// (the last axis, as in Keras), and its `Activation` impl over the kernels.
macro_rules! along_axis {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $forward:path, $backward:path, softmax = $is_softmax:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $ty {
            /// The axis to normalize over; negative counts from the end.
            pub axis: isize,
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty { axis: -1 }
            }
        }

        impl Activation for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn is_softmax_last_axis(&self) -> bool {
                $is_softmax && self.axis == -1
            }
            fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
                let ax = resolve_axis($name, self.axis, x.shape());
                $forward(x, ax, y);
            }
            fn backward_into<T: Float>(
                &self,
                _x: ArrayViewD<'_, T>,
                y: ArrayViewD<'_, T>,
                dy: ArrayViewD<'_, T>,
                dx: ArrayViewMutD<'_, T>,
            ) {
                let ax = resolve_axis($name, self.axis, y.shape());
                $backward(y, dy, ax, dx);
            }
        }
    };
}

along_axis!(
    /// Softmax along an axis (`-1`, the last, by default as in Keras), max-shifted
    /// so it never overflows.
    Softmax, "softmax", sm::softmax_into, sm::softmax_backward_into, softmax = true
);

along_axis!(
    /// Log-softmax along an axis (`-1` by default), computed as
    /// `x - max - log Σ exp(x - max)`.
    LogSoftmax, "log_softmax", sm::log_softmax_into, sm::log_softmax_backward_into, softmax = false
);

/// `max(x, 0)`.
pub const relu: Relu = Relu;
/// `min(max(x, 0), 6)`.
pub const relu6: Relu6 = Relu6;
/// Leaky ReLU with Keras's default slope 0.2.
pub const leaky_relu: LeakyRelu = LeakyRelu {
    negative_slope: 0.2,
};
/// ELU with `alpha = 1`.
pub const elu: Elu = Elu { alpha: 1.0 };
/// SELU.
pub const selu: Selu = Selu;
/// GELU, exact erf form.
pub const gelu: Gelu = Gelu { approximate: false };
/// GELU, tanh approximation.
pub const gelu_tanh: Gelu = Gelu { approximate: true };
/// Logistic sigmoid.
pub const sigmoid: Sigmoid = Sigmoid;
/// `relu6(x + 3) / 6`.
pub const hard_sigmoid: HardSigmoid = HardSigmoid;
/// `x * hard_sigmoid(x)`.
pub const hard_silu: HardSilu = HardSilu;
/// Alias of [`hard_silu`].
pub const hard_swish: HardSilu = HardSilu;
/// Hyperbolic tangent.
pub const tanh: Tanh = Tanh;
/// `log(1 + exp(x))`.
pub const softplus: Softplus = Softplus;
/// `x / (1 + |x|)`.
pub const softsign: Softsign = Softsign;
/// `x * sigmoid(x)`.
pub const silu: Silu = Silu;
/// Alias of [`silu`].
pub const swish: Silu = Silu;
/// `x * tanh(softplus(x))`.
pub const mish: Mish = Mish;
/// `log(sigmoid(x))`.
pub const log_sigmoid: LogSigmoid = LogSigmoid;
/// `exp(x)`.
pub const exponential: Exponential = Exponential;
/// The identity.
pub const linear: Linear = Linear;
/// Softmax over the last axis.
pub const softmax: Softmax = Softmax { axis: -1 };
/// Log-softmax over the last axis.
pub const log_softmax: LogSoftmax = LogSoftmax { axis: -1 };

macro_rules! builtins {
    ($($variant:ident($ty:ty) = $($name:literal)|+ => $value:expr;)*) => {
        /// Any built-in activation, chosen at run time by its Keras name.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Builtin {
            $(
                #[doc = concat!("`", $($name, "`, `",)+ "`")]
                $variant($ty),
            )*
        }

        /// Every name [`Builtin`] accepts.
        pub const NAMES: &[&str] = &[$($($name),+),*];

        impl Builtin {
            /// The built-in called `name`, if there is one.
            pub fn from_name(name: &str) -> Option<Builtin> {
                match name {
                    $($($name)|+ => Some(Builtin::$variant($value)),)*
                    _ => None,
                }
            }
        }

        impl Activation for Builtin {
            fn name(&self) -> &'static str {
                match self { $(Builtin::$variant(a) => Activation::name(a),)* }
            }
            fn is_identity(&self) -> bool {
                match self { $(Builtin::$variant(a) => Activation::is_identity(a),)* }
            }
            fn is_softmax_last_axis(&self) -> bool {
                match self { $(Builtin::$variant(a) => a.is_softmax_last_axis(),)* }
            }
            fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
                match self { $(Builtin::$variant(a) => a.forward_into(x, y),)* }
            }
            fn backward_into<T: Float>(
                &self,
                x: ArrayViewD<'_, T>,
                y: ArrayViewD<'_, T>,
                dy: ArrayViewD<'_, T>,
                dx: ArrayViewMutD<'_, T>,
            ) {
                match self { $(Builtin::$variant(a) => a.backward_into(x, y, dy, dx),)* }
            }
        }
    };
}

builtins! {
    Relu(Relu) = "relu" => relu;
    Relu6(Relu6) = "relu6" => relu6;
    LeakyRelu(LeakyRelu) = "leaky_relu" => leaky_relu;
    Elu(Elu) = "elu" => elu;
    Selu(Selu) = "selu" => selu;
    Gelu(Gelu) = "gelu" => gelu;
    Sigmoid(Sigmoid) = "sigmoid" => sigmoid;
    HardSigmoid(HardSigmoid) = "hard_sigmoid" => hard_sigmoid;
    HardSilu(HardSilu) = "hard_silu" | "hard_swish" => hard_silu;
    Tanh(Tanh) = "tanh" => tanh;
    Softplus(Softplus) = "softplus" => softplus;
    Softsign(Softsign) = "softsign" => softsign;
    Silu(Silu) = "silu" | "swish" => silu;
    Mish(Mish) = "mish" => mish;
    LogSigmoid(LogSigmoid) = "log_sigmoid" => log_sigmoid;
    Exponential(Exponential) = "exponential" => exponential;
    Linear(Linear) = "linear" => linear;
    Softmax(Softmax) = "softmax" => softmax;
    LogSoftmax(LogSoftmax) = "log_softmax" => log_softmax;
}

/// The error for a name that is not a built-in activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownActivation(pub String);

impl std::fmt::Display for UnknownActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown activation {:?}; expected one of {}",
            self.0,
            NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownActivation {}

impl FromStr for Builtin {
    type Err = UnknownActivation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Builtin::from_name(s).ok_or_else(|| UnknownActivation(s.to_string()))
    }
}
