//! Learning-rate schedules: closed-form factors of the base learning rate, and
//! a driver that applies one to an optimizer step by step.

use std::f64::consts::PI;

use nn_core::Float;

use crate::error::{check, OptimError};
use crate::Optimizer;

/// A learning rate as a function of the step (or epoch) count `t`, starting at 0.
///
/// From a finite base rate `>= 0` the schedules here give a finite rate `>= 0`
/// (what [`Optimizer::set_learning_rate`] accepts), except a decay factor
/// `gamma` above 1: the rate then grows without bound and, after enough
/// steps, overflows to infinity.
pub trait Schedule {
    /// The learning rate at `t` for base rate `base`.
    fn lr(&self, base: f64, t: usize) -> f64;
}

/// `base · γ^⌊t / step_size⌋` (PyTorch's `StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Steps between decays.
    pub step_size: usize,
    /// Decay factor.
    pub gamma: f64,
}

impl StepLr {
    /// Decays by `gamma` every `step_size` steps.
    pub fn new(step_size: usize, gamma: f64) -> Result<Self, OptimError> {
        check(
            step_size > 0,
            "StepLR",
            "step_size",
            step_size,
            "must be > 0",
        )?;
        // A negative or NaN factor would make a rate no optimizer accepts.
        check(
            gamma.is_finite() && gamma >= 0.0,
            "StepLR",
            "gamma",
            gamma,
            "must be finite and >= 0",
        )?;
        Ok(StepLr { step_size, gamma })
    }
}

impl Schedule for StepLr {
    fn lr(&self, base: f64, t: usize) -> f64 {
        base * self.gamma.powi((t / self.step_size) as i32)
    }
}

/// `base · γ^(number of milestones ≤ t)` (PyTorch's `MultiStepLR`).
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    /// Steps at which the rate is multiplied by `gamma`.
    pub milestones: Vec<usize>,
    /// Decay factor.
    pub gamma: f64,
}

impl MultiStepLr {
    /// Decays by `gamma` at each milestone.
    pub fn new(milestones: Vec<usize>, gamma: f64) -> Self {
        MultiStepLr { milestones, gamma }
    }
}

impl Schedule for MultiStepLr {
    fn lr(&self, base: f64, t: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        base * self.gamma.powi(passed as i32)
    }
}

/// `base · γ^t` (PyTorch's `ExponentialLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Decay factor per step.
    pub gamma: f64,
}

impl Schedule for ExponentialLr {
    fn lr(&self, base: f64, t: usize) -> f64 {
        base * self.gamma.powi(t as i32)
    }
}

/// `η_min + (base - η_min)(1 + cos(π t / T_max)) / 2` (PyTorch's
/// `CosineAnnealingLR`; past `T_max` it rises again, as PyTorch's does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealing {
    /// Half period, in steps.
    pub t_max: usize,
    /// The floor.
    pub eta_min: f64,
}

impl CosineAnnealing {
    /// Anneals from the base rate to `eta_min` over `t_max` steps.
    pub fn new(t_max: usize, eta_min: f64) -> Result<Self, OptimError> {
        check(
            t_max > 0,
            "CosineAnnealingLR",
            "t_max",
            t_max,
            "must be > 0",
        )?;
        // The rate passes through `eta_min`: it must be a valid rate itself.
        check(
            eta_min.is_finite() && eta_min >= 0.0,
            "CosineAnnealingLR",
            "eta_min",
            eta_min,
            "must be finite and >= 0",
        )?;
        Ok(CosineAnnealing { t_max, eta_min })
    }
}

impl Schedule for CosineAnnealing {
    fn lr(&self, base: f64, t: usize) -> f64 {
        self.eta_min
            + (base - self.eta_min) * (1.0 + (PI * t as f64 / self.t_max as f64).cos()) / 2.0
    }
}

/// A linear ramp of the factor from `start` to `end` over `total` steps, then
/// constant (PyTorch's `LinearLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLr {
    /// Factor at `t = 0`.
    pub start: f64,
    /// Factor from `t = total` on.
    pub end: f64,
    /// Length of the ramp.
    pub total: usize,
}

impl LinearLr {
    /// A ramp of the factor from `start` to `end` over `total` steps.
    pub fn new(start: f64, end: f64, total: usize) -> Result<Self, OptimError> {
        check(
            start > 0.0 && start <= 1.0,
            "LinearLR",
            "start_factor",
            start,
            "must be in (0, 1]",
        )?;
        check(
            (0.0..=1.0).contains(&end),
            "LinearLR",
            "end_factor",
            end,
            "must be in [0, 1]",
        )?;
        Ok(LinearLr { start, end, total })
    }
}

impl Schedule for LinearLr {
    fn lr(&self, base: f64, t: usize) -> f64 {
        let frac = if self.total == 0 {
            1.0
        } else {
            t.min(self.total) as f64 / self.total as f64
        };
        base * (self.start + (self.end - self.start) * frac)
    }
}

/// A linear warmup from `start · base` to `base` over `steps`, then `then`
/// restarted at 0 (PyTorch's `SequentialLR([LinearLR(start, 1, steps), then],
/// milestones=[steps])`).
pub struct Warmup<S> {
    /// Length of the warmup.
    pub steps: usize,
    /// Factor at `t = 0`.
    pub start: f64,
    /// The schedule after warmup.
    pub then: S,
}

impl<S: Schedule> Warmup<S> {
    /// Warms up over `steps` from `start · base`, then follows `then`.
    pub fn new(steps: usize, start: f64, then: S) -> Result<Self, OptimError> {
        check(
            start > 0.0 && start <= 1.0,
            "Warmup",
            "start",
            start,
            "must be in (0, 1]",
        )?;
        Ok(Warmup { steps, start, then })
    }
}

impl<S: Schedule> Schedule for Warmup<S> {
    fn lr(&self, base: f64, t: usize) -> f64 {
        if t < self.steps {
            LinearLr {
                start: self.start,
                end: 1.0,
                total: self.steps,
            }
            .lr(base, t)
        } else {
            self.then.lr(base, t - self.steps)
        }
    }
}

/// Where an [`LrScheduler`] is (PyTorch's `scheduler.state_dict()`): its base
/// rate and the steps taken. Save the two numbers beside a checkpoint and
/// give them to [`LrScheduler::resume`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedulerState {
    /// The rate the schedule scales (the optimizer's when the run began).
    pub base: f64,
    /// Steps taken.
    pub steps: usize,
}

/// Drives a [`Schedule`]: remembers the base rate and the step count, and sets
/// the optimizer's learning rate at each [`LrScheduler::step`].
pub struct LrScheduler<S> {
    schedule: S,
    base: f64,
    t: usize,
}

impl<S: Schedule> LrScheduler<S> {
    /// Takes the optimizer's current rate as the base and sets the rate for `t = 0`.
    pub fn new<T: Float>(schedule: S, optimizer: &mut dyn Optimizer<T>) -> Self {
        let base = optimizer.learning_rate();
        optimizer.set_learning_rate(schedule.lr(base, 0));
        LrScheduler {
            schedule,
            base,
            t: 0,
        }
    }

    /// Continues a run from [`LrScheduler::state`]: the base rate and step
    /// count come from `state`, and the optimizer's rate is set to that
    /// step's. ([`LrScheduler::new`] after loading an optimizer's state would
    /// take the loaded, already scheduled rate as the base.)
    ///
    /// ```
    /// use nn_optim::{CosineAnnealing, LrScheduler, Optimizer, Sgd, SgdConfig};
    ///
    /// let config = SgdConfig { lr: 0.1, ..Default::default() };
    /// let mut sgd = Sgd::<f32>::new(config.clone()).unwrap();
    /// let mut schedule = LrScheduler::new(CosineAnnealing::new(10, 0.0).unwrap(), &mut sgd);
    /// (0..4).for_each(|_| schedule.step(&mut sgd));
    /// let saved = schedule.state();
    ///
    /// let mut again = Sgd::<f32>::new(config).unwrap();
    /// let resumed = LrScheduler::resume(CosineAnnealing::new(10, 0.0).unwrap(), saved, &mut again);
    /// assert_eq!((resumed.steps(), again.learning_rate()), (4, sgd.learning_rate()));
    /// ```
    pub fn resume<T: Float>(
        schedule: S,
        state: SchedulerState,
        optimizer: &mut dyn Optimizer<T>,
    ) -> Self {
        optimizer.set_learning_rate(schedule.lr(state.base, state.steps));
        LrScheduler {
            schedule,
            base: state.base,
            t: state.steps,
        }
    }

    /// The base rate and the steps taken, for [`LrScheduler::resume`].
    pub fn state(&self) -> SchedulerState {
        SchedulerState {
            base: self.base,
            steps: self.t,
        }
    }

    /// Advances one step (call once per epoch or per batch, as you schedule).
    pub fn step<T: Float>(&mut self, optimizer: &mut dyn Optimizer<T>) {
        self.t += 1;
        optimizer.set_learning_rate(self.schedule.lr(self.base, self.t));
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.t
    }

    /// The current rate.
    pub fn lr(&self) -> f64 {
        self.schedule.lr(self.base, self.t)
    }
}
