//! What state an optimizer, as configured, keeps per parameter, and the
//! check of a state against it that `load_state` runs before changing
//! anything: a state that passes is one this optimizer could have written.

use nn_core::Float;

use crate::error::OptimError;
use crate::{lr, OptimizerState, ParamState};

/// Step counts from here on are refused: no run takes 2³¹ updates, and Adam
/// raises β to the next count as an `i32`, so a larger one would wrap.
pub(crate) const MAX_STEP: u64 = i32::MAX as u64 - 1;

/// One buffer kept per parameter.
pub(crate) struct Buffer {
    /// Its name in the state (`exp_avg`).
    pub(crate) name: &'static str,
    /// Whether every parameter that has been updated has it. SGD's momentum
    /// buffer does not need to: without it the momentum starts afresh from
    /// the next gradient, as PyTorch's does.
    pub(crate) required: bool,
    /// An average or sum of squares: a negative value would make its square
    /// root NaN at the next step.
    pub(crate) nonnegative: bool,
}

impl Buffer {
    /// A buffer every updated parameter has, of any sign.
    pub(crate) fn signed(name: &'static str) -> Self {
        Buffer {
            name,
            required: true,
            nonnegative: false,
        }
    }

    /// A buffer every updated parameter has, never negative.
    pub(crate) fn squares(name: &'static str) -> Self {
        Buffer {
            name,
            required: true,
            nonnegative: true,
        }
    }
}

/// An optimizer's name and the buffers it keeps per parameter.
pub(crate) struct Layout {
    /// The name its states carry (`"Adam"`).
    pub(crate) optimizer: &'static str,
    /// Every buffer it keeps, as configured.
    pub(crate) buffers: Vec<Buffer>,
}

impl Layout {
    /// Checks everything in `state` that can be checked without the model:
    /// the optimizer's name, the learning rate, and each parameter's step
    /// count and buffers (names, agreeing shapes, finite values).
    pub(crate) fn check<T: Float>(&self, state: &OptimizerState<T>) -> Result<(), OptimError> {
        if state.optimizer != self.optimizer {
            return Err(OptimError::WrongOptimizer {
                expected: self.optimizer.to_string(),
                found: state.optimizer.clone(),
            });
        }
        lr::check_loaded(self.optimizer, state.lr)?;
        for (name, param) in &state.params {
            self.check_param(param)
                .map_err(|problem| OptimError::state(name, problem))?;
        }
        Ok(())
    }

    fn check_param<T: Float>(&self, param: &ParamState<T>) -> Result<(), String> {
        let step = param.step;
        if step > MAX_STEP {
            return Err(format!(
                "step count {step} is implausible (at most {MAX_STEP})"
            ));
        }
        for name in param.buffers.keys() {
            if !self.buffers.iter().any(|b| b.name == name.as_str()) {
                return Err(format!("unexpected buffer `{name}`: {}", self.keeps()));
            }
        }
        // Buffers are created at a parameter's first update, which counts it.
        if step == 0 && !param.buffers.is_empty() {
            return Err("has buffers but a step count of 0".to_string());
        }
        for b in &self.buffers {
            if step > 0 && b.required && !param.buffers.contains_key(b.name) {
                return Err(format!(
                    "no `{}` buffer after {step} steps: {}",
                    b.name,
                    self.keeps()
                ));
            }
        }
        check_shapes_agree(param)?;
        for b in &self.buffers {
            if let Some(values) = param.buffers.get(b.name) {
                check_values(b, values.iter().copied())?;
            }
        }
        Ok(())
    }

    /// "Adam as configured keeps `exp_avg`, `exp_avg_sq`", for messages.
    fn keeps(&self) -> String {
        let names: Vec<String> = self
            .buffers
            .iter()
            .map(|b| format!("`{}`", b.name))
            .collect();
        let names = if names.is_empty() {
            "no buffers".to_string()
        } else {
            names.join(", ")
        };
        format!("{} as configured keeps {names}", self.optimizer)
    }
}

/// All of a parameter's buffers have its shape, so they have one shape.
fn check_shapes_agree<T: Float>(param: &ParamState<T>) -> Result<(), String> {
    let mut buffers = param.buffers.iter();
    let Some((first, a)) = buffers.next() else {
        return Ok(());
    };
    for (name, b) in buffers {
        if b.shape() != a.shape() {
            return Err(format!(
                "buffers disagree in shape: `{first}` is {:?} but `{name}` is {:?}",
                a.shape(),
                b.shape()
            ));
        }
    }
    Ok(())
}

/// Every value finite, and not negative where the buffer holds squares.
fn check_values<T: Float>(b: &Buffer, values: impl Iterator<Item = T>) -> Result<(), String> {
    for (i, v) in values.enumerate() {
        if !v.is_finite() {
            return Err(format!("buffer `{}` holds {v:?} (element {i})", b.name));
        }
        if b.nonnegative && v < T::zero() {
            return Err(format!(
                "buffer `{}` holds {v:?} (element {i}), but it accumulates squares and is never negative",
                b.name
            ));
        }
    }
    Ok(())
}
