//! `Activation`: an activation function as a layer of its own (Keras's
//! `Activation("softmax")`, `ReLU()`, `Softmax()`).

use std::marker::PhantomData;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{ensure_shape, Layer};
use crate::activation::Activation as ActivationFn;
use crate::tape::Var;
use crate::Float;

/// Applies `A` element-wise (or along the last axis, for softmax).
pub struct Activation<T: Float, A: ActivationFn> {
    /// The function.
    pub function: A,
    y: ArrayD<T>,
    dx: ArrayD<T>,
    _t: PhantomData<T>,
}

impl<T: Float, A: ActivationFn> Activation<T, A> {
    /// The layer applying `function`.
    pub fn new(function: A) -> Self {
        Activation {
            function,
            y: ArrayD::zeros(IxDyn(&[0])),
            dx: ArrayD::zeros(IxDyn(&[0])),
            _t: PhantomData,
        }
    }
}

impl<T: Float, A: ActivationFn> Layer<T> for Activation<T, A> {
    fn type_name(&self) -> &'static str {
        "Activation"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.function.apply(x)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        ensure_shape(&mut self.y, x.shape());
        self.function.forward_into(x, self.y.view_mut());
        self.y.view()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.y.view()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        if !need_input_grad {
            return super::no_input_grad(&self.dx);
        }
        ensure_shape(&mut self.dx, x.shape());
        self.function
            .backward_into(x, self.y.view(), dy, self.dx.view_mut());
        self.dx.view()
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
        ensure_shape(&mut self.dx, dlogits.shape());
        self.dx.assign(&dlogits);
        self.dx.view()
    }
}
