//! Adagrad, as `torch.optim.Adagrad`.

use ndarray::{ArrayD, Zip};
use nn_core::distributed::Share;
use nn_core::{Float, Parameters};

use crate::error::{check, OptimError};
use crate::layout::{Buffer, Layout};
use crate::state::{effective, States};
use crate::{lr, Optimizer, OptimizerState};

/// Settings of [`Adagrad`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate (default 1e-2).
    pub lr: f64,
    /// Learning-rate decay per step (default 0).
    pub lr_decay: f64,
    /// L2 penalty (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum (default 0).
    pub initial_accumulator_value: f64,
    /// Added to the denominator (default 1e-10).
    pub eps: f64,
    /// Ascend instead of descend (default off).
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad (Duchi et al.) with PyTorch's update rule. For each parameter `θ`
/// with gradient `g`, at step `t`:
///
/// ```text
/// g ← -g if maximize;  g ← g + λθ if λ ≠ 0
/// η ← lr / (1 + (t - 1)·lr_decay)
/// s ← s + g²          (s starts at initial_accumulator_value)
/// θ ← θ - η·g / (√s + ε)
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T: Float = f32> {
    config: AdagradConfig,
    states: States<T>,
}

impl<T: Float> Adagrad<T> {
    /// Adagrad with `config`, validated as PyTorch validates it.
    pub fn new(config: AdagradConfig) -> Result<Self, OptimError> {
        let c = &config;
        lr::check_new("Adagrad", c.lr)?;
        check(
            c.lr_decay >= 0.0,
            "Adagrad",
            "lr_decay",
            c.lr_decay,
            "must be >= 0",
        )?;
        check(
            c.weight_decay >= 0.0,
            "Adagrad",
            "weight_decay",
            c.weight_decay,
            "must be >= 0",
        )?;
        check(
            c.initial_accumulator_value >= 0.0,
            "Adagrad",
            "initial_accumulator_value",
            c.initial_accumulator_value,
            "must be >= 0",
        )?;
        check(c.eps >= 0.0, "Adagrad", "eps", c.eps, "must be >= 0")?;
        Ok(Adagrad {
            config,
            states: States::default(),
        })
    }

    /// The sum of squared gradients.
    fn layout(&self) -> Layout {
        Layout {
            optimizer: "Adagrad",
            buffers: vec![Buffer::squares("sum")],
        }
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn step(&mut self, params: &dyn Parameters<T>) {
        self.step_share(params, Share::WHOLE);
    }

    fn is_elementwise(&self) -> bool {
        true
    }

    fn step_share(&mut self, params: &dyn Parameters<T>, share: Share) {
        let c = self.config;
        let eps = T::lit(c.eps);
        let wd = T::lit(c.weight_decay);
        // Element-wise in place: no temporary arrays per step.
        self.states.step(params, share, |p, g, st, part| {
            let clr = T::lit(c.lr / (1.0 + (st.step - 1) as f64 * c.lr_decay));
            let init = T::lit(c.initial_accumulator_value);
            let sum = st.buffer("sum", || ArrayD::from_elem(part.dim().clone(), init));
            Zip::from(p)
                .and(g)
                .and(part.of_mut(sum))
                .for_each(|p, &g, s| {
                    let g = effective(*p, g, c.maximize, wd);
                    *s += g * g;
                    *p += (-clr) * g / (s.sqrt() + eps);
                });
        });
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        lr::assert_settable("Adagrad", lr);
        self.config.lr = lr;
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export("Adagrad", self.config.lr)
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), OptimError> {
        self.config.lr = self.states.import(&self.layout(), state)?;
        Ok(())
    }
}

nn_core::instances!(impl Optimizer for Adagrad: step, step_share, state, load_state);
