//! The built-in binary element-wise ops, each `f` beside its two partial
//! derivatives: `+ - * /`, `maximum`, `minimum`, `pow` with a tensor exponent,
//! and `atan2`. The kernels that broadcast them and the tape node that
//! differentiates them are generic ([`super::binary`]); the rules follow
//! PyTorch's `derivatives.yaml`.

use ndarray::{ArrayD, ArrayViewD};

use super::binary::{forward, Binary};
use crate::Float;

/// `a + b`; `∂/∂a = 1`, `∂/∂b = 1`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Add;

impl Binary for Add {
    fn name(&self) -> &'static str {
        "add"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a + b
    }
    fn df_da<T: Float>(&self, _a: T, _b: T, _y: T) -> T {
        T::one()
    }
    fn df_db<T: Float>(&self, _a: T, _b: T, _y: T) -> T {
        T::one()
    }
}

/// `a - b`; `∂/∂a = 1`, `∂/∂b = -1`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sub;

impl Binary for Sub {
    fn name(&self) -> &'static str {
        "sub"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a - b
    }
    fn df_da<T: Float>(&self, _a: T, _b: T, _y: T) -> T {
        T::one()
    }
    fn df_db<T: Float>(&self, _a: T, _b: T, _y: T) -> T {
        -T::one()
    }
}

/// `a * b`; `∂/∂a = b`, `∂/∂b = a`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mul;

impl Binary for Mul {
    fn name(&self) -> &'static str {
        "mul"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a * b
    }
    fn df_da<T: Float>(&self, _a: T, b: T, _y: T) -> T {
        b
    }
    fn df_db<T: Float>(&self, a: T, _b: T, _y: T) -> T {
        a
    }
}

/// `a / b`; `∂/∂a = 1/b`, `∂/∂b = -a/b²`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Div;

impl Binary for Div {
    fn name(&self) -> &'static str {
        "div"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a / b
    }
    fn df_da<T: Float>(&self, _a: T, b: T, _y: T) -> T {
        b.recip()
    }
    fn df_db<T: Float>(&self, a: T, b: T, _y: T) -> T {
        -a / (b * b)
    }
}

/// The larger of `a` and `b` (NaN if either is NaN, like `torch.maximum`).
///
/// The gradient goes to the larger operand; on a tie it is split evenly, half
/// to each, as PyTorch does (`derivatives.yaml`: `where(a == b, grad / 2,
/// grad)` masked to 0 where the operand is the smaller one). The split is also
/// what central finite differences measure at a tie.
#[derive(Clone, Copy, Debug, Default)]
pub struct Maximum;

impl Binary for Maximum {
    fn name(&self) -> &'static str {
        "maximum"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        if a > b || a.is_nan() {
            a
        } else {
            b
        }
    }
    fn df_da<T: Float>(&self, a: T, b: T, _y: T) -> T {
        pick(a, b, a < b)
    }
    fn df_db<T: Float>(&self, a: T, b: T, _y: T) -> T {
        pick(a, b, a > b)
    }
}

/// The smaller of `a` and `b` (NaN if either is NaN, like `torch.minimum`);
/// the gradient goes to the smaller operand and is split half and half on a
/// tie, as for [`Maximum`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Minimum;

impl Binary for Minimum {
    fn name(&self) -> &'static str {
        "minimum"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        if a < b || a.is_nan() {
            a
        } else {
            b
        }
    }
    fn df_da<T: Float>(&self, a: T, b: T, _y: T) -> T {
        pick(a, b, a > b)
    }
    fn df_db<T: Float>(&self, a: T, b: T, _y: T) -> T {
        pick(a, b, a < b)
    }
}

/// The share of the gradient one operand of `maximum`/`minimum` gets: half on
/// a tie, none where it `lost`, all otherwise (NaN included, as in PyTorch).
fn pick<T: Float>(a: T, b: T, lost: bool) -> T {
    if a == b {
        T::lit(0.5)
    } else if lost {
        T::zero()
    } else {
        T::one()
    }
}

/// `a^b` with a tensor exponent (the scalar-exponent form is
/// [`super::math::Pow`]); `∂/∂a = b a^(b-1)`, `∂/∂b = y ln a`.
///
/// As in PyTorch: `∂/∂a` is 0 where `b == 0`, and `∂/∂b` is 0 where `a == 0`
/// and `b >= 0` (where `a^b` is constant in `b` from the right). For `a < 0`
/// the value is defined only at integer `b`, and `∂/∂b` is NaN.
#[derive(Clone, Copy, Debug, Default)]
pub struct PowTensor;

impl Binary for PowTensor {
    fn name(&self) -> &'static str {
        "pow_var"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a.powf(b)
    }
    fn df_da<T: Float>(&self, a: T, b: T, _y: T) -> T {
        if b == T::zero() {
            T::zero()
        } else {
            b * a.powf(b - T::one())
        }
    }
    fn df_db<T: Float>(&self, a: T, b: T, y: T) -> T {
        if a == T::zero() && b >= T::zero() {
            T::zero()
        } else {
            y * a.ln()
        }
    }
}

/// `atan2(a, b)`: the angle of the point `(b, a)`, in `(-π, π]`;
/// `∂/∂a = b / (a² + b²)`, `∂/∂b = -a / (a² + b²)` (NaN at the origin, as in PyTorch).
#[derive(Clone, Copy, Debug, Default)]
pub struct Atan2;

impl Binary for Atan2 {
    fn name(&self) -> &'static str {
        "atan2"
    }
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a.atan2(b)
    }
    fn df_da<T: Float>(&self, a: T, b: T, _y: T) -> T {
        b / (a * a + b * b)
    }
    fn df_db<T: Float>(&self, a: T, b: T, _y: T) -> T {
        -a / (a * a + b * b)
    }
}

/// `a + b`, broadcasting: shorthand for `binary::forward(&Add, a, b)`.
pub fn add<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    forward(&Add, a, b)
}

/// `a - b`, broadcasting: shorthand for `binary::forward(&Sub, a, b)`.
pub fn sub<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    forward(&Sub, a, b)
}

/// `a * b`, broadcasting: shorthand for `binary::forward(&Mul, a, b)`.
pub fn mul<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    forward(&Mul, a, b)
}

/// `a / b`, broadcasting: shorthand for `binary::forward(&Div, a, b)`.
pub fn div<T: Float>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> ArrayD<T> {
    forward(&Div, a, b)
}
