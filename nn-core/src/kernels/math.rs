//! Element-wise math functions (`exp`, `log`, `sqrt`, `pow`, `abs`, `clamp`, and
//! the scalar affine maps behind `x + c`, `x * c`), each `f` beside its `f'`.

use super::pointwise::Pointwise;
use crate::Float;

/// `exp(x)`; `f' = y`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exp;

impl Pointwise for Exp {
    fn name(&self) -> &'static str {
        "exp"
    }
    fn f<T: Float>(&self, x: T) -> T {
        x.exp()
    }
    fn df<T: Float>(&self, _x: T, y: T) -> T {
        y
    }
}

/// Natural logarithm; `f' = 1/x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Log;

impl Pointwise for Log {
    fn name(&self) -> &'static str {
        "log"
    }
    fn f<T: Float>(&self, x: T) -> T {
        x.ln()
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        x.recip()
    }
}

/// Square root; `f' = 1 / (2y)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sqrt;

impl Pointwise for Sqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn f<T: Float>(&self, x: T) -> T {
        x.sqrt()
    }
    fn df<T: Float>(&self, _x: T, y: T) -> T {
        T::lit(0.5) / y
    }
}

/// `x^p` for a scalar exponent `p`; `f' = p x^(p-1)`.
#[derive(Clone, Copy, Debug)]
pub struct Pow(pub f64);

impl Pointwise for Pow {
    fn name(&self) -> &'static str {
        "pow"
    }
    fn f<T: Float>(&self, x: T) -> T {
        powf(x, self.0)
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        if self.0 == 0.0 {
            return T::zero();
        }
        T::lit(self.0) * powf(x, self.0 - 1.0)
    }
}

/// Integer exponents use repeated multiplication: exact, and defined for negative bases.
fn powf<T: Float>(x: T, p: f64) -> T {
    if p.fract() == 0.0 && p.abs() <= i32::MAX as f64 {
        x.powi(p as i32)
    } else {
        x.powf(T::lit(p))
    }
}

/// `|x|`; `f'` is the sign of `x`, and 0 at 0 (as in PyTorch).
#[derive(Clone, Copy, Debug, Default)]
pub struct Abs;

impl Pointwise for Abs {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn f<T: Float>(&self, x: T) -> T {
        x.abs()
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        sign(x)
    }
}

/// -1, 0 or 1 (unlike `f64::signum`, which is 1 at +0).
pub(crate) fn sign<T: Float>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

/// `min(max(x, lo), hi)` with optional bounds; `f' = 1` where `lo <= x <= hi`
/// (bounds inclusive, as in PyTorch), else 0.
#[derive(Clone, Copy, Debug)]
pub struct Clamp {
    /// Lower bound, if any.
    pub min: Option<f64>,
    /// Upper bound, if any.
    pub max: Option<f64>,
}

impl Pointwise for Clamp {
    fn name(&self) -> &'static str {
        "clamp"
    }
    fn f<T: Float>(&self, x: T) -> T {
        let mut y = x;
        if let Some(lo) = self.min {
            y = y.max(T::lit(lo));
        }
        if let Some(hi) = self.max {
            y = y.min(T::lit(hi));
        }
        y
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        let above = self.min.is_none_or(|lo| x >= T::lit(lo));
        let below = self.max.is_none_or(|hi| x <= T::lit(hi));
        if above && below {
            T::one()
        } else {
            T::zero()
        }
    }
}

/// `scale * x + shift`: the scalar forms of `+ - *` and unary `-`.
#[derive(Clone, Copy, Debug)]
pub struct Affine {
    /// Multiplier.
    pub scale: f64,
    /// Offset added after scaling.
    pub shift: f64,
}

impl Pointwise for Affine {
    fn name(&self) -> &'static str {
        "affine"
    }
    fn f<T: Float>(&self, x: T) -> T {
        T::lit(self.scale) * x + T::lit(self.shift)
    }
    fn df<T: Float>(&self, _x: T, _y: T) -> T {
        T::lit(self.scale)
    }
}

/// `c / x`; `f' = -c / x^2`.
#[derive(Clone, Copy, Debug)]
pub struct ScalarDiv(pub f64);

impl Pointwise for ScalarDiv {
    fn name(&self) -> &'static str {
        "div"
    }
    fn f<T: Float>(&self, x: T) -> T {
        T::lit(self.0) / x
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        -T::lit(self.0) / (x * x)
    }
}
