//! Per-parameter optimizer state, keyed by parameter name, and its
//! safetensors form for checkpoints.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::ArrayD;
use nn_core::io::{self, IoError};
use nn_core::{Float, Param, Parameters};

use crate::error::OptimError;

/// One parameter's state: its step count and named buffers (`exp_avg`, …).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamState<T: Float> {
    /// Updates applied so far.
    pub step: u64,
    /// Moment estimates, momentum buffers, accumulators.
    pub buffers: BTreeMap<String, ArrayD<T>>,
}

impl<T: Float> ParamState<T> {
    /// The buffer `name`, created by `init` on first use (allocating only then).
    pub fn buffer(&mut self, name: &str, init: impl FnOnce() -> ArrayD<T>) -> &mut ArrayD<T> {
        if !self.buffers.contains_key(name) {
            self.buffers.insert(name.to_string(), init());
        }
        self.buffers.get_mut(name).expect("inserted above")
    }

    /// Moves the buffer `name` out (zeros of `dim` on first use), leaving an
    /// empty placeholder, so several buffers can be updated in one pass.
    pub(crate) fn take(&mut self, name: &str, dim: &ndarray::IxDyn) -> ArrayD<T> {
        match self.buffers.get_mut(name) {
            Some(b) => std::mem::replace(
                b,
                ArrayD::from_shape_vec(ndarray::IxDyn(&[0]), Vec::new()).expect("empty"),
            ),
            None => ArrayD::zeros(dim.clone()),
        }
    }

    /// Puts back a buffer taken with [`ParamState::take`].
    pub(crate) fn put(&mut self, name: &str, a: ArrayD<T>) {
        match self.buffers.get_mut(name) {
            Some(b) => *b = a,
            None => {
                self.buffers.insert(name.to_string(), a);
            }
        }
    }
}

/// An optimizer's whole state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState<T: Float> {
    /// Which optimizer wrote it (`"Adam"`).
    pub optimizer: String,
    /// The learning rate at the time.
    pub lr: f64,
    /// By parameter name.
    pub params: BTreeMap<String, ParamState<T>>,
}

impl<T: Float> OptimizerState<T> {
    /// Writes the state as safetensors (atomically): buffers as tensors named
    /// `param/buffer`, step counts and the learning rate as metadata.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError> {
        let mut tensors = Vec::new();
        let mut meta = HashMap::new();
        meta.insert("optimizer".to_string(), self.optimizer.clone());
        meta.insert("lr".to_string(), format!("{:e}", self.lr));
        for (name, st) in &self.params {
            meta.insert(format!("{name}/step"), st.step.to_string());
            for (b, a) in &st.buffers {
                tensors.push((format!("{name}/{b}"), a.clone()));
            }
        }
        io::save_tensors(path.as_ref(), &tensors, Some(meta))
    }

    /// Reads a state written by [`OptimizerState::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IoError> {
        let path = path.as_ref();
        let (tensors, meta) = io::load_tensors::<T>(path)?;
        let bad = |message: String| IoError::Format {
            path: path.to_path_buf(),
            message,
        };
        let optimizer = meta
            .get("optimizer")
            .cloned()
            .ok_or_else(|| bad("no `optimizer` metadata".into()))?;
        let lr = meta
            .get("lr")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("no valid `lr` metadata".into()))?;
        let mut params: BTreeMap<String, ParamState<T>> = BTreeMap::new();
        for (key, value) in &meta {
            if let Some(name) = key.strip_suffix("/step") {
                let step = value
                    .parse()
                    .map_err(|_| bad(format!("step of `{name}` is not a number: {value}")))?;
                params.entry(name.to_string()).or_default().step = step;
            }
        }
        for (key, a) in tensors {
            let (name, buffer) = key
                .rsplit_once('/')
                .ok_or_else(|| bad(format!("tensor `{key}` is not `param/buffer`")))?;
            params
                .entry(name.to_string())
                .or_default()
                .buffers
                .insert(buffer.to_string(), a);
        }
        Ok(OptimizerState {
            optimizer,
            lr,
            params,
        })
    }
}

/// Panics, naming the parameter and the shapes, when its gradient or the
/// state kept under its name does not fit its value: an optimizer used for
/// a second model whose parameters share names with the first's, or a
/// gradient written by hand in the wrong shape.
fn check_state<T: Float>(name: &str, value: &[usize], grad: &[usize], state: &ParamState<T>) {
    assert!(
        grad == value,
        "optimizer step: parameter `{name}` has shape {value:?} but its gradient {grad:?}"
    );
    for (buffer, b) in &state.buffers {
        assert!(
            b.shape() == value,
            "optimizer step: parameter `{name}` has shape {value:?} but the optimizer's `{buffer}` state for that name is {:?}; an optimizer's state belongs to one model's parameters (make a new optimizer for another model)",
            b.shape()
        );
    }
}

/// The states of all parameters, and the loop every optimizer's `step` shares.
#[derive(Clone, Debug, Default)]
pub(crate) struct States<T: Float> {
    pub(crate) by_name: BTreeMap<String, ParamState<T>>,
}

impl<T: Float> States<T> {
    /// Calls `update(param, grad, state)` for every trainable parameter with
    /// a gradient: a frozen one ([`Param::set_trainable`]) is neither
    /// updated nor given state.
    pub(crate) fn step(
        &mut self,
        params: &dyn Parameters<T>,
        mut update: impl FnMut(&mut ArrayD<T>, &ArrayD<T>, &mut ParamState<T>),
    ) {
        params.visit_params(&mut |name, p: &Param<T>| {
            if !p.is_trainable() {
                return;
            }
            let grad = p.grad();
            let Some(g) = grad.as_ref() else { return };
            let state = match self.by_name.get_mut(name) {
                Some(s) => s,
                None => self.by_name.entry(name.to_string()).or_default(),
            };
            let mut value = p.value_mut();
            check_state(name, value.shape(), g.shape(), state);
            state.step += 1;
            update(&mut value, g, state);
        });
    }

    pub(crate) fn export(&self, optimizer: &str, lr: f64) -> OptimizerState<T> {
        OptimizerState {
            optimizer: optimizer.to_string(),
            lr,
            params: self.by_name.clone(),
        }
    }

    pub(crate) fn import(
        &mut self,
        optimizer: &str,
        state: OptimizerState<T>,
    ) -> Result<f64, OptimError> {
        if state.optimizer != optimizer {
            return Err(OptimError::WrongOptimizer {
                expected: optimizer.to_string(),
                found: state.optimizer,
            });
        }
        self.by_name = state.params;
        Ok(state.lr)
    }
}

/// One element of the effective gradient: `g`, negated when maximizing, plus
/// `weight_decay · p` (PyTorch's L2 form).
#[inline]
pub(crate) fn effective<T: Float>(p: T, g: T, maximize: bool, weight_decay: T) -> T {
    let g = if maximize { -g } else { g };
    if weight_decay != T::zero() {
        g + weight_decay * p
    } else {
        g
    }
}
