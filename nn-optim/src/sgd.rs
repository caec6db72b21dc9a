//! Stochastic gradient descent with momentum, as `torch.optim.SGD`.

use ndarray::{ArrayD, Zip};
use nn_core::distributed::Share;
use nn_core::parallel::Shared;
use nn_core::{Float, Parameters};

use crate::elementwise::update_elements;
use crate::error::{check, OptimError};
use crate::layout::{Buffer, Layout};
use crate::state::{effective, States};
use crate::{flush_subnormal, lr, Optimizer, OptimizerState};

/// Settings of [`Sgd`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Momentum factor μ (default 0).
    pub momentum: f64,
    /// Dampening τ of the momentum (default 0).
    pub dampening: f64,
    /// Nesterov momentum (default off; needs momentum > 0 and no dampening).
    pub nesterov: bool,
    /// L2 penalty λ added to the gradient (default 0).
    pub weight_decay: f64,
    /// Ascend instead of descend (default off).
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// SGD with PyTorch's update rule. For each parameter `θ` with gradient `g`,
/// at step `t`:
///
/// ```text
/// g ← -g if maximize
/// g ← g + λθ                          if λ ≠ 0
/// if μ ≠ 0:
///     b ← g                           at t = 1
///     b ← μb + (1 - τ)g               after
///     g ← g + μb if nesterov, else b
/// θ ← θ - lr·g
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float = f32> {
    config: SgdConfig,
    states: States<T>,
}

impl<T: Float> Sgd<T> {
    /// SGD with `config`, validated as PyTorch validates it.
    pub fn new(config: SgdConfig) -> Result<Self, OptimError> {
        let c = &config;
        lr::check_new("SGD", c.lr)?;
        check(
            c.momentum >= 0.0,
            "SGD",
            "momentum",
            c.momentum,
            "must be >= 0",
        )?;
        check(
            c.dampening >= 0.0,
            "SGD",
            "dampening",
            c.dampening,
            "must be >= 0",
        )?;
        check(
            c.weight_decay >= 0.0,
            "SGD",
            "weight_decay",
            c.weight_decay,
            "must be >= 0",
        )?;
        check(
            !c.nesterov || (c.momentum > 0.0 && c.dampening == 0.0),
            "SGD",
            "nesterov",
            c.nesterov,
            "Nesterov momentum requires momentum > 0 and zero dampening",
        )?;
        Ok(Sgd {
            config,
            states: States::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The momentum buffer, only with momentum.
    fn layout(&self) -> Layout {
        let momentum = Buffer {
            name: "momentum_buffer",
            required: false,
            nonnegative: false,
        };
        Layout {
            optimizer: "SGD",
            buffers: (self.config.momentum != 0.0)
                .then_some(momentum)
                .into_iter()
                .collect(),
        }
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &dyn Parameters<T>) {
        self.step_share(params, Share::WHOLE);
    }

    fn is_elementwise(&self) -> bool {
        true
    }

    fn step_share(&mut self, params: &dyn Parameters<T>, share: Share) {
        let c = self.config;
        let (lr, mu, damp) = (T::lit(c.lr), T::lit(c.momentum), T::lit(1.0 - c.dampening));
        let wd = T::lit(c.weight_decay);
        // Element-wise in place: no temporary arrays per step.
        self.states.step(params, share, |mut p, g, st, part| {
            let eff = |p: T, g: T| effective(p, g, c.maximize, wd);
            if c.momentum == 0.0 {
                Zip::from(p)
                    .and(g)
                    .for_each(|p, &g| *p += (-lr) * eff(*p, g));
                return;
            }
            let first = !st.buffers.contains_key("momentum_buffer");
            let mut buf =
                part.of_mut(st.buffer("momentum_buffer", || ArrayD::zeros(part.dim().clone())));
            if let (false, Some(ps), Some(gs), Some(bs)) =
                (first, p.as_slice_mut(), g.as_slice(), buf.as_slice_mut())
            {
                // The common case, in parallel and wide, in one pass: the
                // same arithmetic, with the settings copied in.
                let (ps, bs) = (Shared::new(ps), Shared::new(bs));
                let rule = Momentum {
                    maximize: c.maximize,
                    wd,
                    mu,
                    damp,
                    lr: -lr,
                    nesterov: c.nesterov,
                };
                update_elements(gs.len(), move |r| {
                    // SAFETY: the ranges given to the parts are disjoint.
                    let (ps, bs) = unsafe { (ps.slice(r.clone()), bs.slice(r.clone())) };
                    rule.apply(ps, &gs[r], bs);
                });
                return;
            }
            Zip::from(&mut buf).and(&p).and(&g).for_each(|b, &p, &g| {
                *b = flush_subnormal(if first {
                    eff(p, g)
                } else {
                    *b * mu + damp * eff(p, g)
                });
            });
            if c.nesterov {
                Zip::from(p)
                    .and(g)
                    .and(&buf)
                    .for_each(|p, &g, &b| *p += (-lr) * (eff(*p, g) + mu * b));
            } else {
                Zip::from(p).and(&buf).for_each(|p, &b| *p += (-lr) * b);
            }
        });
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        lr::assert_settable("SGD", lr);
        self.config.lr = lr;
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export("SGD", self.config.lr)
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.config.lr = self.states.import(&self.layout(), state)?;
        Ok(())
    }
}

/// SGD-momentum's update of contiguous slices after the first step, with
/// the settings as `T`: the general path's arithmetic in one pass, compiled
/// a second time for the widest vectors (ndarray's two `Zip` passes were an
/// eighth of a small MLP's step).
#[derive(Clone, Copy)]
struct Momentum<T> {
    maximize: bool,
    wd: T,
    mu: T,
    /// `1 - dampening`.
    damp: T,
    /// `-lr`.
    lr: T,
    nesterov: bool,
}

impl<T: Float> Momentum<T> {
    fn apply(&self, p: &mut [T], g: &[T], b: &mut [T]) {
        nn_core::run_widest!(<T: Float> (
            r: &Momentum<T> = self,
            p: &mut [T] = p,
            g: &[T] = g,
            b: &mut [T] = b,
        ) => r.run(p, g, b))
    }

    #[inline(always)]
    fn run(&self, p: &mut [T], g: &[T], b: &mut [T]) {
        let r = *self;
        for ((p, &g), b) in p.iter_mut().zip(g).zip(b) {
            let d = effective(*p, g, r.maximize, r.wd);
            *b = flush_subnormal(*b * r.mu + r.damp * d);
            *p += r.lr * if r.nesterov { d + r.mu * *b } else { *b };
        }
    }
}

nn_core::instances!(impl Optimizer for Sgd: step, step_share, state, load_state);
