//! Checking a state against the model it is loaded for: what `load_state`
//! cannot see, since an optimizer does not hold its model.

use std::collections::HashMap;

use nn_core::{Float, Parameters};

use crate::error::OptimError;
use crate::OptimizerState;

impl<T: Float> OptimizerState<T> {
    /// Checks that every parameter named in the state is one of `params`'
    /// and that each of its buffers has that parameter's shape. A state for
    /// another model would otherwise load silently and panic (or, for a
    /// transposed buffer of the same size, train wrongly) at the next step.
    pub fn check_params(&self, params: &dyn Parameters<T>) -> Result<(), OptimError> {
        let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
        params.visit_params(&mut |name, p| {
            shapes.insert(name.to_string(), p.value().shape().to_vec());
        });
        for (name, state) in &self.params {
            let Some(shape) = shapes.get(name) else {
                return Err(OptimError::state(
                    name,
                    "the model has no parameter of that name".to_string(),
                ));
            };
            for (buffer, b) in &state.buffers {
                if b.shape() != shape.as_slice() {
                    return Err(OptimError::state(
                        name,
                        format!(
                            "buffer `{buffer}` has shape {:?} but the parameter has shape {shape:?}",
                            b.shape()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
