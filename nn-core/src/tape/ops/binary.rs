//! Binary element-wise ops on the tape: one generic node for every
//! [`Binary`] (the built-in `+ - * /`, `maximum`, `atan2`, … and yours).

use ndarray::ArrayD;

use crate::kernels::binary::{self as k, Binary};
use crate::tape::{Op, Var};
use crate::Float;

/// The tape node of any [`Binary`] op.
///
/// Its backward returns only the local gradients `dy * ∂f/∂a` and
/// `dy * ∂f/∂b`, at the output's broadcast shape and only for the inputs that
/// need one; the tape sums each back to its operand's shape and accumulates it.
pub struct BinaryOp<B>(pub B);

impl<T: Float, B: Binary> Op<T> for BinaryOp<B> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let (a, b) = (x[0].view(), x[1].view());
        k::backward(&self.0, a, b, y.view(), dy.view(), [need[0], need[1]]).into()
    }
}

impl<T: Float> Var<T> {
    /// Applies a binary element-wise op to `self` and `other`, broadcasting
    /// like NumPy: a built-in from [`crate::kernels::arith`], or your own
    /// [`Binary`] (see its example).
    ///
    /// # Panics
    /// If the shapes do not broadcast, naming the op and both shapes.
    pub fn binary<B: Binary>(&self, other: &Var<T>, op: B) -> Var<T> {
        self.tape().record(&[self, other], |v| {
            (k::forward(&op, v[0].view(), v[1].view()), BinaryOp(op))
        })
    }
}
