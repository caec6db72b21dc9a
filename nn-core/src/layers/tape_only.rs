//! `TapeOnly`: a layer written for the tape alone, given a static path.
//!
//! Research layers are easiest to write as a tape `forward` plus their
//! parameters ([`TapeLayer`]); [`TapeOnly`] makes such a layer a full
//! [`Layer`], so it goes into a `sequential!` model like a built-in (there:
//! `Tape(MyLayer(args))`).
//!
//! **Cost.** Each static training step records the layer's ops on a fresh
//! tape and copies the input in and the output and input gradient out, so
//! it allocates, and it runs at tape speed rather than in reused buffers.
//! Parameters receive the same gradients as a hand-written static path
//! would (the tape adds them into [`Param::grad`]). Write the static path
//! yourself ([`Layer::forward_train`], [`Layer::backward`]) where the layer is
//! a bottleneck.
//!
//! **Threads.** The tape is single-threaded (`Rc`), but a `TapeOnly` is
//! `Send` (and `Sync` when its inner layer is), like every layer: the tape
//! recorded by `forward_train` waits for `backward` in a thread-local table,
//! keyed by the layer, not in the layer itself. So `forward_train` and its
//! `backward` must run on the same thread (a training step does); between
//! steps the layer moves freely. Re-recording the forward in `backward`
//! instead would run the layer twice and, for a random layer, differentiate
//! a different function than the one whose output was returned.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, ThreadId};

use ndarray::{ArrayD, ArrayViewD};

use super::{Layer, Share, Workspace};
use crate::tape::{Param, Tape, Var};
use crate::Float;

/// What a layer must provide to run on the tape; [`TapeOnly`] derives the
/// rest of [`Layer`] from it.
///
/// ```
/// use nn_core::layers::{Layer, TapeLayer, TapeOnly};
/// use nn_core::{Param, Var};
/// use ndarray::array;
///
/// /// `x * scale`, one learned scale per feature.
/// struct Scale { scale: Param<f64> }
///
/// impl TapeLayer<f64> for Scale {
///     fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
///         Ok(input.to_vec())
///     }
///     fn forward(&self, x: &Var<f64>) -> Var<f64> {
///         x * &x.tape().param(&self.scale)
///     }
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
///         f("scale", &self.scale);
///     }
/// }
///
/// let mut layer = TapeOnly::new(Scale { scale: Param::new(array![2.0, 3.0].into_dyn()) });
/// let x = array![[1.0, 1.0]].into_dyn();
/// assert_eq!(layer.forward_train(x.view()), array![[2.0, 3.0]].into_dyn());
/// let dy = array![[1.0, 10.0]].into_dyn();
/// assert_eq!(layer.backward(x.view(), dy.view(), true), array![[2.0, 30.0]].into_dyn());
/// assert_eq!(layer.inner.scale.grad().clone().unwrap(), array![1.0, 10.0].into_dyn());
/// ```
pub trait TapeLayer<T: Float> {
    /// The layer's type as `summary()` shows it; the type's own name by default.
    fn type_name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }

    /// The output shape for an input shape (batch axis excluded), or why the
    /// input does not fit.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String>;

    /// Records the layer's ops on `x`'s tape.
    fn forward(&self, x: &Var<T>) -> Var<T>;

    /// Calls `f` with each parameter and its local name.
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}

    /// Switches between training and evaluation.
    fn set_training(&mut self, _training: bool) {}

    /// Restarts the layer's random draws from `seed` (see [`Layer::reseed`]).
    fn reseed(&self, _seed: u64) {}
}

thread_local! {
    /// The input and output of each `TapeOnly`'s last `forward_train` on this
    /// thread, on their tape, by layer id, until its `backward`. Values are
    /// `(Var<T>, Var<T>)` for the layer's `T`.
    static RECORDINGS: RefCell<HashMap<u64, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

/// Source of [`TapeOnly`] ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A [`TapeLayer`] as a full [`Layer`]: its static path runs the tape (see the
/// module documentation for the cost and for threads).
pub struct TapeOnly<T: Float, L> {
    /// The wrapped layer.
    pub inner: L,
    /// Its key in `RECORDINGS`.
    id: u64,
    /// The thread whose `RECORDINGS` holds the last `forward_train`'s tape,
    /// until `backward` takes it.
    recorded_on: Option<ThreadId>,
    buf: Workspace<T>,
}

impl<T: Float, L: TapeLayer<T>> TapeOnly<T, L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> Self {
        Self::wrap(inner)
    }

    /// Keeps the recording of a `forward_train` for the next `backward`.
    fn keep(&mut self, recorded: (Var<T>, Var<T>)) {
        self.discard();
        RECORDINGS.with(|r| r.borrow_mut().insert(self.id, Box::new(recorded)));
        self.recorded_on = Some(thread::current().id());
    }

    /// Takes the recording of the last `forward_train`.
    fn take(&mut self) -> (Var<T>, Var<T>) {
        let name = self.inner.type_name();
        let Some(on) = self.recorded_on else {
            panic!("{name}: backward called without forward_train")
        };
        // Checked before forgetting the thread, so the recording can still be
        // discarded there after this panic.
        assert!(
            on == thread::current().id(),
            "{name}: backward must run on the thread that ran forward_train (its tape is single-threaded)"
        );
        self.recorded_on = None;
        let recorded = RECORDINGS.with(|r| r.borrow_mut().remove(&self.id));
        *recorded
            .expect("recorded on this thread")
            .downcast()
            .expect("recorded by this layer")
    }
}

impl<T: Float, L> TapeOnly<T, L> {
    /// `inner` with an id of its own and nothing recorded.
    fn wrap(inner: L) -> Self {
        TapeOnly {
            inner,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            recorded_on: None,
            buf: Workspace::new(),
        }
    }

    /// Drops a recording still waiting for `backward`, if it is on this
    /// thread (one left on another thread is freed when that thread exits,
    /// or replaced by this layer's next `forward_train` there).
    fn discard(&mut self) {
        if self.recorded_on.take() == Some(thread::current().id()) {
            // `try_with`: the table may be gone while this thread exits.
            let _ = RECORDINGS.try_with(|r| r.borrow_mut().remove(&self.id));
        }
    }
}

/// The inner layer's `Clone` decides what the instances share: clones of
/// its `Param` fields (a derived `Clone`) share them. The new instance gets
/// an id of its own, so the two places' recordings, waiting for their
/// backward passes, never replace each other.
impl<T: Float, L: Clone> Share for TapeOnly<T, L> {
    fn share(&self) -> Self {
        Self::wrap(self.inner.clone())
    }
}

impl<T: Float, L> Drop for TapeOnly<T, L> {
    fn drop(&mut self) {
        self.discard();
    }
}

impl<T: Float, L: TapeLayer<T>> Layer<T> for TapeOnly<T, L> {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        self.inner.output_shape(input)
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.inner.forward(x)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let tape = Tape::new();
        let xv = tape.var(x.to_owned());
        let yv = self.inner.forward(&xv);
        yv.with_value(|y| self.buf.output_mut(y.shape()).assign(y));
        self.keep((xv, yv));
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
        let (xv, yv) = self.take();
        yv.backward_with(dy.to_owned());
        self.buf
            .input_grad(need_input_grad, x.shape(), |mut dx| match xv.grad() {
                Some(g) => dx.assign(&g),
                // The output does not depend on the input.
                None => dx.fill(T::zero()),
            })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let tape = Tape::new();
        let _off = tape.no_grad();
        self.inner.forward(&tape.constant(x.to_owned())).value()
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.inner.visit_params(f)
    }

    fn set_training(&mut self, training: bool) {
        self.inner.set_training(training)
    }

    fn reseed(&self, seed: u64) {
        self.inner.reseed(seed)
    }
}
