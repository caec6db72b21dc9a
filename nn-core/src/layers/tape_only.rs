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

use ndarray::{ArrayD, ArrayViewD};

use super::{Layer, Workspace};
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
}

/// A [`TapeLayer`] as a full [`Layer`]: its static path runs the tape (see the
/// module documentation for the cost).
pub struct TapeOnly<T: Float, L> {
    /// The wrapped layer.
    pub inner: L,
    /// The input and output of the last `forward_train`, on their tape.
    recorded: Option<(Var<T>, Var<T>)>,
    buf: Workspace<T>,
}

impl<T: Float, L: TapeLayer<T>> TapeOnly<T, L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> Self {
        TapeOnly {
            inner,
            recorded: None,
            buf: Workspace::new(),
        }
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
        self.recorded = Some((xv, yv));
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
        let (xv, yv) = self.recorded.take().unwrap_or_else(|| {
            panic!(
                "{}: backward called without forward_train",
                self.inner.type_name()
            )
        });
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
}
