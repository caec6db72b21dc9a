//! Model parameters: owned by the model, lent to a tape without copying.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;

use ndarray::{ArrayD, Dimension};

use crate::Float;

/// A trainable tensor and its accumulated gradient.
///
/// A `Param` is a cheap handle (cloning it shares the same storage). Models own
/// their parameters across steps; each step's [`Tape`](super::Tape) borrows them
/// through [`Tape::param`](super::Tape::param) without copying, and `backward()`
/// adds into [`Param::grad`] until [`Param::zero_grad`] is called.
///
/// Mutating a parameter's value while a tape that used it is still waiting for
/// `backward()` gives that backward the new value: update parameters after
/// backward, as every optimizer loop does.
pub struct Param<T: Float = f32> {
    inner: Rc<ParamInner<T>>,
}

struct ParamInner<T> {
    value: RefCell<ArrayD<T>>,
    grad: RefCell<Option<ArrayD<T>>>,
}

impl<T: Float> Clone for Param<T> {
    fn clone(&self) -> Self {
        Param {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T: Float> fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Param")
            .field("shape", &self.shape())
            .field("has_grad", &self.inner.grad.borrow().is_some())
            .finish()
    }
}

impl<T: Float> Param<T> {
    /// A parameter holding `value`, with no gradient yet.
    pub fn new<D: Dimension>(value: ndarray::Array<T, D>) -> Self {
        Param {
            inner: Rc::new(ParamInner {
                value: RefCell::new(value.into_dyn()),
                grad: RefCell::new(None),
            }),
        }
    }

    /// The parameter's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.inner.value.borrow().shape().to_vec()
    }

    /// Number of scalars in the parameter.
    pub fn len(&self) -> usize {
        self.inner.value.borrow().len()
    }

    /// Whether the parameter holds no scalars.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Borrows the value.
    pub fn value(&self) -> Ref<'_, ArrayD<T>> {
        self.inner.value.borrow()
    }

    /// Borrows the value mutably (optimizers update it in place).
    pub fn value_mut(&self) -> RefMut<'_, ArrayD<T>> {
        self.inner.value.borrow_mut()
    }

    /// Borrows the accumulated gradient; `None` until a backward pass reaches it.
    pub fn grad(&self) -> Ref<'_, Option<ArrayD<T>>> {
        self.inner.grad.borrow()
    }

    /// Borrows the gradient mutably (gradient clipping, custom updates).
    pub fn grad_mut(&self) -> RefMut<'_, Option<ArrayD<T>>> {
        self.inner.grad.borrow_mut()
    }

    /// Sets the gradient to zero, keeping its buffer (no allocation next step).
    pub fn zero_grad(&self) {
        if let Some(g) = self.inner.grad.borrow_mut().as_mut() {
            g.fill(T::zero());
        }
    }

    /// Drops the gradient (PyTorch's `set_to_none=True`): optimizers skip the
    /// parameter until a backward pass reaches it again.
    pub fn clear_grad(&self) {
        *self.inner.grad.borrow_mut() = None;
    }

    /// Adds `g` into the gradient (allocating it on first use).
    pub fn accumulate_grad(&self, g: ArrayD<T>) {
        let mut slot = self.inner.grad.borrow_mut();
        super::accumulate(&mut slot, g, "param");
    }

    /// Whether `self` and `other` are handles to the same storage.
    pub fn same_as(&self, other: &Param<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}
