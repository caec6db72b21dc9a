//! Binary element-wise ops on variables, one declaration each: `+ - * /` (also
//! with a scalar on either side) and unary `-`, then the named ops `maximum`,
//! `minimum`, `pow_var`, `atan2` and `select`. The math is in
//! [`crate::kernels::arith`]; every tensor–tensor op records one
//! [`BinaryOp`](super::binary::BinaryOp) via [`Var::binary`].

use std::ops::{Add, Div, Mul, Neg, Sub};

use ndarray::ArrayD;

use super::binary::broadcast_shape;
use crate::kernels::arith::{self as k, Atan2, Maximum, Minimum, PowTensor};
use crate::kernels::math::{Affine, ScalarDiv};
use crate::tape::{Op, Var};
use crate::Float;

/// One row per operator: the trait and method, the [`Binary`](crate::kernels::binary::Binary)
/// op for two variables, then `var (op) scalar` and `scalar (op) var`, which
/// record a single element-wise node instead of broadcasting a 0-d tensor.
macro_rules! operators {
    ($($trait:ident $method:ident $op:expr, |$x:ident, $c:ident| $rhs:expr, |$c2:ident, $x2:ident| $lhs:expr;)*) => {$(
        impl<T: Float> $trait<&Var<T>> for &Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                self.binary(rhs, $op)
            }
        }
        impl<T: Float> $trait<Var<T>> for Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Var<T> {
                self.binary(&rhs, $op)
            }
        }
        impl<T: Float> $trait<&Var<T>> for Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                self.binary(rhs, $op)
            }
        }
        impl<T: Float> $trait<Var<T>> for &Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Var<T> {
                self.binary(&rhs, $op)
            }
        }
        impl<T: Float> $trait<T> for &Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: T) -> Var<T> {
                let ($x, $c) = (self, rhs.as_f64());
                $rhs
            }
        }
        impl<T: Float> $trait<T> for Var<T> {
            type Output = Var<T>;
            fn $method(self, rhs: T) -> Var<T> {
                let ($x, $c) = (&self, rhs.as_f64());
                $rhs
            }
        }
        scalar_lhs!($trait $method |$c2, $x2| $lhs; f32, f64);
    )*};
}

/// `scalar (op) var` for each concrete scalar type (a blanket impl over
/// `T: Float` is not allowed for a foreign left-hand type).
macro_rules! scalar_lhs {
    ($trait:ident $method:ident |$c:ident, $x:ident| $lhs:expr; $($t:ty),*) => {$(
        impl $trait<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn $method(self, rhs: &Var<$t>) -> Var<$t> {
                let ($c, $x) = (self as f64, rhs);
                $lhs
            }
        }
        impl $trait<Var<$t>> for $t {
            type Output = Var<$t>;
            fn $method(self, rhs: Var<$t>) -> Var<$t> {
                let ($c, $x) = (self as f64, &rhs);
                $lhs
            }
        }
    )*};
}

operators! {
    Add add k::Add, |x, c| affine(x, 1.0, c), |c, x| affine(x, 1.0, c);
    Sub sub k::Sub, |x, c| affine(x, 1.0, -c), |c, x| affine(x, -1.0, c);
    Mul mul k::Mul, |x, c| affine(x, c, 0.0), |c, x| affine(x, c, 0.0);
    Div div k::Div, |x, c| div_by_scalar(x, c), |c, x| x.pointwise(ScalarDiv(c));
}

impl<T: Float> Neg for &Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        affine(self, -1.0, 0.0)
    }
}

impl<T: Float> Neg for Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        affine(&self, -1.0, 0.0)
    }
}

fn affine<T: Float>(x: &Var<T>, scale: f64, shift: f64) -> Var<T> {
    x.pointwise(Affine { scale, shift })
}

fn div_by_scalar<T: Float>(x: &Var<T>, c: f64) -> Var<T> {
    x.tape()
        .record(&[x], |v| (v[0].mapv(|e| e / T::lit(c)), DivByScalar(c)))
}

/// `x / c`, kept as a true division (not `x * (1/c)`) so results round like PyTorch's.
struct DivByScalar(f64);

impl<T: Float> Op<T> for DivByScalar {
    fn name(&self) -> &'static str {
        "div"
    }
    fn backward(
        &self,
        _x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let c = T::lit(self.0);
        vec![Some(dy.mapv(|g| g / c))]
    }
}

/// Named binary ops as `Var` methods, one line each: `method => op`.
macro_rules! binary_methods {
    ($($(#[$doc:meta])* $method:ident => $op:expr;)*) => {
        impl<T: Float> Var<T> {
            $(
                $(#[$doc])*
                ///
                /// # Panics
                /// If the shapes do not broadcast, naming the op and both shapes
                /// (at the caller's line).
                #[track_caller]
                pub fn $method(&self, other: &Var<T>) -> Var<T> {
                    self.binary(other, $op)
                }
            )*
        }
        $crate::instances!(Var: $($method),*);
    };
}

binary_methods! {
    /// The element-wise larger of `self` and `other`, broadcasting
    /// (`torch.maximum`; NaN if either is NaN). The gradient goes to the larger
    /// operand and is split half and half on a tie, as in PyTorch.
    maximum => Maximum;
    /// The element-wise smaller of `self` and `other`, broadcasting
    /// (`torch.minimum`; NaN if either is NaN). The gradient goes to the
    /// smaller operand and is split half and half on a tie, as in PyTorch.
    minimum => Minimum;
    /// `self^exponent` element-wise with a tensor exponent, broadcasting
    /// (`torch.pow(a, b)`; [`Var::pow`] takes a scalar exponent). Gradients:
    /// `b a^(b-1)` to the base, `y ln a` to the exponent (0 where `a == 0` and
    /// `b >= 0`; NaN for a negative base, where `ln a` is undefined).
    pow_var => PowTensor;
    /// `atan2(self, other)` element-wise, broadcasting: the angle of the point
    /// `(other, self)` in `(-π, π]` (`torch.atan2`). Gradients `b / (a² + b²)`
    /// and `-a / (a² + b²)`; NaN at the origin, as in PyTorch.
    atan2 => Atan2;
}

impl<T: Float> Var<T> {
    /// `cond ? a : b` element by element, all three broadcasting together
    /// (`torch.where` with a 0/1 tensor as the condition).
    ///
    /// `cond` is read, never differentiated (it may come from the tape, say a
    /// detached comparison); the gradient flows to the branch each element was
    /// taken from and is 0 for the other, even where that branch is inf or NaN.
    ///
    /// ```
    /// use nn_core::{Tape, Var};
    /// use ndarray::array;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![-2.0, 3.0]);
    /// let cond = tape.constant(array![0.0, 1.0]);
    /// let y = Var::select(&cond, &x, &(&x * &x));   // [x₀², x₁]
    /// y.sum().backward();
    /// assert_eq!(x.grad().unwrap(), array![-4.0, 1.0].into_dyn());
    /// ```
    ///
    /// # Panics
    /// If `cond` holds a value other than 0 or 1, or the shapes do not
    /// broadcast (naming `select` and the shapes), at the caller's line.
    #[track_caller]
    pub fn select(cond: &Var<T>, a: &Var<T>, b: &Var<T>) -> Var<T> {
        let ab = broadcast_shape("select", &a.shape(), &b.shape());
        broadcast_shape("select", &cond.shape(), &ab);
        let not_01 = |v: &T| *v != T::zero() && *v != T::one();
        if let Some(v) = cond.with_value(|c| c.iter().copied().find(not_01)) {
            panic!("select: the condition must hold only 0 and 1, found {v}");
        }
        let mask = cond.with_value(|c| c.mapv(|v| v == T::one()));
        // The existing `where_` node already routes `dy` to the chosen branch.
        Var::where_(&mask, a, b)
    }
}

crate::instances!(Var: select);
