//! Adam and AdamW, as `torch.optim.Adam` and `torch.optim.AdamW`.

use ndarray::Zip;
use nn_core::distributed::Share;
use nn_core::parallel::Shared;
use nn_core::{Float, Parameters};

use crate::elementwise::update_elements;
use crate::error::{check, OptimError};
use crate::layout::{Buffer, Layout};
use crate::state::{effective, States};
use crate::{flush_subnormal, lerp, lr, Optimizer, OptimizerState};

/// Settings of [`Adam`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the moment estimates (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0, PyTorch's). AdamW's
    /// decoupled decay is [`AdamWConfig::weight_decay`].
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (default off).
    pub amsgrad: bool,
    /// Ascend instead of descend (default off).
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

fn validate(name: &'static str, c: &AdamConfig) -> Result<(), OptimError> {
    lr::check_new(name, c.lr)?;
    check(c.eps >= 0.0, name, "eps", c.eps, "must be >= 0")?;
    check(
        (0.0..1.0).contains(&c.betas.0),
        name,
        "betas.0",
        c.betas.0,
        "must be in [0, 1)",
    )?;
    check(
        (0.0..1.0).contains(&c.betas.1),
        name,
        "betas.1",
        c.betas.1,
        "must be in [0, 1)",
    )?;
    check(
        c.weight_decay >= 0.0,
        name,
        "weight_decay",
        c.weight_decay,
        "must be >= 0",
    )
}

/// Adam (Kingma & Ba) with PyTorch's update rule. For each parameter `θ` with
/// gradient `g`, at step `t`:
///
/// ```text
/// g ← -g if maximize
/// g ← g + λθ                     if λ ≠ 0   (Adam's L2 penalty)
/// m ← m + (1 - β₁)(g - m)
/// v ← β₂v + (1 - β₂)g²
/// v̂ ← max(v̂, v) if amsgrad, else v
/// θ ← θ - (lr / (1 - β₁ᵗ)) · m / (√v̂ / √(1 - β₂ᵗ) + ε)
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T: Float = f32> {
    config: AdamConfig,
    states: States<T>,
    decoupled: bool,
}

/// Settings of [`AdamW`], with PyTorch's defaults: Adam's, and a decoupled
/// weight decay of 1e-2. A type of its own, so `AdamW::new(AdamWConfig {
/// lr: 3e-4, ..Default::default() })` keeps AdamW's decay rather than
/// silently taking Adam's 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the moment estimates (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// Added to the denominator for stability (default 1e-8).
    pub eps: f64,
    /// Decoupled decay λ: `θ ← θ(1 - lr·λ)` before each update (default 1e-2).
    pub weight_decay: f64,
    /// Use the running maximum of the second moment (default off).
    pub amsgrad: bool,
    /// Ascend instead of descend (default off).
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay. Before the
/// Adam update of each parameter, `θ ← θ(1 - lr·λ)`; the gradient gets no L2
/// term. Configured by [`AdamWConfig`] (PyTorch's default λ, 1e-2).
pub struct AdamW;

impl AdamW {
    /// PyTorch's AdamW defaults, [`AdamWConfig::default`].
    pub fn default_config() -> AdamWConfig {
        AdamWConfig::default()
    }

    /// AdamW with `config`, validated.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: Float>(config: AdamWConfig) -> Result<Adam<T>, OptimError> {
        let config = AdamConfig {
            lr: config.lr,
            betas: config.betas,
            eps: config.eps,
            weight_decay: config.weight_decay,
            amsgrad: config.amsgrad,
            maximize: config.maximize,
        };
        validate("AdamW", &config)?;
        Ok(Adam {
            config,
            states: States::default(),
            decoupled: true,
        })
    }
}

impl<T: Float> Adam<T> {
    /// Adam with `config`, validated as PyTorch validates it.
    pub fn new(config: AdamConfig) -> Result<Self, OptimError> {
        validate("Adam", &config)?;
        Ok(Adam {
            config,
            states: States::default(),
            decoupled: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    fn name(&self) -> &'static str {
        if self.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }

    /// Both moments, and their running maximum with amsgrad.
    fn layout(&self) -> Layout {
        let mut buffers = vec![Buffer::signed("exp_avg"), Buffer::squares("exp_avg_sq")];
        if self.config.amsgrad {
            buffers.push(Buffer::squares("max_exp_avg_sq"));
        }
        Layout {
            optimizer: self.name(),
            buffers,
        }
    }
}

/// Adam's update of contiguous slices, with the settings as `T`: the same
/// arithmetic as the general path, in a loop compiled a second time for
/// AVX-512 (the square root and division dominate it).
#[derive(Clone, Copy)]
struct Rule<T> {
    maximize: bool,
    wd: T,
    /// `1 - beta1`.
    w1: T,
    beta2: T,
    /// `1 - beta2`.
    w2: T,
    /// `-lr / (1 - beta1^t)`.
    lr: T,
    bc2_sqrt: T,
    eps: T,
}

impl<T: Float> Rule<T> {
    fn apply(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        nn_core::run_widest!(<T: Float> (
            r: &Rule<T> = self,
            p: &mut [T] = p,
            g: &[T] = g,
            m: &mut [T] = m,
            v: &mut [T] = v,
        ) => r.run(p, g, m, v))
    }

    #[inline(always)]
    fn run(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        let r = *self;
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
            let g = effective(*p, g, r.maximize, r.wd);
            *m = flush_subnormal(lerp(*m, g, r.w1));
            *v = *v * r.beta2 + r.w2 * g * g;
            *p += r.lr * *m / (v.sqrt() / r.bc2_sqrt + r.eps);
        }
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, params: &dyn Parameters<T>) {
        self.step_share(params, Share::WHOLE);
    }

    fn is_elementwise(&self) -> bool {
        true
    }

    fn step_share(&mut self, params: &dyn Parameters<T>, share: Share) {
        let c = self.config;
        let decoupled = self.decoupled;
        let (b1, b2) = c.betas;
        let (w1, w2) = (T::lit(1.0 - b1), T::lit(1.0 - b2));
        let (beta2, eps) = (T::lit(b2), T::lit(c.eps));
        let wd = T::lit(if decoupled { 0.0 } else { c.weight_decay });
        // One pass over parameter, gradient and moments: no temporaries per step.
        self.states.step(params, share, |mut p, g, st, part| {
            let t = st.step as i32;
            if decoupled {
                let keep = T::lit(1.0 - c.lr * c.weight_decay);
                p.mapv_inplace(|v| v * keep);
            }
            let step_size = T::lit(c.lr / (1.0 - b1.powi(t)));
            let bc2_sqrt = T::lit((1.0 - b2.powi(t)).sqrt());
            let dim = part.dim().clone();
            let (mut m_all, mut v_all) = (st.take("exp_avg", &dim), st.take("exp_avg_sq", &dim));
            let (mut m, mut v) = (part.of_mut(&mut m_all), part.of_mut(&mut v_all));
            let moments = |p: &mut T, g: T, m: &mut T, v: &mut T| {
                let g = effective(*p, g, c.maximize, wd);
                *m = flush_subnormal(lerp(*m, g, w1));
                *v = *v * beta2 + w2 * g * g;
            };
            let update =
                |p: &mut T, m: T, v: T| *p += (-step_size) * m / (v.sqrt() / bc2_sqrt + eps);
            if let (false, Some(ps), Some(gs), Some(ms), Some(vs)) = (
                c.amsgrad,
                p.as_slice_mut(),
                g.as_slice(),
                m.as_slice_mut(),
                v.as_slice_mut(),
            ) {
                // The common case, in parallel and wide: the same arithmetic,
                // with the settings copied in so the loop sees plain values.
                let (ps, ms, vs) = (Shared::new(ps), Shared::new(ms), Shared::new(vs));
                let rule = Rule {
                    maximize: c.maximize,
                    wd,
                    w1,
                    beta2,
                    w2,
                    lr: -step_size,
                    bc2_sqrt,
                    eps,
                };
                update_elements(gs.len(), move |r| {
                    // SAFETY: the ranges given to the parts are disjoint.
                    let (ps, ms, vs) = unsafe {
                        (
                            ps.slice(r.clone()),
                            ms.slice(r.clone()),
                            vs.slice(r.clone()),
                        )
                    };
                    rule.apply(ps, &gs[r], ms, vs);
                });
            } else if c.amsgrad {
                let mut vmax_all = st.take("max_exp_avg_sq", &dim);
                Zip::from(&mut p)
                    .and(&g)
                    .and(&mut m)
                    .and(&mut v)
                    .and(&mut part.of_mut(&mut vmax_all))
                    .for_each(|p, &g, m, v, vm| {
                        moments(p, g, m, v);
                        *vm = vm.max(*v);
                        update(p, *m, *vm);
                    });
                st.put("max_exp_avg_sq", vmax_all);
            } else {
                Zip::from(&mut p)
                    .and(&g)
                    .and(&mut m)
                    .and(&mut v)
                    .for_each(|p, &g, m, v| {
                        moments(p, g, m, v);
                        update(p, *m, *v);
                    });
            }
            st.put("exp_avg", m_all);
            st.put("exp_avg_sq", v_all);
        });
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        lr::assert_settable(self.name(), lr);
        self.config.lr = lr;
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export(self.name(), self.config.lr)
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.config.lr = self.states.import(&self.layout(), state)?;
        Ok(())
    }
}

nn_core::instances!(impl Optimizer for Adam: step, step_share, state, load_state);
