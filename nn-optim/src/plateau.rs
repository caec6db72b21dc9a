//! Reduce the learning rate when a metric stops improving, as PyTorch's
//! `ReduceLROnPlateau` (relative threshold).

use nn_core::Float;

use crate::error::{check, OptimError};
use crate::Optimizer;

/// Whether lower or higher metric values are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// A loss: lower is better.
    Min,
    /// An accuracy: higher is better.
    Max,
}

/// Multiplies the learning rate by `factor` after `patience` steps without an
/// improvement of more than `threshold` (relative), then waits `cooldown` steps;
/// never goes below `min_lr`.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    mode: PlateauMode,
    factor: f64,
    patience: usize,
    threshold: f64,
    cooldown: usize,
    min_lr: f64,
    best: f64,
    bad_steps: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// With PyTorch's defaults elsewhere: `threshold` 1e-4, no cooldown, `min_lr` 0.
    pub fn new(mode: PlateauMode, factor: f64, patience: usize) -> Result<Self, OptimError> {
        Self::with_options(mode, factor, patience, 1e-4, 0, 0.0)
    }

    /// Every option.
    pub fn with_options(
        mode: PlateauMode,
        factor: f64,
        patience: usize,
        threshold: f64,
        cooldown: usize,
        min_lr: f64,
    ) -> Result<Self, OptimError> {
        check(
            (0.0..1.0).contains(&factor),
            "ReduceLROnPlateau",
            "factor",
            factor,
            "must be in [0, 1)",
        )?;
        let best = match mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        Ok(ReduceLrOnPlateau {
            mode,
            factor,
            patience,
            threshold,
            cooldown,
            min_lr,
            best,
            bad_steps: 0,
            cooldown_left: 0,
        })
    }

    fn improves(&self, metric: f64) -> bool {
        match self.mode {
            PlateauMode::Min => metric < self.best * (1.0 - self.threshold),
            PlateauMode::Max => metric > self.best * (1.0 + self.threshold),
        }
    }

    /// Records this step's metric and lowers the optimizer's rate if it has plateaued.
    pub fn step<T: Float>(&mut self, metric: f64, optimizer: &mut dyn Optimizer<T>) {
        if self.improves(metric) {
            self.best = metric;
            self.bad_steps = 0;
        } else {
            self.bad_steps += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_steps = 0;
        }
        if self.bad_steps > self.patience {
            let old = optimizer.learning_rate();
            let new = (old * self.factor).max(self.min_lr);
            // PyTorch ignores changes below 1e-8. Only decreases pass, so from
            // a valid rate (finite, >= 0) and a factor in [0, 1) the new rate
            // is valid too, whatever `min_lr` is (`max` skips a NaN one).
            if old - new > 1e-8 {
                optimizer.set_learning_rate(new);
            }
            self.cooldown_left = self.cooldown;
            self.bad_steps = 0;
        }
    }
}

/// Where a [`ReduceLrOnPlateau`] stands: what a checkpoint keeps so that a
/// resumed run lowers the rate when the uninterrupted one would.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauState {
    /// The best metric so far.
    pub best: f64,
    /// Steps since it last improved.
    pub bad_steps: usize,
    /// Steps of cooldown left.
    pub cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// Where the scheduler stands.
    pub fn state(&self) -> PlateauState {
        PlateauState {
            best: self.best,
            bad_steps: self.bad_steps,
            cooldown_left: self.cooldown_left,
        }
    }

    /// Continues from `state` (from [`ReduceLrOnPlateau::state`]).
    pub fn restore(&mut self, state: PlateauState) {
        self.best = state.best;
        self.bad_steps = state.bad_steps;
        self.cooldown_left = state.cooldown_left;
    }
}
