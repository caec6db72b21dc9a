//! `Var`: a cheap handle to one node of a tape.

use std::fmt;
use std::rc::Rc;

use ndarray::ArrayD;

use super::{Tape, Value};
use crate::Float;

/// A variable on a [`Tape`]: a tape handle and a node index.
///
/// Cloning is cheap. Arithmetic operators work on `Var` and `&Var` and with
/// scalars, broadcasting like NumPy; the methods of this type and of
/// [`crate::loss`] record the rest of the ops.
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

impl<T: Float> fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Var")
            .field("id", &self.id)
            .field("shape", &self.shape())
            .field("requires_grad", &self.requires_grad())
            .finish()
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

    /// The single element of a one-element value (a loss, say).
    ///
    /// # Panics
    /// If the value has more than one element.
    pub fn item(&self) -> T {
        self.with_value(|v| {
            assert!(
                v.len() == 1,
                "item: expected one element, got shape {:?}",
                v.shape()
            );
            *v.iter().next().expect("one element")
        })
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
    /// If the value has more than one element; use [`Var::backward_with`].
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
