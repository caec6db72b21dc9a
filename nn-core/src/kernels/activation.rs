//! Keras's element-wise activations, each `f` beside its derivative.
//! (`softmax` and `log_softmax` work along an axis: see [`super::softmax`].)

use std::f64::consts::{FRAC_2_SQRT_PI, SQRT_2};

use super::pointwise::Pointwise;
use crate::Float;

macro_rules! pointwise {
    ($(#[$doc:meta])* $ty:ident, $name:literal, |$s:ident, $x:ident| $f:expr, |$s2:ident, $x2:ident, $y2:ident| $df:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $ty;

        impl Pointwise for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            #[inline]
            #[allow(unused_variables)]
            fn f<T: Float>(&self, $x: T) -> T {
                let $s = self;
                $f
            }
            #[inline]
            #[allow(unused_variables)]
            fn df<T: Float>(&self, $x2: T, $y2: T) -> T {
                let $s2 = self;
                $df
            }
        }
    };
}

fn step<T: Float>(cond: bool) -> T {
    if cond {
        T::one()
    } else {
        T::zero()
    }
}

/// `x` clamped to `[lo, hi]`, NaN staying NaN (as in PyTorch: `relu(NaN)` is
/// NaN, so a diverged model shows it).
#[inline]
fn clamp_nan<T: Float>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// The logistic function, computed without overflow for either sign.
#[inline]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `log(1 + exp(x))` without overflow.
#[inline]
pub(crate) fn softplus<T: Float>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

pointwise!(
    /// `max(x, 0)`.
    Relu, "relu", |s, x| clamp_nan(x, T::zero(), T::infinity()), |s, x, y| step(x > T::zero())
);
pointwise!(
    /// `min(max(x, 0), 6)`.
    Relu6, "relu6", |s, x| clamp_nan(x, T::zero(), T::lit(6.0)),
    |s, x, y| step(x > T::zero() && x < T::lit(6.0))
);
pointwise!(
    /// The logistic sigmoid `1 / (1 + exp(-x))`.
    Sigmoid, "sigmoid", |s, x| sigmoid(x), |s, x, y| y * (T::one() - y)
);
pointwise!(
    /// `relu6(x + 3) / 6`, the Keras 3 and PyTorch definition.
    HardSigmoid, "hard_sigmoid",
    |s, x| clamp_nan(x + T::lit(3.0), T::zero(), T::lit(6.0)) / T::lit(6.0),
    |s, x, y| if x > T::lit(-3.0) && x < T::lit(3.0) { T::lit(1.0 / 6.0) } else { T::zero() }
);
pointwise!(
    /// `x * hard_sigmoid(x)` (Keras `hard_silu`, alias `hard_swish`).
    HardSilu, "hard_silu",
    |s, x| x * HardSigmoid.f(x),
    |s, x, y| HardSigmoid.f(x) + x * HardSigmoid.df(x, y)
);
pointwise!(
    /// Hyperbolic tangent.
    Tanh, "tanh", |s, x| x.tanh_fast(), |s, x, y| T::one() - y * y
);
pointwise!(
    /// `log(1 + exp(x))`, computed without overflow.
    Softplus, "softplus", |s, x| softplus(x), |s, x, y| sigmoid(x)
);
pointwise!(
    /// `x / (1 + |x|)`.
    Softsign, "softsign", |s, x| x / (T::one() + x.abs()),
    |s, x, y| { let d = T::one() + x.abs(); T::one() / (d * d) }
);
pointwise!(
    /// `x * sigmoid(x)` (Keras `silu`, alias `swish`).
    Silu, "silu", |s, x| x * sigmoid(x),
    |s, x, y| { let g = sigmoid(x); g * (T::one() + x * (T::one() - g)) }
);
pointwise!(
    /// `x * tanh(softplus(x))`.
    Mish, "mish", |s, x| x * softplus(x).tanh_fast(),
    |s, x, y| { let t = softplus(x).tanh_fast(); t + x * (T::one() - t * t) * sigmoid(x) }
);
pointwise!(
    /// `log(sigmoid(x)) = -softplus(-x)`.
    LogSigmoid, "log_sigmoid", |s, x| -softplus(-x), |s, x, y| sigmoid(-x)
);
pointwise!(
    /// `exp(x)`.
    Exponential, "exponential", |s, x| x.exp(), |s, x, y| y
);
/// The identity (`linear`, or no activation at all).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Linear;

impl Pointwise for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    #[inline]
    fn f<T: Float>(&self, x: T) -> T {
        x
    }
    #[inline]
    fn df<T: Float>(&self, _x: T, _y: T) -> T {
        T::one()
    }
    fn is_identity(&self) -> bool {
        true
    }
}

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

pointwise!(
    /// `scale * elu(x, alpha)` with the self-normalizing constants of
    /// Klambauer et al. (alpha ≈ 1.6733, scale ≈ 1.0507).
    Selu, "selu",
    |s, x| T::lit(SELU_SCALE) * if x > T::zero() { x } else { T::lit(SELU_ALPHA) * x.exp_m1() },
    |s, x, y| T::lit(SELU_SCALE) * if x > T::zero() { T::one() } else { T::lit(SELU_ALPHA) * x.exp() }
);

/// `x` for `x >= 0`, `negative_slope * x` below.
///
/// The default slope is Keras's 0.2 (PyTorch's `nn.LeakyReLU` defaults to 0.01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    /// Slope for negative inputs.
    pub negative_slope: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu {
            negative_slope: 0.2,
        }
    }
}

impl Pointwise for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    #[inline]
    fn f<T: Float>(&self, x: T) -> T {
        if x > T::zero() {
            x
        } else {
            T::lit(self.negative_slope) * x
        }
    }
    #[inline]
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        if x > T::zero() {
            T::one()
        } else {
            T::lit(self.negative_slope)
        }
    }
}

/// `x` for `x > 0`, `alpha * (exp(x) - 1)` below; `alpha` defaults to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu {
    /// Saturation value for large negative inputs is `-alpha`.
    pub alpha: f64,
}

impl Default for Elu {
    fn default() -> Self {
        Elu { alpha: 1.0 }
    }
}

impl Pointwise for Elu {
    fn name(&self) -> &'static str {
        "elu"
    }
    #[inline]
    fn f<T: Float>(&self, x: T) -> T {
        if x > T::zero() {
            x
        } else {
            T::lit(self.alpha) * x.exp_m1()
        }
    }
    #[inline]
    fn df<T: Float>(&self, x: T, y: T) -> T {
        if x > T::zero() {
            T::one()
        } else {
            y + T::lit(self.alpha)
        }
    }
}

/// Gaussian error linear unit: the exact form `x * Φ(x)` (Keras's and PyTorch's
/// default), or with `approximate` the tanh approximation
/// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Gelu {
    /// Use the tanh approximation.
    pub approximate: bool,
}

const GELU_TANH_C: f64 = 0.044_715;

impl Gelu {
    /// `√(2/π)`.
    fn k() -> f64 {
        FRAC_2_SQRT_PI / SQRT_2
    }
}

impl Pointwise for Gelu {
    fn name(&self) -> &'static str {
        if self.approximate {
            "gelu_tanh"
        } else {
            "gelu"
        }
    }
    #[inline]
    fn f<T: Float>(&self, x: T) -> T {
        let half = T::lit(0.5);
        if self.approximate {
            let u = T::lit(Self::k()) * (x + T::lit(GELU_TANH_C) * x * x * x);
            half * x * (T::one() + u.tanh_fast())
        } else {
            half * x * (T::one() + (x / T::lit(SQRT_2)).erf())
        }
    }
    #[inline]
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        let half = T::lit(0.5);
        if self.approximate {
            let k = T::lit(Self::k());
            let c = T::lit(GELU_TANH_C);
            let t = (k * (x + c * x * x * x)).tanh_fast();
            let du = k * (T::one() + T::lit(3.0) * c * x * x);
            half * (T::one() + t) + half * x * (T::one() - t * t) * du
        } else {
            let cdf = half * (T::one() + (x / T::lit(SQRT_2)).erf());
            // φ(x) = exp(-x²/2) / √(2π)
            let pdf = (-half * x * x).exp() * T::lit(FRAC_2_SQRT_PI / (2.0 * SQRT_2));
            cdf + x * pdf
        }
    }
}
