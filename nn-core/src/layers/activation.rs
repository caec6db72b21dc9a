//! `Activation`: an activation function as a layer of its own (Keras's
//! `Activation("softmax")`, `ReLU()`, `Softmax()`).

use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD};

use super::{Layer, Share, Workspace};
use crate::activation::ActivationFn;
use crate::tape::Var;
use crate::Float;

/// Applies `A` element-wise (or along an axis, for softmax and the like).
///
/// (The activation functions themselves implement
/// [`ActivationFn`](crate::activation::ActivationFn); this is Keras's layer
/// of the same name.)
pub struct Activation<T: Float, A: ActivationFn> {
    /// The function.
    pub function: A,
    buf: Workspace<T>,
    _t: PhantomData<T>,
}

impl<T: Float, A: ActivationFn> Activation<T, A> {
    /// The layer applying `function`.
    pub fn new(function: A) -> Self {
        Activation {
            function,
            buf: Workspace::new(),
            _t: PhantomData,
        }
    }
}

impl<T: Float, A: ActivationFn> Share for Activation<T, A> {
    fn share(&self) -> Self {
        Self::new(self.function.clone())
    }
}

impl<T: Float, A: ActivationFn> Layer<T> for Activation<T, A> {
    fn type_name(&self) -> &'static str {
        "Activation"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        super::activated_shape(&self.function, input)
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.function.apply(x)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let y = self.buf.activated_mut(&self.function, x.shape());
        self.function.forward_into(x, y);
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
        let f = &self.function;
        self.buf
            .input_grad_from_output(need_input_grad, x.shape(), |y, dx| {
                f.backward_into(x.view(), y, dy, dx)
            })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.function.forward(x)
    }

    fn softmax_output(&self) -> bool {
        self.function.is_softmax_last_axis()
    }

    fn backward_from_logits(
        &mut self,
        _x: ArrayViewD<'_, T>,
        dlogits: ArrayViewD<'_, T>,
        _need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        self.buf
            .input_grad(true, dlogits.shape(), |mut dx| dx.assign(&dlogits))
    }
}
