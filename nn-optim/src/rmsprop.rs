//! RMSprop, as `torch.optim.RMSprop`.

use ndarray::{ArrayD, Zip};
use nn_core::{Float, Parameters};

use crate::error::{check, OptimError};
use crate::state::{effective_grad, States};
use crate::{lerp, Optimizer, OptimizerState};

/// Settings of [`RmsProp`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate (default 1e-2; Keras uses 1e-3).
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average (default 0.99; Keras's `rho` is 0.9).
    pub alpha: f64,
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Momentum μ (default 0).
    pub momentum: f64,
    /// Normalize by the estimated variance instead of the second moment (default off).
    pub centered: bool,
    /// Ascend instead of descend (default off).
    pub maximize: bool,
    /// Keras's variant: `ε` inside the square root, `d = √(s + ε)` (default off,
    /// PyTorch's `d = √s + ε`). With Keras's `ε = 1e-7` it floors the denominator
    /// at about 3e-4, which changes training noticeably.
    pub eps_inside_sqrt: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
            eps_inside_sqrt: false,
        }
    }
}

/// RMSprop (Hinton) with PyTorch's update rule. For each parameter `θ` with
/// gradient `g`:
///
/// ```text
/// g ← -g if maximize;  g ← g + λθ if λ ≠ 0
/// s ← αs + (1 - α)g²
/// d ← √(s - ḡ²) + ε  with ḡ ← ḡ + (1 - α)(g - ḡ)   if centered
/// d ← √s + ε                                       otherwise
///   (with `eps_inside_sqrt`, Keras's form: √(s - ḡ² + ε) or √(s + ε))
/// b ← μb + g/d,  θ ← θ - lr·b                      if μ > 0
/// θ ← θ - lr·g/d                                   otherwise
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp<T: Float = f32> {
    config: RmsPropConfig,
    states: States<T>,
}

impl<T: Float> RmsProp<T> {
    /// RMSprop with `config`, validated as PyTorch validates it.
    pub fn new(config: RmsPropConfig) -> Result<Self, OptimError> {
        let c = &config;
        check(c.lr >= 0.0, "RMSprop", "lr", c.lr, "must be >= 0")?;
        check(c.eps >= 0.0, "RMSprop", "eps", c.eps, "must be >= 0")?;
        check(
            c.momentum >= 0.0,
            "RMSprop",
            "momentum",
            c.momentum,
            "must be >= 0",
        )?;
        check(
            c.weight_decay >= 0.0,
            "RMSprop",
            "weight_decay",
            c.weight_decay,
            "must be >= 0",
        )?;
        check(c.alpha >= 0.0, "RMSprop", "alpha", c.alpha, "must be >= 0")?;
        Ok(RmsProp {
            config,
            states: States::default(),
        })
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
    fn step(&mut self, params: &dyn Parameters<T>) {
        let c = self.config;
        let (alpha, w, eps, lr, mu) = (
            T::lit(c.alpha),
            T::lit(1.0 - c.alpha),
            T::lit(c.eps),
            T::lit(c.lr),
            T::lit(c.momentum),
        );
        self.states.step(params, |p, g, st| {
            let g = effective_grad(p, g, c.maximize, c.weight_decay);
            let zeros = || ArrayD::zeros(p.raw_dim());
            let sq = st.buffer("square_avg", zeros);
            Zip::from(&mut *sq)
                .and(&g)
                .for_each(|s, &g| *s = *s * alpha + w * g * g);
            let mut denom = sq.mapv(|s| s);
            if c.centered {
                let ga = st.buffer("grad_avg", zeros);
                Zip::from(&mut *ga)
                    .and(&g)
                    .for_each(|a, &g| *a = lerp(*a, g, w));
                Zip::from(&mut denom)
                    .and(&*ga)
                    .for_each(|d, &a| *d += (-T::one()) * a * a);
            }
            if c.eps_inside_sqrt {
                denom.mapv_inplace(|d| (d + eps).sqrt());
            } else {
                denom.mapv_inplace(|d| d.sqrt() + eps);
            }
            if c.momentum > 0.0 {
                let buf = st.buffer("momentum_buffer", zeros);
                Zip::from(&mut *buf)
                    .and(&g)
                    .and(&denom)
                    .for_each(|b, &g, &d| *b = *b * mu + g / d);
                Zip::from(p).and(&*buf).for_each(|p, &b| *p += (-lr) * b);
            } else {
                Zip::from(p)
                    .and(&g)
                    .and(&denom)
                    .for_each(|p, &g, &d| *p += (-lr) * g / d);
            }
        });
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export("RMSprop", self.config.lr)
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.config.lr = self.states.import("RMSprop", state)?;
        Ok(())
    }
}
