//! [`Workspace`]: the output and input-gradient buffers of a layer's static path.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use super::{ensure_activated, ensure_shape, no_input_grad};
use crate::activation::ActivationFn;
use crate::Float;

/// The two buffers of a layer's static path: its output `y` (what
/// [`Layer::forward_train`](super::Layer::forward_train) and
/// [`Layer::output`](super::Layer::output) return) and its input's gradient
/// `dx` (what [`Layer::backward`](super::Layer::backward) returns), and for
/// a layer with a built-in activation (`Dense`, `Conv2d`) its pre-activation
/// `z` and that one's gradient. Each is reallocated only when its shape
/// changes, so steady-state training steps allocate nothing, and the layer's
/// static path is just its kernel calls:
///
/// ```
/// use nn_core::layers::{Workspace, Layer};
/// use nn_core::ndarray::{ArrayD, ArrayViewD, Zip};
/// use nn_core::{Float, Var};
///
/// /// `y = x²`, element-wise.
/// struct Square<T: Float> {
///     buf: Workspace<T>,
/// }
///
/// impl<T: Float> Layer<T> for Square<T> {
///     fn type_name(&self) -> &'static str {
///         "Square"
///     }
///     fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
///         Ok(input.to_vec())
///     }
///     fn forward(&self, x: &Var<T>) -> Var<T> {
///         x.pow(2.0)
///     }
///     fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
///         let y = self.buf.output_mut(x.shape());
///         Zip::from(y).and(&x).for_each(|y, &v| *y = v * v);
///         self.buf.output()
///     }
///     fn output(&self) -> ArrayViewD<'_, T> {
///         self.buf.output()
///     }
///     fn backward(
///         &mut self,
///         x: ArrayViewD<'_, T>,
///         dy: ArrayViewD<'_, T>,
///         need_input_grad: bool,
///     ) -> ArrayViewD<'_, T> {
///         self.buf.input_grad(need_input_grad, x.shape(), |dx| {
///             Zip::from(dx)
///                 .and(&x)
///                 .and(&dy)
///                 .for_each(|d, &v, &g| *d = T::lit(2.0) * v * g)
///         })
///     }
///     fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
///         x.mapv(|v| v * v)
///     }
/// }
///
/// let mut layer = Square::<f64> { buf: Workspace::new() };
/// let x = ArrayD::from_elem(vec![2, 3], 3.0);
/// assert_eq!(layer.forward_train(x.view())[[0, 0]], 9.0);
/// assert_eq!(layer.backward(x.view(), x.view(), true)[[1, 2]], 18.0);
/// assert!(layer.backward(x.view(), x.view(), false).is_empty());
/// ```
pub struct Workspace<T: Float> {
    y: ArrayD<T>,
    dx: ArrayD<T>,
    /// The pre-activation, when the activation is not the identity.
    z: ArrayD<T>,
    /// The pre-activation's gradient.
    dz: ArrayD<T>,
}

impl<T: Float> Default for Workspace<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Workspace<T> {
    /// Empty buffers; the first training step sizes them.
    pub fn new() -> Self {
        let empty = || ArrayD::zeros(IxDyn(&[0]));
        Workspace {
            y: empty(),
            dx: empty(),
            z: empty(),
            dz: empty(),
        }
    }

    /// The output buffer sized to `shape`, for a kernel to write the output
    /// into; [`Workspace::output`] then returns it.
    pub fn output_mut(&mut self, shape: &[usize]) -> ArrayViewMutD<'_, T> {
        ensure_shape(&mut self.y, shape);
        self.y.view_mut()
    }

    /// [`Workspace::output_mut`] sized for `activation` of a `z`-shaped
    /// input (an activation may change the shape, as `glu` halves an axis).
    pub fn activated_mut<A: ActivationFn>(
        &mut self,
        activation: &A,
        z: &[usize],
    ) -> ArrayViewMutD<'_, T> {
        ensure_activated(activation, &mut self.y, z);
        self.y.view_mut()
    }

    /// For a layer with a built-in `activation`: where its kernel writes the
    /// pre-activation `z`, sized to `shape` (the output buffer itself when
    /// the activation is the identity). [`Workspace::activate`] follows.
    pub fn pre_activation_mut<A: ActivationFn>(
        &mut self,
        activation: &A,
        shape: &[usize],
    ) -> ArrayViewMutD<'_, T> {
        if activation.is_identity() {
            return self.output_mut(shape);
        }
        ensure_shape(&mut self.z, shape);
        self.z.view_mut()
    }

    /// Applies `activation` to the pre-activation written through
    /// [`Workspace::pre_activation_mut`]; returns the output.
    pub fn activate<A: ActivationFn>(&mut self, activation: &A) -> ArrayViewD<'_, T> {
        if !activation.is_identity() {
            ensure_activated(activation, &mut self.y, self.z.shape());
            activation.forward_into(self.z.view(), self.y.view_mut());
        }
        self.y.view()
    }

    /// The output of the last training step.
    pub fn output(&self) -> ArrayViewD<'_, T> {
        self.y.view()
    }

    /// What `backward` returns: when `need`, the input-gradient buffer sized
    /// to `shape` and written by `fill`; otherwise an empty view, without
    /// calling `fill`.
    pub fn input_grad(
        &mut self,
        need: bool,
        shape: &[usize],
        fill: impl FnOnce(ArrayViewMutD<'_, T>),
    ) -> ArrayViewD<'_, T> {
        self.input_grad_from_output(need, shape, |_, dx| fill(dx))
    }

    /// [`Workspace::input_grad`] for a gradient computed from the layer's own
    /// output: `fill` gets the output `y`, then `dx` to write.
    pub fn input_grad_from_output(
        &mut self,
        need: bool,
        shape: &[usize],
        fill: impl FnOnce(ArrayViewD<'_, T>, ArrayViewMutD<'_, T>),
    ) -> ArrayViewD<'_, T> {
        let y = self.y.view();
        write_input_grad(&mut self.dx, need, shape, |dx| {
            if let Some(dx) = dx {
                fill(y, dx)
            }
        })
    }

    /// [`Workspace::input_grad`] for a kernel that computes the parameters'
    /// gradients in the same call: `fill` always runs, given the
    /// input-gradient buffer sized to `shape` when `need` and `None` otherwise.
    pub fn maybe_input_grad(
        &mut self,
        need: bool,
        shape: &[usize],
        fill: impl FnOnce(Option<ArrayViewMutD<'_, T>>),
    ) -> ArrayViewD<'_, T> {
        write_input_grad(&mut self.dx, need, shape, fill)
    }

    /// `backward` of a layer with a built-in `activation`: the output's
    /// gradient `dy` is taken back through the activation, and `fill` gets
    /// the pre-activation's gradient and the input-gradient buffer (as in
    /// [`Workspace::maybe_input_grad`]).
    pub fn activated_input_grad<A: ActivationFn>(
        &mut self,
        activation: &A,
        dy: ArrayViewD<'_, T>,
        need: bool,
        shape: &[usize],
        fill: impl FnOnce(ArrayViewD<'_, T>, Option<ArrayViewMutD<'_, T>>),
    ) -> ArrayViewD<'_, T> {
        self.through_activation(activation, false, dy, need, shape, fill)
    }

    /// [`Workspace::activated_input_grad`] for a layer whose kernel applied
    /// plain `relu` itself, writing only the output
    /// ([`Workspace::output_mut`]): the output is positive exactly where the
    /// pre-activation is (NaN in neither), so it stands in for it, and the
    /// gradient has the bits of the unfused layer's.
    pub fn relu_output_input_grad<A: ActivationFn>(
        &mut self,
        relu: &A,
        dy: ArrayViewD<'_, T>,
        need: bool,
        shape: &[usize],
        fill: impl FnOnce(ArrayViewD<'_, T>, Option<ArrayViewMutD<'_, T>>),
    ) -> ArrayViewD<'_, T> {
        debug_assert!(relu.is_plain_relu(), "{} is not plain relu", relu.name());
        self.through_activation(relu, true, dy, need, shape, fill)
    }

    /// `dy` back through `activation`, from the pre-activation, or from the
    /// output standing in for it (`from_output`), then `fill`.
    fn through_activation<A: ActivationFn>(
        &mut self,
        activation: &A,
        from_output: bool,
        dy: ArrayViewD<'_, T>,
        need: bool,
        shape: &[usize],
        fill: impl FnOnce(ArrayViewD<'_, T>, Option<ArrayViewMutD<'_, T>>),
    ) -> ArrayViewD<'_, T> {
        let dz = if activation.is_identity() {
            dy
        } else {
            let z = if from_output { &self.y } else { &self.z };
            ensure_shape(&mut self.dz, z.shape());
            activation.backward_into(z.view(), self.y.view(), dy, self.dz.view_mut());
            self.dz.view()
        };
        write_input_grad(&mut self.dx, need, shape, |dx| fill(dz, dx))
    }

    /// What `backward` returns for an input that has no gradient: an empty view.
    pub fn no_input_grad(&self) -> ArrayViewD<'_, T> {
        no_input_grad(&self.dx)
    }
}

/// Sizes `dx` to `shape` when `need` and lets `fill` write it (given `None`
/// otherwise); returns it, or an empty view when not needed.
fn write_input_grad<'a, T: Float>(
    dx: &'a mut ArrayD<T>,
    need: bool,
    shape: &[usize],
    fill: impl FnOnce(Option<ArrayViewMutD<'_, T>>),
) -> ArrayViewD<'a, T> {
    if !need {
        fill(None);
        return no_input_grad(dx);
    }
    ensure_shape(dx, shape);
    fill(Some(dx.view_mut()));
    dx.view()
}
