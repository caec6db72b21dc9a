//! `Var`: a cheap handle to one node of a tape.

use std::rc::Rc;

use ndarray::ArrayD;

use super::{Tape, Value};
use crate::Float;

/// A variable on a [`Tape`]: a tape handle and a node index.
///
/// Cloning is cheap. Arithmetic operators work on `Var` and `&Var` and with
/// scalars, broadcasting like NumPy; the methods of this type and of
/// [`crate::loss`] record the rest of the ops.
///
/// Misuse (shapes that do not fit, an axis out of range) panics with a
/// message naming the op and the shapes, reported at the line that called the
/// op (the ops are `#[track_caller]`).
///
/// `{}` prints the values as PyTorch prints a tensor, `{:?}` adds the node's
/// id, shape and op:
///
/// ```
/// use nn_core::Tape;
/// use ndarray::array;
///
/// let tape = Tape::<f32>::new();
/// let x = tape.constant(array![[1.5, 2.25], [3.0, 4.0]]);
/// assert_eq!(x.to_string(), "tensor([[1.5000, 2.2500],\n        [3.0000, 4.0000]])");
/// ```
pub struct Var<T: Float = f32> {
    tape: Tape<T>,
    id: usize,
}

impl<T: Float> Clone for Var<T> {
    fn clone(&self) -> Self {
        Var {
            tape: self.tape.clone(),
            id: self.id,
        }
    }
}

impl<T: Float> Var<T> {
    pub(super) fn new(tape: Tape<T>, id: usize) -> Self {
        Var { tape, id }
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &Tape<T> {
        &self.tape
    }

    /// The node index on the tape.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.with_value(|v| v.shape().to_vec())
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.with_value(|v| v.ndim())
    }

    /// A copy of the value.
    pub fn value(&self) -> ArrayD<T> {
        self.with_value(|v| v.clone())
    }

    /// Calls `f` with the value, without copying it.
    pub fn with_value<R>(&self, f: impl FnOnce(&ArrayD<T>) -> R) -> R {
        let nodes = self.tape.nodes();
        let v = nodes[self.id].value.get();
        f(&v)
    }

    /// Calls `f` with the shapes of `self` and `other`, without copying them:
    /// ops check their operands with it before recording, so that a misuse
    /// panics in the (`#[track_caller]`) op itself, at the user's line.
    pub(crate) fn with_shapes<R>(
        &self,
        other: &Var<T>,
        f: impl FnOnce(&[usize], &[usize]) -> R,
    ) -> R {
        self.with_value(|a| other.with_value(|b| f(a.shape(), b.shape())))
    }

    /// The single element of a one-element value (a loss, say).
    ///
    /// # Panics
    /// If the value has more than one element.
    #[track_caller]
    pub fn item(&self) -> T {
        let only = |v: &ArrayD<T>| match v.len() {
            1 => v.iter().next().copied(),
            _ => None,
        };
        match self.with_value(only) {
            Some(item) => item,
            None => panic!("item: expected one element, got shape {:?}", self.shape()),
        }
    }

    /// Whether backward will compute a gradient for this variable.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes()[self.id].requires_grad
    }

    /// The gradient accumulated by backward passes so far (leaves only; a
    /// parameter's leaf reports the parameter's gradient).
    pub fn grad(&self) -> Option<ArrayD<T>> {
        let nodes = self.tape.nodes();
        match &nodes[self.id].value {
            Value::Param(p) => p.grad().clone(),
            Value::Owned(_) => self.tape.inner.leaf_grads.borrow().get(&self.id).cloned(),
        }
    }

    /// The same value as a new leaf that needs no gradient: nothing flows back
    /// through it. The data is shared, not copied.
    pub fn detach(&self) -> Var<T> {
        let value = match &self.tape.nodes()[self.id].value {
            Value::Owned(a) => Value::Owned(Rc::clone(a)),
            Value::Param(p) => Value::Owned(Rc::new(p.value().clone())),
        };
        self.tape.push_leaf(value, false)
    }

    /// Backpropagates from this one-element variable (a loss), accumulating
    /// gradients into every leaf and parameter that requires one.
    ///
    /// # Panics
    /// If the value has more than one element (use [`Var::backward_with`]),
    /// or the tape already ran a backward pass (see [`Tape::retain_graph`](crate::Tape::retain_graph)).
    #[track_caller]
    pub fn backward(&self) {
        let shape = self.shape();
        assert!(
            shape.iter().product::<usize>() == 1,
            "backward: gradient can be implicitly created only for a one-element output, got shape {shape:?}; use backward_with"
        );
        self.backward_with(ArrayD::ones(shape));
    }

    /// Backpropagates with `grad` as this variable's gradient (a vector-Jacobian
    /// product).
    ///
    /// # Panics
    /// If `grad`'s shape differs from the value's.
    #[track_caller]
    pub fn backward_with(&self, grad: ArrayD<T>) {
        let shape = self.shape();
        assert!(
            grad.shape() == shape.as_slice(),
            "backward: gradient of shape {:?} does not match output shape {shape:?}",
            grad.shape()
        );
        self.tape.backward_from(self.id, grad);
    }
}

/// The result of an op's shape check, or a panic with its message: called
/// from `#[track_caller]` ops before they record, so the panic names the
/// user's line rather than a line of this crate.
#[track_caller]
pub(crate) fn checked<R>(check: Result<R, String>) -> R {
    // A `match`, not `unwrap_or_else`: a closure would break the chain of
    // `#[track_caller]` and report this line.
    match check {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

crate::instances!(Var: tape, id, shape, ndim, value, item, requires_grad, grad, detach, backward, backward_with);
