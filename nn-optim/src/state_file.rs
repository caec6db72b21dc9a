//! An optimizer state's safetensors form for checkpoints: buffers as tensors
//! named `param/buffer`, step counts (`param/step`), the optimizer's name
//! and the learning rate as metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use nn_core::io::{self, IoError};
use nn_core::Float;

use crate::{OptimizerState, ParamState};

impl<T: Float> OptimizerState<T> {
    /// Writes the state as safetensors (atomically): buffers as tensors named
    /// `param/buffer`, step counts and the learning rate as metadata.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError> {
        let mut tensors = Vec::new();
        let mut meta = HashMap::new();
        meta.insert("optimizer".to_string(), self.optimizer.clone());
        // `{:e}` prints the shortest form that parses back to the same bits.
        meta.insert("lr".to_string(), format!("{:e}", self.lr));
        for (name, st) in &self.params {
            meta.insert(format!("{name}/step"), st.step.to_string());
            for (b, a) in &st.buffers {
                tensors.push((format!("{name}/{b}"), a.clone()));
            }
        }
        io::save_tensors(path.as_ref(), &tensors, Some(meta))
    }

    /// Reads a state written by [`OptimizerState::save`]. Anything else is an
    /// error naming the file, never a panic: metadata other than the
    /// optimizer's name, a finite learning rate and whole-number step counts,
    /// a tensor not named `param/buffer` or for a parameter without a step
    /// count. Whether the state fits an optimizer and model is checked when
    /// it is loaded into one ([`Optimizer::load_state_for`](crate::Optimizer::load_state_for)).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IoError> {
        let path = path.as_ref();
        let (tensors, meta) = io::load_tensors::<T>(path)?;
        let bad = |message: String| IoError::Format {
            path: path.to_path_buf(),
            message,
        };
        let mut optimizer = None;
        let mut lr = None;
        let mut params: BTreeMap<String, ParamState<T>> = BTreeMap::new();
        for (key, value) in &meta {
            match key.as_str() {
                "optimizer" => optimizer = Some(value.clone()),
                "lr" => lr = Some(parse_lr(value).map_err(bad)?),
                _ => {
                    let name = key
                        .strip_suffix("/step")
                        .filter(|name| !name.is_empty())
                        .ok_or_else(|| bad(format!("unexpected metadata `{key}`")))?;
                    let step = value
                        .parse()
                        .map_err(|_| bad(format!("step of `{name}` is not a number: {value}")))?;
                    params.entry(name.to_string()).or_default().step = step;
                }
            }
        }
        let optimizer = optimizer.ok_or_else(|| bad("no `optimizer` metadata".into()))?;
        let lr = lr.ok_or_else(|| bad("no `lr` metadata".into()))?;
        for (key, a) in tensors {
            let (name, buffer) = key
                .rsplit_once('/')
                .filter(|(name, buffer)| !name.is_empty() && !buffer.is_empty())
                .ok_or_else(|| bad(format!("tensor `{key}` is not `param/buffer`")))?;
            // Every parameter with buffers has been updated, so `save` wrote
            // its step count: without one the file was not written by it.
            let state = params
                .get_mut(name)
                .ok_or_else(|| bad(format!("tensor `{key}` has no `{name}/step` metadata")))?;
            state.buffers.insert(buffer.to_string(), a);
        }
        Ok(OptimizerState {
            optimizer,
            lr,
            params,
        })
    }
}

/// The learning rate's metadata: a finite number (Rust parses `NaN` and
/// `inf` as numbers, which no optimizer accepts).
fn parse_lr(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|lr| lr.is_finite())
        .ok_or_else(|| format!("`lr` metadata is not a finite number: {value}"))
}
