//! Model parameters: owned by the model, lent to a tape without copying.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
///
/// # Threads
///
/// `Param` is `Send` and `Sync` (an [`Arc`] around two [`RwLock`]s), so a
/// model moves into a thread or serves behind `Arc<Mutex<_>>`. The guards that
/// [`Param::value`], [`Param::grad`] and their `_mut` forms return lock the
/// value or the gradient while they live: as with any lock, asking for
/// [`Param::value_mut`] while the same thread holds a guard of the same
/// parameter's value blocks forever (a `RefCell` would have panicked), so drop
/// a guard before taking a conflicting one. A panic while a guard is held does
/// not poison the parameter.
///
/// # Freezing
///
/// A parameter is *trainable* unless frozen with
/// [`Param::set_trainable`]`(false)` (PyTorch's `requires_grad_(False)`,
/// Keras's `trainable = False`). A frozen parameter gets no gradient: the tape
/// records it as a constant, layers skip its gradient on the static path,
/// optimizers and gradient clipping pass it over, and model summaries count
/// it as non-trainable. [`freeze`](crate::freeze()) and
/// [`unfreeze`](crate::unfreeze()) do this for every parameter of a layer or
/// model.
pub struct Param<T: Float = f32> {
    inner: Arc<ParamInner<T>>,
}

struct ParamInner<T> {
    value: RwLock<ArrayD<T>>,
    grad: RwLock<Option<ArrayD<T>>>,
    /// The buffer [`Param::zero_grad`] took from `grad` (which it leaves
    /// `None`, as PyTorch does), for the next static backward to write into
    /// instead of allocating. Locked only while `grad`'s write lock is held.
    spare: Mutex<Option<ArrayD<T>>>,
    trainable: AtomicBool,
}

impl<T: Float> Clone for Param<T> {
    fn clone(&self) -> Self {
        Param {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Float> fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Param")
            .field("shape", &self.shape())
            .field("has_grad", &self.has_grad())
            .field("trainable", &self.is_trainable())
            .finish()
    }
}

impl<T: Float> Param<T> {
    /// A trainable parameter holding `value`, with no gradient yet.
    pub fn new<D: Dimension>(value: ndarray::Array<T, D>) -> Self {
        Param {
            inner: Arc::new(ParamInner {
                value: RwLock::new(value.into_dyn()),
                grad: RwLock::new(None),
                spare: Mutex::new(None),
                trainable: AtomicBool::new(true),
            }),
        }
    }

    /// The parameter's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.value().shape().to_vec()
    }

    /// Number of scalars in the parameter.
    pub fn len(&self) -> usize {
        self.value().len()
    }

    /// Whether the parameter holds no scalars.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Borrows the value (a read lock, released when the guard drops).
    pub fn value(&self) -> RwLockReadGuard<'_, ArrayD<T>> {
        read(&self.inner.value)
    }

    /// Borrows the value mutably (optimizers update it in place).
    pub fn value_mut(&self) -> RwLockWriteGuard<'_, ArrayD<T>> {
        write(&self.inner.value)
    }

    /// Borrows the accumulated gradient; `None` until a backward pass reaches
    /// it (again after [`Param::zero_grad`]), and always `None` for a frozen
    /// parameter that nothing wrote to.
    pub fn grad(&self) -> RwLockReadGuard<'_, Option<ArrayD<T>>> {
        read(&self.inner.grad)
    }

    /// Whether a backward pass has written a gradient since the last
    /// [`Param::zero_grad`] or [`Param::clear_grad`]: `grad().is_some()`,
    /// PyTorch's `p.grad is not None`. Optimizers step only such parameters,
    /// so one that a step's backward did not reach is left alone (no
    /// momentum, no weight decay), as in PyTorch.
    pub fn has_grad(&self) -> bool {
        read(&self.inner.grad).is_some()
    }

    /// Borrows the gradient mutably (gradient clipping, custom updates).
    pub fn grad_mut(&self) -> RwLockWriteGuard<'_, Option<ArrayD<T>>> {
        write(&self.inner.grad)
    }

    /// The gradient's slot for a static backward, given the buffer
    /// [`Param::zero_grad`] kept when it is empty: zero-filled for a writer
    /// that adds into it, left as it was for one that overwrites every
    /// element (`overwrite`). Whether the buffer was the kept one.
    pub(crate) fn grad_slot(
        &self,
        overwrite: bool,
    ) -> (RwLockWriteGuard<'_, Option<ArrayD<T>>>, bool) {
        let mut slot = write(&self.inner.grad);
        let mut reused = false;
        if slot.is_none() {
            let mut spare = self
                .inner
                .spare
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(mut buffer) = spare.take() {
                if !overwrite {
                    buffer.fill(T::zero());
                }
                *slot = Some(buffer);
                reused = true;
            }
        }
        (slot, reused)
    }

    /// Sets the gradient to none, as PyTorch's `zero_grad()` does
    /// (`set_to_none=True`), keeping its buffer for the next static backward
    /// (no allocation next step). Until a backward reaches the parameter
    /// again, [`Param::grad`] is `None` and optimizers skip it.
    pub fn zero_grad(&self) {
        let mut slot = write(&self.inner.grad);
        if let Some(buffer) = slot.take() {
            *self
                .inner
                .spare
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(buffer);
        }
    }

    /// Drops the gradient and its buffer: optimizers skip the parameter
    /// until a backward pass reaches it again.
    pub fn clear_grad(&self) {
        let mut slot = write(&self.inner.grad);
        *self
            .inner
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        *slot = None;
    }

    /// Adds `g` into the gradient (taking it as it is when there is none).
    pub fn accumulate_grad(&self, g: ArrayD<T>) {
        let mut slot = write(&self.inner.grad);
        if slot.is_none() {
            // A tape brings its own buffer: the kept one would only double
            // the gradients' memory.
            self.inner
                .spare
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
        super::accumulate(&mut slot, g, "param");
    }

    /// Whether the parameter is trained: true unless frozen with
    /// [`Param::set_trainable`].
    pub fn is_trainable(&self) -> bool {
        self.inner.trainable.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes (`true`) the parameter, for every handle
    /// to it. Freezing drops its gradient, so a frozen parameter's
    /// [`Param::grad`] is `None`; a tape that recorded the parameter before
    /// the change still treats it as it was when recorded.
    ///
    /// ```
    /// use nn_core::{Param, Tape};
    /// use ndarray::array;
    ///
    /// let w = Param::new(array![1.0f64, 2.0]);
    /// w.set_trainable(false);
    /// let tape = Tape::new();
    /// let wv = tape.param(&w);
    /// assert!(!wv.requires_grad());
    /// (&wv * &wv).sum().backward();
    /// assert!(w.grad().is_none());
    /// ```
    pub fn set_trainable(&self, trainable: bool) {
        self.inner.trainable.store(trainable, Ordering::Relaxed);
        if !trainable {
            self.clear_grad();
        }
    }

    /// Whether `self` and `other` are handles to the same storage.
    pub fn same_as(&self, other: &Param<T>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The storage's address: equal for two handles exactly when
    /// [`Param::same_as`] is true, while both live.
    pub(crate) fn storage_address(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }
}

/// A read lock that ignores poisoning: a panic elsewhere leaves the array
/// itself valid.
fn read<X>(lock: &RwLock<X>) -> RwLockReadGuard<'_, X> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// A write lock that ignores poisoning (see [`read`]).
fn write<X>(lock: &RwLock<X>) -> RwLockWriteGuard<'_, X> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
