//! Model parameters: owned by the model, lent to a tape without copying.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    /// Set by [`Param::zero_grad`] (under the gradient's write lock): the
    /// gradient is zero and its buffer not yet cleared. Every accessor clears
    /// it first, except a tape's backward, which moves its fresh gradient in
    /// instead of adding it to zeros, and a static backward that overwrites
    /// every element ([`Param::grad_mut_for_overwrite`]).
    stale: AtomicBool,
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
                stale: AtomicBool::new(false),
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
    /// it, and always `None` for a frozen parameter that nothing wrote to.
    pub fn grad(&self) -> RwLockReadGuard<'_, Option<ArrayD<T>>> {
        loop {
            let guard = read(&self.inner.grad);
            // `zero_grad` sets the flag only under the write lock, so under
            // this read lock it cannot change.
            if !self.inner.stale.load(Ordering::Acquire) {
                return guard;
            }
            drop(guard);
            drop(self.grad_mut());
        }
    }

    /// Whether a backward pass has written a gradient since the last
    /// [`Param::zero_grad`] or [`Param::clear_grad`]: PyTorch's `p.grad is not
    /// None` under its default `zero_grad(set_to_none=True)`. Optimizers step
    /// only such parameters, so one that a step's backward did not reach is
    /// left alone (no momentum, no weight decay), as in PyTorch.
    pub fn has_grad(&self) -> bool {
        let guard = read(&self.inner.grad);
        guard.is_some() && !self.inner.stale.load(Ordering::Acquire)
    }

    /// Borrows the gradient mutably (gradient clipping, custom updates).
    pub fn grad_mut(&self) -> RwLockWriteGuard<'_, Option<ArrayD<T>>> {
        let (mut guard, stale) = self.grad_mut_for_overwrite();
        if stale {
            if let Some(g) = guard.as_mut() {
                g.fill(T::zero());
            }
        }
        guard
    }

    /// [`Param::grad_mut`] for a writer that overwrites every element: a
    /// gradient cleared by [`Param::zero_grad`] is not zero-filled first,
    /// and the flag says so (`true`: overwrite; `false`: add to it).
    pub(crate) fn grad_mut_for_overwrite(&self) -> (RwLockWriteGuard<'_, Option<ArrayD<T>>>, bool) {
        let guard = write(&self.inner.grad);
        let stale = self.inner.stale.swap(false, Ordering::AcqRel);
        (guard, stale)
    }

    /// Sets the gradient to zero, keeping its buffer (no allocation next
    /// step). The buffer is cleared when next used; a tape's backward, or a
    /// layer's product that writes all of it, replaces it instead of adding
    /// to zeros. Until then the parameter counts as having no gradient
    /// ([`Param::has_grad`]), as after PyTorch's `zero_grad()`.
    pub fn zero_grad(&self) {
        let guard = write(&self.inner.grad);
        if guard.is_some() {
            self.inner.stale.store(true, Ordering::Release);
        }
    }

    /// Drops the gradient (PyTorch's `set_to_none=True`): optimizers skip the
    /// parameter until a backward pass reaches it again.
    pub fn clear_grad(&self) {
        let mut guard = write(&self.inner.grad);
        self.inner.stale.store(false, Ordering::Release);
        *guard = None;
    }

    /// Adds `g` into the gradient (allocating it on first use; after
    /// [`Param::zero_grad`], taking `g` as it is).
    pub fn accumulate_grad(&self, g: ArrayD<T>) {
        let mut slot = write(&self.inner.grad);
        if self.inner.stale.swap(false, Ordering::AcqRel) {
            match slot.as_mut() {
                // The buffer is logically zero, so `g` is the sum.
                Some(acc) if acc.shape() == g.shape() => {
                    *acc = g;
                    return;
                }
                Some(acc) => acc.fill(T::zero()),
                None => {}
            }
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
