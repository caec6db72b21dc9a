//! Element-wise ops on the tape: math functions and activations, all through
//! one generic node that calls the activation's own backward. (The tape
//! methods of the built-in activations, `Var::relu()` and the rest, are
//! generated from the activation table in [`crate::activation`].)

use ndarray::ArrayD;

use crate::activation::ActivationFn;
use crate::kernels::math::{Abs, Clamp, Exp, Log, Pow, Sqrt};
use crate::kernels::pointwise::Pointwise;
use crate::tape::{Op, Var};
use crate::Float;

/// The tape node of any [`ActivationFn`] (element-wise functions included).
pub struct ActivationOp<A>(pub A);

impl<T: Float, A: ActivationFn> Op<T> for ActivationOp<A> {
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
        vec![Some(self.0.backward(x[0].view(), y.view(), dy.view()))]
    }
}

macro_rules! activation_methods {
    ($($(#[$doc:meta])* $method:ident => $value:expr;)*) => {
        impl<T: Float> Var<T> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $method(&self) -> Var<T> {
                    self.apply($value)
                }
            )*
        }
        $crate::instances!(Var: $($method),*);
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
}

impl<T: Float> Var<T> {
    /// Applies any [`ActivationFn`] (a built-in such as `relu`, or your own).
    #[track_caller]
    pub fn apply<A: ActivationFn>(&self, activation: A) -> Var<T> {
        activation.apply(self)
    }

    /// Applies an element-wise function.
    #[track_caller]
    pub fn pointwise<P: Pointwise>(&self, f: P) -> Var<T> {
        self.apply(f)
    }

    /// `x^exponent` for a scalar exponent.
    #[track_caller]
    pub fn pow(&self, exponent: f64) -> Var<T> {
        self.apply(Pow(exponent))
    }

    /// Clamps to `[min, max]`; either bound may be `None`. The gradient is 1
    /// inside the bounds (inclusive) and 0 outside.
    #[track_caller]
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Var<T> {
        self.apply(Clamp { min, max })
    }
}

crate::instances!(Var: pow, clamp);
