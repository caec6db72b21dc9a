//! RMSprop, as `torch.optim.RMSprop`.

use ndarray::Zip;
use nn_core::distributed::Share;
use nn_core::{Float, Parameters};

use crate::error::{check, OptimError};
use crate::layout::{Buffer, Layout};
use crate::state::{effective, States};
use crate::{lerp, lr, Optimizer, OptimizerState};

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
        lr::check_new("RMSprop", c.lr)?;
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

    /// The square average; the gradient average when centered; the momentum
    /// buffer with momentum.
    fn layout(&self) -> Layout {
        let c = &self.config;
        let square_avg = Buffer {
            name: "square_avg",
            required: true,
            // An α above 1 (allowed, as PyTorch allows it) weighs the new
            // square negatively, so only α <= 1 keeps the average >= 0.
            nonnegative: c.alpha <= 1.0,
        };
        let mut buffers = vec![square_avg];
        if c.centered {
            buffers.push(Buffer::signed("grad_avg"));
        }
        if c.momentum > 0.0 {
            buffers.push(Buffer::signed("momentum_buffer"));
        }
        Layout {
            optimizer: "RMSprop",
            buffers,
        }
    }
}

/// RMSprop's update of one element, with the settings as `T`.
#[derive(Clone, Copy)]
struct Rule<T> {
    alpha: T,
    /// `1 - alpha`.
    w: T,
    eps: T,
    lr: T,
    mu: T,
    wd: T,
    maximize: bool,
    eps_inside_sqrt: bool,
}

impl<T: Float> Rule<T> {
    /// Updates `p` and its square average `sq`, and the centered gradient
    /// average `avg` and momentum buffer `buf` where those are enabled.
    #[inline]
    fn apply(&self, p: &mut T, g: T, sq: &mut T, avg: Option<&mut T>, buf: Option<&mut T>) {
        let g = effective(*p, g, self.maximize, self.wd);
        *sq = *sq * self.alpha + self.w * g * g;
        let mut d = *sq;
        if let Some(a) = avg {
            *a = lerp(*a, g, self.w);
            d += (-T::one()) * *a * *a;
        }
        let d = if self.eps_inside_sqrt {
            (d + self.eps).sqrt()
        } else {
            d.sqrt() + self.eps
        };
        match buf {
            Some(b) => {
                *b = *b * self.mu + g / d;
                *p += (-self.lr) * *b;
            }
            None => *p += (-self.lr) * g / d,
        }
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
    fn step(&mut self, params: &dyn Parameters<T>) {
        self.step_share(params, Share::WHOLE);
    }

    fn is_elementwise(&self) -> bool {
        true
    }

    fn step_share(&mut self, params: &dyn Parameters<T>, share: Share) {
        let c = self.config;
        let (alpha, w, eps, lr, mu) = (
            T::lit(c.alpha),
            T::lit(1.0 - c.alpha),
            T::lit(c.eps),
            T::lit(c.lr),
            T::lit(c.momentum),
        );
        let wd = T::lit(c.weight_decay);
        let rule = Rule {
            alpha,
            w,
            eps,
            lr,
            mu,
            wd,
            maximize: c.maximize,
            eps_inside_sqrt: c.eps_inside_sqrt,
        };
        // Element-wise in place, buffers lent out of the state: no temporary
        // arrays per step.
        self.states.step(params, share, |p, g, st, part| {
            let dim = part.dim().clone();
            let mut sq = st.take("square_avg", &dim);
            let mut avg = c.centered.then(|| st.take("grad_avg", &dim));
            let mut buf = (c.momentum > 0.0).then(|| st.take("momentum_buffer", &dim));
            let z = Zip::from(p).and(g).and(part.of_mut(&mut sq));
            match (
                avg.as_mut().map(|a| part.of_mut(a)),
                buf.as_mut().map(|b| part.of_mut(b)),
            ) {
                (None, None) => z.for_each(|p, &g, s| rule.apply(p, g, s, None, None)),
                (Some(a), None) => z
                    .and(a)
                    .for_each(|p, &g, s, a| rule.apply(p, g, s, Some(a), None)),
                (None, Some(b)) => z
                    .and(b)
                    .for_each(|p, &g, s, b| rule.apply(p, g, s, None, Some(b))),
                (Some(a), Some(b)) => z
                    .and(a)
                    .and(b)
                    .for_each(|p, &g, s, a, b| rule.apply(p, g, s, Some(a), Some(b))),
            }
            st.put("square_avg", sq);
            if let Some(a) = avg {
                st.put("grad_avg", a);
            }
            if let Some(b) = buf {
                st.put("momentum_buffer", b);
            }
        });
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        lr::assert_settable("RMSprop", lr);
        self.config.lr = lr;
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export("RMSprop", self.config.lr)
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.config.lr = self.states.import(&self.layout(), state)?;
        Ok(())
    }
}

nn_core::instances!(impl Optimizer for RmsProp: step, step_share, state, load_state);
