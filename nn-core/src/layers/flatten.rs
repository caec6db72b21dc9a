//! `Flatten`: each sample's axes joined into one, in row-major order.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{batch_shape, Layer, Share, Workspace};
use crate::tape::Var;
use crate::Float;

/// Reshapes `[batch, d1, d2, …]` to `[batch, d1·d2·…]`.
pub struct Flatten<T: Float> {
    buf: Workspace<T>,
}

impl<T: Float> Default for Flatten<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Flatten<T> {
    /// A flatten layer.
    pub fn new() -> Self {
        Flatten {
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Share for Flatten<T> {
    fn share(&self) -> Self {
        Self::new()
    }
}

fn flat_len(shape: &[usize]) -> usize {
    shape[1..].iter().product()
}

impl<T: Float> Layer<T> for Flatten<T> {
    fn type_name(&self) -> &'static str {
        "Flatten"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(vec![input.iter().product()])
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let s = x.shape();
        x.reshape(&[s[0], flat_len(&s)])
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let shape = batch_shape(x.shape()[0], &[flat_len(x.shape())]);
        // Row-major copy: the flat buffer viewed in the input's shape.
        self.buf
            .output_mut(&shape)
            .into_shape_with_order(x.raw_dim())
            .expect("same size")
            .assign(&x);
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
            dx.into_shape_with_order(dy.raw_dim())
                .expect("same size")
                .assign(&dy)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let n = flat_len(x.shape());
        x.as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[x.shape()[0], n]))
            .expect("same size")
    }
}

crate::instances!(impl Layer for Flatten: forward, forward_train, backward, predict);
