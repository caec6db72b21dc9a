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
    /// If the shapes do not broadcast, naming the op and both shapes (at the
    /// caller's line).
    #[track_caller]
    pub fn binary<B: Binary>(&self, other: &Var<T>, op: B) -> Var<T> {
        if !self.with_shapes(other, broadcasts) {
            panic!(
                "{}: cannot broadcast shapes {:?} and {:?}",
                op.name(),
                self.shape(),
                other.shape()
            );
        }
        self.tape().record(&[self, other], |v| {
            (k::forward(&op, v[0].view(), v[1].view()), BinaryOp(op))
        })
    }
}

/// Whether two shapes broadcast under NumPy's rules (aligned from the last
/// axis, each pair of sizes equal or one of them 1): the check an op makes
/// before recording, so its panic is reported at the user's line.
pub(super) fn broadcasts(a: &[usize], b: &[usize]) -> bool {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .all(|(&x, &y)| x == y || x == 1 || y == 1)
}

/// [`crate::kernels::broadcast::broadcast_shape`], panicking at the caller's line.
#[track_caller]
pub(super) fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    if !broadcasts(a, b) {
        panic!("{op}: cannot broadcast shapes {a:?} and {b:?}");
    }
    crate::kernels::broadcast::broadcast_shape(op, a, b)
}
