//! `GlobalAvgPool1d`: the mean of a sequence over time (Keras's
//! `GlobalAveragePooling1D`), how a transformer's tokens become one vector.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{Layer, Share, Workspace};
use crate::kernels::owned::owned;
use crate::kernels::pool;
use crate::tape::Var;
use crate::Float;

/// Mean over the time axis: `(time, features)` → `(features)`.
pub struct GlobalAvgPool1d<T: Float> {
    buf: Workspace<T>,
}

impl<T: Float> Default for GlobalAvgPool1d<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> GlobalAvgPool1d<T> {
    /// A global average pooling layer over time.
    pub fn new() -> Self {
        GlobalAvgPool1d {
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Share for GlobalAvgPool1d<T> {
    fn share(&self) -> Self {
        Self::new()
    }
}

impl<T: Float> Layer<T> for GlobalAvgPool1d<T> {
    fn type_name(&self) -> &'static str {
        "GlobalAvgPool1d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            &[t, d] if t > 0 => Ok(vec![d]),
            _ => Err(format!(
                "GlobalAvgPool1d expects (time, features) with at least one step, got {input:?}"
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.mean_axis(1, false)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let shape = [x.shape()[0], x.shape()[x.ndim() - 1]];
        pool::global_avg_pool1d_into(x, self.buf.output_mut(&shape));
        self.buf.output()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        self.buf.input_grad(need_input_grad, x.shape(), |dx| {
            pool::global_avg_pool1d_backward_into(dy, dx)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let shape = [x.shape()[0], x.shape()[x.ndim() - 1]];
        owned(IxDyn(&shape), |y| pool::global_avg_pool1d_into(x, y))
    }
}
