//! The formulas of Keras's element-wise activations, each `f` beside its
//! derivative. The types, their arguments and defaults come from the
//! activation table (`nn_spec::activation_table!`, generated into
//! [`crate::activation`]); the axis-wise ones are in [`super::softmax`],
//! [`super::sparsemax`] and [`super::glu`].

use std::f64::consts::{FRAC_2_SQRT_PI, SQRT_2};

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

use super::gelu;
use super::pointwise::{self, Pointwise};
use crate::activation::ActivationFn;
use crate::activation::*;
use crate::Float;

/// `impl Pointwise for Type`: `f` with `s` the activation and `x` the input;
/// `df` also given `y = f(x)`.
macro_rules! formula {
    ($ty:ident, |$s:ident, $x:ident| $f:expr, |$s2:ident, $x2:ident, $y2:ident| $df:expr) => {
        impl Pointwise for $ty {
            fn name(&self) -> &'static str {
                Self::NAME
            }
            // Always inlined, into the vectorized loops of `pointwise` (an
            // out-of-line call, GELU's derivative was, keeps them scalar).
            #[inline(always)]
            #[allow(unused_variables)]
            fn f<T: Float>(&self, $x: T) -> T {
                let $s = self;
                $f
            }
            #[inline(always)]
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
/// NaN, so a diverged model shows it). Every activation here keeps NaN, and
/// at a kink (`relu` at 0, `hard_sigmoid` at ±3, …) takes the derivative of
/// the side its comparison selects, which may differ from PyTorch's choice
/// at exactly that point.
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

/// `max(x, 0)`: Keras's `relu` at its defaults, the common case.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlainRelu;

impl PlainRelu {
    const NAME: &'static str = "relu";
}

formula!(
    PlainRelu,
    |s, x| clamp_nan(x, T::zero(), T::infinity()),
    |s, x, y| step(x > T::zero())
);

/// Keras's `relu` with its arguments: `x` above `threshold` (else 0), clipped
/// to `[0, max_value]` when one is given, minus `negative_slope * max(threshold
/// - x, 0)`. NaN stays NaN, as in Keras (`x * (x > threshold)`).
#[derive(Clone, Copy, Debug)]
struct KerasRelu(Relu);

impl KerasRelu {
    const NAME: &'static str = "relu";
}

formula!(
    KerasRelu,
    |s, x| {
        let r = s.0;
        let t = T::lit(r.threshold);
        let mut y = if x <= t { T::zero() } else { x };
        if let Some(m) = r.max_value {
            y = clamp_nan(y, T::zero(), T::lit(m));
        }
        if r.negative_slope != 0.0 {
            y -= T::lit(r.negative_slope) * (t - x).max(T::zero());
        }
        y
    },
    |s, x, y| {
        let r = s.0;
        let t = T::lit(r.threshold);
        let mut d = step::<T>(x > t);
        if let Some(m) = r.max_value {
            // Clipped to [0, m]: flat below 0 (reachable when the threshold
            // is negative) and above m.
            if x < T::zero() || x > T::lit(m) {
                d = T::zero();
            }
        }
        if r.negative_slope != 0.0 && x < t {
            d += T::lit(r.negative_slope);
        }
        d
    }
);

/// `relu` chooses its formula once per call, not per element: the defaults
/// run `max(x, 0)` in a loop the compiler vectorizes (checking the
/// arguments inside the loop cost LeNet-5 a fifth of its epoch).
impl ActivationFn for Relu {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn is_plain_relu(&self) -> bool {
        self.is_plain()
    }
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
        if self.is_plain() {
            pointwise::forward_into(&PlainRelu, x, y);
        } else {
            pointwise::forward_into(&KerasRelu(*self), x, y);
        }
    }
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    ) {
        if self.is_plain() {
            pointwise::backward_into(&PlainRelu, x, y, dy, dx);
        } else {
            pointwise::backward_into(&KerasRelu(*self), x, y, dy, dx);
        }
    }
    fn forward<T: Float>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        if self.is_plain() {
            pointwise::forward(&PlainRelu, x)
        } else {
            pointwise::forward(&KerasRelu(*self), x)
        }
    }
}

impl Relu {
    /// Whether this is plain `max(x, 0)` (the defaults).
    fn is_plain(&self) -> bool {
        self.negative_slope == 0.0 && self.max_value.is_none() && self.threshold == 0.0
    }
}

formula!(
    Relu6,
    |s, x| clamp_nan(x, T::zero(), T::lit(6.0)),
    |s, x, y| step(x > T::zero() && x < T::lit(6.0))
);
formula!(Sigmoid, |s, x| sigmoid(x), |s, x, y| y * (T::one() - y));
formula!(
    HardSigmoid,
    |s, x| clamp_nan(x + T::lit(3.0), T::zero(), T::lit(6.0)) / T::lit(6.0),
    |s, x, y| if x > T::lit(-3.0) && x < T::lit(3.0) {
        T::lit(1.0 / 6.0)
    } else {
        T::zero()
    }
);
formula!(HardSilu, |s, x| x * HardSigmoid.f(x), |s, x, y| HardSigmoid
    .f(x)
    + x * HardSigmoid.df(x, y));
formula!(
    HardTanh,
    |s, x| clamp_nan(x, -T::one(), T::one()),
    |s, x, y| step(x > -T::one() && x < T::one())
);
formula!(Tanh, |s, x| x.tanh_fast(), |s, x, y| T::one() - y * y);
formula!(TanhShrink, |s, x| x - x.tanh_fast(), |s, x, y| {
    let t = x.tanh_fast();
    t * t
});
formula!(Softplus, |s, x| softplus(x), |s, x, y| sigmoid(x));
formula!(Softsign, |s, x| x / (T::one() + x.abs()), |s, x, y| {
    let d = T::one() + x.abs();
    T::one() / (d * d)
});
formula!(Silu, |s, x| x * sigmoid(x), |s, x, y| {
    let g = sigmoid(x);
    g * (T::one() + x * (T::one() - g))
});
formula!(Mish, |s, x| x * softplus(x).tanh_fast(), |s, x, y| {
    let t = softplus(x).tanh_fast();
    t + x * (T::one() - t * t) * sigmoid(x)
});
formula!(LogSigmoid, |s, x| -softplus(-x), |s, x, y| sigmoid(-x));
formula!(Exponential, |s, x| x.exp(), |s, x, y| y);
formula!(
    HardShrink,
    // Written so NaN falls through to `x`, as in PyTorch.
    |s, x| if x.abs() <= T::lit(s.threshold) {
        T::zero()
    } else {
        x
    },
    |s, x, y| step(x.abs() > T::lit(s.threshold))
);
formula!(
    SoftShrink,
    |s, x| {
        let t = T::lit(s.threshold);
        if x > t {
            x - t
        } else if x < -t {
            x + t
        } else {
            // `x * 0`, not 0, so NaN stays NaN (PyTorch's kernel does the same).
            x * T::zero()
        }
    },
    |s, x, y| step(x.abs() > T::lit(s.threshold))
);
formula!(
    SparsePlus,
    |s, x| if x <= -T::one() {
        T::zero()
    } else if x >= T::one() {
        x
    } else {
        let u = x + T::one();
        u * u * T::lit(0.25)
    },
    |s, x, y| if x <= -T::one() {
        T::zero()
    } else if x >= T::one() {
        T::one()
    } else {
        (x + T::one()) * T::lit(0.5)
    }
);
formula!(
    SparseSigmoid,
    |s, x| clamp_nan((x + T::one()) * T::lit(0.5), T::zero(), T::one()),
    |s, x, y| if x > -T::one() && x < T::one() {
        T::lit(0.5)
    } else {
        T::zero()
    }
);
formula!(
    Squareplus,
    |s, x| (x + (x * x + T::lit(s.b)).sqrt()) * T::lit(0.5),
    |s, x, y| (T::one() + x / (x * x + T::lit(s.b)).sqrt()) * T::lit(0.5)
);
formula!(
    Threshold,
    // `x <= threshold`, not `!(x > threshold)`, so NaN stays NaN (PyTorch's rule).
    |s, x| if x <= T::lit(s.threshold) {
        T::lit(s.default_value)
    } else {
        x
    },
    |s, x, y| step(x > T::lit(s.threshold))
);

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

formula!(
    Selu,
    |s, x| T::lit(SELU_SCALE)
        * if x > T::zero() {
            x
        } else {
            T::lit(SELU_ALPHA) * x.exp_m1()
        },
    |s, x, y| T::lit(SELU_SCALE)
        * if x > T::zero() {
            T::one()
        } else {
            T::lit(SELU_ALPHA) * x.exp()
        }
);
formula!(
    LeakyRelu,
    |s, x| if x > T::zero() {
        x
    } else {
        T::lit(s.negative_slope) * x
    },
    |s, x, y| if x > T::zero() {
        T::one()
    } else {
        T::lit(s.negative_slope)
    }
);
formula!(
    Elu,
    |s, x| if x > T::zero() {
        x
    } else {
        T::lit(s.alpha) * x.exp_m1()
    },
    |s, x, y| if x > T::zero() {
        T::one()
    } else {
        y + T::lit(s.alpha)
    }
);
formula!(
    Celu,
    |s, x| if x > T::zero() {
        x
    } else {
        T::lit(s.alpha) * (x / T::lit(s.alpha)).exp_m1()
    },
    |s, x, y| if x > T::zero() {
        T::one()
    } else {
        (x / T::lit(s.alpha)).exp()
    }
);

/// The identity: layers skip it.
impl Pointwise for Linear {
    fn name(&self) -> &'static str {
        Self::NAME
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

const GELU_TANH_C: f64 = 0.044_715;
/// `√(2/π)`.
const GELU_K: f64 = FRAC_2_SQRT_PI / SQRT_2;

formula!(
    Gelu,
    |s, x| {
        let half = T::lit(0.5);
        if s.approximate {
            let u = T::lit(GELU_K) * (x + T::lit(GELU_TANH_C) * x * x * x);
            half * x * (T::one() + u.tanh_fast())
        } else {
            gelu::gelu_of(x, gelu::twice_cdf(x))
        }
    },
    |s, x, y| {
        let half = T::lit(0.5);
        if s.approximate {
            let k = T::lit(GELU_K);
            let c = T::lit(GELU_TANH_C);
            let t = (k * (x + c * x * x * x)).tanh_fast();
            let du = k * (T::one() + T::lit(3.0) * c * x * x);
            half * (T::one() + t) + half * x * (T::one() - t * t) * du
        } else {
            gelu::gelu_slope(x, gelu::twice_cdf(x))
        }
    }
);
