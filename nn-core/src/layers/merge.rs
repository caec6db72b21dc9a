//! Merge layers: Keras's `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`,
//! `Minimum` and `Concatenate`.
//!
//! A merge layer takes several inputs, the outputs of the branches of a graph
//! where they join, and gives one output. The functional-graph macro puts one
//! wherever a graph's branches join; each implements [`Merge`], the
//! several-input counterpart of [`Layer`](super::Layer), with both execution
//! paths: the tape [`Merge::forward`], and the static
//! [`Merge::forward_train`] / [`Merge::backward`], which keep the output, the
//! intermediates backward needs and every input's gradient in buffers of the
//! layer's own, reused from one step to the next.
//!
//! The element-wise merges are left folds of a binary op of
//! [`crate::kernels::arith`] over inputs of one shape: the tape records the
//! fold (`(x₀ + x₁) + x₂`, `x₀.maximum(x₁).maximum(x₂)`), and the static path
//! runs the same kernels step by step, keeping the fold's partial results, so
//! both paths give the same values and gradients, bit for bit, ties of
//! `Maximum` and `Minimum` included.
//!
//! ```
//! use nn_core::layers::{Add, Concatenate, Merge};
//! use nn_core::ndarray::{array, ArrayViewD};
//!
//! let (a, b) = (array![[1.0, 2.0]].into_dyn(), array![[10.0, 20.0]].into_dyn());
//! let xs: [ArrayViewD<'_, f64>; 2] = [a.view(), b.view()];
//!
//! let mut add = Add::new();
//! assert_eq!(add.output_shape(&[&[2], &[2]]), Ok(vec![2]));
//! assert_eq!(add.forward_train(&xs), array![[11.0, 22.0]].into_dyn());
//! add.backward(&xs, array![[1.0, -1.0]].into_dyn().view());
//! assert_eq!(add.input_grad(1), array![[1.0, -1.0]].into_dyn());
//!
//! let concat = Concatenate::default(); // axis -1
//! assert_eq!(concat.predict(&xs), array![[1.0, 2.0, 10.0, 20.0]].into_dyn());
//! assert!(concat.output_shape(&[&[2], &[3, 1]]).is_err());
//! ```

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use smallvec::SmallVec;

use super::{ensure_shape, Share};
use crate::kernels::arith as ops;
use crate::kernels::binary::{self, Binary};
use crate::kernels::math::Affine;
use crate::kernels::pointwise;
use crate::kernels::shape::{concat, concat_backward_into, concat_into};
use crate::tape::Var;
use crate::Float;

/// A layer of several inputs (Keras's merge layers), with both execution
/// paths like [`Layer`](super::Layer).
///
/// Shapes passed to [`Merge::output_shape`] exclude the batch axis; arrays
/// and variables have it first. Misuse (a wrong number of inputs, shapes that
/// do not fit, `backward` without its `forward_train`) panics naming the
/// layer and the shapes.
pub trait Merge<T: Float> {
    /// Keras's class name, "Add", "Concatenate".
    fn type_name(&self) -> &'static str;

    /// One sample's output shape (batch axis excluded) for the inputs' shapes,
    /// or why they do not fit (the message names the layer and every shape).
    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String>;

    /// The tape path: records the merge of `xs` on their tape.
    fn forward(&self, xs: &[&Var<T>]) -> Var<T>;

    /// The static path's forward: computes the output into the layer's own
    /// buffer (reused: no allocation in steady state), caching what
    /// [`Merge::backward`] needs, and returns a view of it.
    fn forward_train(&mut self, xs: &[ArrayViewD<'_, T>]) -> ArrayViewD<'_, T>;

    /// The output of the last [`Merge::forward_train`].
    fn output(&self) -> ArrayViewD<'_, T>;

    /// The static path's backward: given the inputs of the last
    /// `forward_train` and the output's gradient `dy`, computes every input's
    /// gradient into buffers of the layer's own (reused), read with
    /// [`Merge::input_grad`].
    fn backward(&mut self, xs: &[ArrayViewD<'_, T>], dy: ArrayViewD<'_, T>);

    /// The gradient of input `i` from the last [`Merge::backward`].
    fn input_grad(&self, i: usize) -> ArrayViewD<'_, T>;

    /// Inference: no tape, no caches.
    fn predict(&self, xs: &[ArrayViewD<'_, T>]) -> ArrayD<T>;
}

/// `[2, 3], [2, 4]`: shapes for a message.
fn list<'s>(shapes: impl IntoIterator<Item = &'s [usize]>) -> String {
    let shapes: Vec<String> = shapes.into_iter().map(|s| format!("{s:?}")).collect();
    shapes.join(", ")
}

/// An empty buffer, sized by the first training step.
fn empty<T: Float>() -> ArrayD<T> {
    ArrayD::zeros(IxDyn(&[0]))
}

/// Makes `bufs` hold at least `n` buffers (growing only), the first `n` of
/// `shape`.
fn ensure_buffers<T: Float>(
    bufs: &mut Vec<ArrayD<T>>,
    n: usize,
    shape: impl Fn(usize) -> SmallVec<[usize; 6]>,
) {
    if bufs.len() < n {
        bufs.resize_with(n, empty);
    }
    for (i, b) in bufs[..n].iter_mut().enumerate() {
        ensure_shape(b, &shape(i));
    }
}

/// The gradient of input `i`, checked against the last backward's count.
fn nth_grad<'a, T: Float>(
    name: &str,
    grads: &'a [ArrayD<T>],
    inputs: usize,
    i: usize,
) -> ArrayViewD<'a, T> {
    assert!(
        i < inputs,
        "{name}: input_grad({i}), but the last backward had {inputs} inputs"
    );
    grads[i].view()
}

/// How many inputs an element-wise merge takes.
#[derive(Clone, Copy, Debug)]
enum Arity {
    AtLeastTwo,
    ExactlyTwo,
}

/// Why `name` cannot merge inputs of `shapes` element-wise, or `None`.
fn elementwise_error<'s, I>(name: &str, arity: Arity, shapes: I) -> Option<String>
where
    I: IntoIterator<Item = &'s [usize]> + Clone,
{
    let n = shapes.clone().into_iter().count();
    let (fits, takes) = match arity {
        Arity::AtLeastTwo => (n >= 2, "at least 2"),
        Arity::ExactlyTwo => (n == 2, "exactly 2"),
    };
    if !fits {
        return Some(format!(
            "{name} takes {takes} inputs, got {n}: [{}]",
            list(shapes)
        ));
    }
    let mut it = shapes.clone().into_iter();
    let first = it.next()?;
    if it.all(|s| s == first) {
        return None;
    }
    Some(format!(
        "{name} needs inputs of one shape (it does not broadcast), got {}",
        list(shapes)
    ))
}

/// An element-wise merge: the left fold `f(…f(f(x₀, x₁), x₂)…, xₙ₋₁)` of a
/// binary op, times `1/n` for `Average`. Holds the static path's buffers.
struct Fold<T: Float, B: Binary> {
    name: &'static str,
    op: B,
    arity: Arity,
    /// Whether the fold (a sum) is scaled by `1/n`.
    mean: bool,
    /// The fold's partial results `m₁ … mₙ₋₂` of the last `forward_train`
    /// (`mₖ = f(mₖ₋₁, xₖ)`, `m₀ = x₀`), and `mₙ₋₁`, the sum, for `Average`.
    partial: Vec<ArrayD<T>>,
    /// The output.
    y: ArrayD<T>,
    /// Inputs of the last `forward_train`.
    forward_inputs: usize,
    /// `Average`: the sum's gradient.
    dsum: ArrayD<T>,
    /// Each input's gradient.
    grads: Vec<ArrayD<T>>,
    /// Where a step's gradient is written before it replaces the previous
    /// step's (see `backward`).
    spare: ArrayD<T>,
    /// Inputs of the last `backward`.
    backward_inputs: usize,
}

impl<T: Float, B: Binary> Fold<T, B> {
    fn new(name: &'static str, op: B, arity: Arity, mean: bool) -> Self {
        Fold {
            name,
            op,
            arity,
            mean,
            partial: Vec::new(),
            y: empty(),
            forward_inputs: 0,
            dsum: empty(),
            grads: Vec::new(),
            spare: empty(),
            backward_inputs: 0,
        }
    }

    /// `Average`'s scaling.
    fn scale(n: usize) -> Affine {
        Affine {
            scale: 1.0 / n as f64,
            shift: 0.0,
        }
    }

    /// How many partial results a fold of `n` inputs keeps.
    fn kept(&self, n: usize) -> usize {
        if self.mean {
            n - 1
        } else {
            n - 2
        }
    }

    fn check<'s>(&self, shapes: impl IntoIterator<Item = &'s [usize]> + Clone) {
        if let Some(e) = elementwise_error(self.name, self.arity, shapes) {
            panic!("{e}");
        }
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        match elementwise_error(self.name, self.arity, inputs.iter().copied()) {
            Some(e) => Err(e),
            None => Ok(inputs[0].to_vec()),
        }
    }

    fn forward(&self, xs: &[&Var<T>]) -> Var<T> {
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape()).collect();
        self.check(shapes.iter().map(Vec::as_slice));
        // What `+`, `-`, `*`, `maximum` and `minimum` record.
        let mut y = xs[0].binary(xs[1], self.op.clone());
        for x in &xs[2..] {
            y = y.binary(x, self.op.clone());
        }
        if self.mean {
            y.pointwise(Self::scale(xs.len()))
        } else {
            y
        }
    }

    fn forward_train(&mut self, xs: &[ArrayViewD<'_, T>]) -> ArrayViewD<'_, T> {
        self.check(xs.iter().map(|x| x.shape()));
        let (n, shape) = (xs.len(), xs[0].shape());
        let kept = self.kept(n);
        ensure_buffers(&mut self.partial, kept, |_| shape.into());
        ensure_shape(&mut self.y, shape);
        let Fold {
            op,
            mean,
            partial,
            y,
            ..
        } = self;
        for k in 1..n {
            // mₖ = f(mₖ₋₁, xₖ), into its partial buffer or, last, the output.
            let (done, rest) = partial.split_at_mut(k - 1);
            let prev = if k == 1 {
                xs[0].view()
            } else {
                done[k - 2].view()
            };
            let out = if k <= kept {
                rest[0].view_mut()
            } else {
                y.view_mut()
            };
            binary::forward_into(op, prev, xs[k].view(), out);
        }
        if *mean {
            pointwise::forward_into(&Self::scale(n), partial[n - 2].view(), y.view_mut());
        }
        self.forward_inputs = n;
        self.y.view()
    }

    fn backward(&mut self, xs: &[ArrayViewD<'_, T>], dy: ArrayViewD<'_, T>) {
        self.check(xs.iter().map(|x| x.shape()));
        let (n, shape) = (xs.len(), xs[0].shape());
        assert!(
            self.forward_inputs == n && self.y.shape() == shape,
            "{}: backward of {n} inputs of shape {shape:?} does not follow their forward_train (the last one had {} inputs and output {:?})",
            self.name,
            self.forward_inputs,
            self.y.shape()
        );
        assert!(
            dy.shape() == shape,
            "{}: output gradient of shape {:?} for an output of shape {shape:?}",
            self.name,
            dy.shape()
        );
        let kept = self.kept(n);
        ensure_buffers(&mut self.grads, n, |_| shape.into());
        ensure_shape(&mut self.spare, shape);
        let Fold {
            op,
            mean,
            partial,
            y,
            dsum,
            grads,
            spare,
            ..
        } = self;
        // The gradient of the fold's last partial result mₙ₋₁.
        let top = if *mean {
            ensure_shape(dsum, shape);
            let sum = partial[n - 2].view();
            pointwise::backward_into(&Self::scale(n), sum, y.view(), dy, dsum.view_mut());
            dsum.view()
        } else {
            dy
        };
        let m = |k: usize| -> ArrayViewD<'_, T> {
            match k {
                0 => xs[0].view(),
                k if k <= kept => partial[k - 1].view(),
                _ => y.view(),
            }
        };
        // Step k (mₖ = f(mₖ₋₁, xₖ)) from the last back: its output gradient
        // gₖ is `top` for the last step and otherwise sits in grads[k], where
        // the step after it wrote it; the step writes gₖ₋₁ into grads[k - 1]
        // (x₀'s gradient once k = 1) and xₖ's gradient into `spare`, then
        // swapped into grads[k].
        for k in (1..n).rev() {
            let (before, from) = grads.split_at_mut(k);
            let da = Some(before[k - 1].view_mut());
            let (a, b, mk) = (m(k - 1), xs[k].view(), m(k));
            if k == n - 1 {
                let db = Some(from[0].view_mut());
                binary::backward_into(op, a, b, mk, top.view(), da, db);
            } else {
                let g = from[0].view();
                binary::backward_into(op, a, b, mk, g, da, Some(spare.view_mut()));
                std::mem::swap(&mut from[0], spare);
            }
        }
        self.backward_inputs = n;
    }

    fn input_grad(&self, i: usize) -> ArrayViewD<'_, T> {
        nth_grad(self.name, &self.grads, self.backward_inputs, i)
    }

    fn predict(&self, xs: &[ArrayViewD<'_, T>]) -> ArrayD<T> {
        self.check(xs.iter().map(|x| x.shape()));
        let mut y = binary::forward(&self.op, xs[0].view(), xs[1].view());
        for x in &xs[2..] {
            y = binary::forward(&self.op, y.view(), x.view());
        }
        if self.mean {
            pointwise::forward(&Self::scale(xs.len()), y.view())
        } else {
            y
        }
    }
}

/// One public type per element-wise merge, each a [`Fold`].
macro_rules! elementwise {
    ($($(#[$doc:meta])* $name:ident => $op:ident, $arity:ident, mean: $mean:literal;)*) => {$(
        $(#[$doc])*
        pub struct $name<T: Float> {
            fold: Fold<T, ops::$op>,
        }

        impl<T: Float> $name<T> {
            #[doc = concat!("A `", stringify!($name), "` layer.")]
            pub fn new() -> Self {
                $name {
                    fold: Fold::new(stringify!($name), ops::$op, Arity::$arity, $mean),
                }
            }
        }

        impl<T: Float> Default for $name<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T: Float> Share for $name<T> {
            fn share(&self) -> Self {
                Self::new()
            }
        }

        impl<T: Float> Merge<T> for $name<T> {
            fn type_name(&self) -> &'static str {
                stringify!($name)
            }
            fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
                self.fold.output_shape(inputs)
            }
            fn forward(&self, xs: &[&Var<T>]) -> Var<T> {
                self.fold.forward(xs)
            }
            fn forward_train(&mut self, xs: &[ArrayViewD<'_, T>]) -> ArrayViewD<'_, T> {
                self.fold.forward_train(xs)
            }
            fn output(&self) -> ArrayViewD<'_, T> {
                self.fold.y.view()
            }
            fn backward(&mut self, xs: &[ArrayViewD<'_, T>], dy: ArrayViewD<'_, T>) {
                self.fold.backward(xs, dy)
            }
            fn input_grad(&self, i: usize) -> ArrayViewD<'_, T> {
                self.fold.input_grad(i)
            }
            fn predict(&self, xs: &[ArrayViewD<'_, T>]) -> ArrayD<T> {
                self.fold.predict(xs)
            }
        }
    )*};
}

elementwise! {
    /// `x₀ + x₁ + …`, element-wise, of two or more inputs of one shape
    /// (Keras's `Add`). Every input's gradient is the output's.
    Add => Add, AtLeastTwo, mean: false;
    /// `x₀ - x₁`, element-wise, of exactly two inputs of one shape (Keras's
    /// `Subtract`).
    Subtract => Sub, ExactlyTwo, mean: false;
    /// `x₀ · x₁ · …`, element-wise and multiplied left to right, of two or
    /// more inputs of one shape (Keras's `Multiply`).
    Multiply => Mul, AtLeastTwo, mean: false;
    /// The mean `(x₀ + x₁ + …) · (1/n)`, element-wise, of two or more inputs
    /// of one shape (Keras's `Average`, which divides by `n`: the two may
    /// differ in the last bit when `n` is not a power of two).
    Average => Add, AtLeastTwo, mean: true;
    /// The element-wise largest of two or more inputs of one shape (Keras's
    /// `Maximum`): `maximum(maximum(x₀, x₁), x₂)…` with
    /// [`Var::maximum`]'s gradient, which goes to the larger operand of each
    /// step and is split half and half on a tie; so where three inputs tie,
    /// the first two get a quarter of it each and the last a half.
    Maximum => Maximum, AtLeastTwo, mean: false;
    /// The element-wise smallest of two or more inputs of one shape (Keras's
    /// `Minimum`): `minimum(minimum(x₀, x₁), x₂)…`, with ties split as for
    /// [`Maximum`].
    Minimum => Minimum, AtLeastTwo, mean: false;
}

/// Joins one or more inputs along an axis (Keras's `Concatenate`); all other
/// axes must agree. Each input's gradient is its slice of the output's.
pub struct Concatenate<T: Float> {
    /// The axis, counting the batch axis as Keras does: `-1` (the default)
    /// is the last, negative axes count from the end, and the batch axis
    /// (`0`) cannot be joined along.
    pub axis: isize,
    y: ArrayD<T>,
    grads: Vec<ArrayD<T>>,
    /// Inputs of the last `backward`.
    backward_inputs: usize,
}

impl<T: Float> Concatenate<T> {
    /// Joins along `axis` (Keras's: the batch axis is axis 0).
    pub fn new(axis: isize) -> Self {
        Concatenate {
            axis,
            y: empty(),
            grads: Vec::new(),
            backward_inputs: 0,
        }
    }

    /// The axis to join `shapes` along, counted in those shapes (which
    /// include the batch axis when `batched`), or why they cannot be joined.
    fn join_axis<'s, I>(&self, shapes: I, batched: bool) -> Result<usize, String>
    where
        I: IntoIterator<Item = &'s [usize]> + Clone,
    {
        let axis = self.axis;
        let mut it = shapes.clone().into_iter();
        let Some(first) = it.next() else {
            return Err("Concatenate takes at least 1 input, got 0".into());
        };
        if !it.all(|s| s.len() == first.len()) {
            return Err(format!(
                "Concatenate needs inputs of one rank, got {}",
                list(shapes)
            ));
        }
        // Axes with the batch axis, as Keras counts them.
        let ndim = first.len() as isize + isize::from(!batched);
        let resolved = if axis < 0 { axis + ndim } else { axis };
        if resolved == 0 {
            return Err(format!(
                "Concatenate: axis {axis} is the batch axis, which cannot be joined along (inputs {})",
                list(shapes)
            ));
        }
        if !(1..ndim).contains(&resolved) {
            return Err(format!(
                "Concatenate: axis {axis} is out of range for inputs {} ({ndim} axes with the batch axis)",
                list(shapes)
            ));
        }
        let a = resolved as usize - usize::from(!batched);
        let agree = |s: &[usize]| (0..s.len()).all(|i| i == a || s[i] == first[i]);
        if !shapes.clone().into_iter().all(agree) {
            return Err(format!(
                "Concatenate(axis = {axis}) needs inputs that agree on every axis but the one joined, got {}",
                list(shapes)
            ));
        }
        Ok(a)
    }

    /// [`Concatenate::join_axis`] of arrays (batch axis first), panicking.
    fn batch_axis<'s>(&self, shapes: impl IntoIterator<Item = &'s [usize]> + Clone) -> usize {
        match self.join_axis(shapes, true) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Keras's default: the last axis.
impl<T: Float> Default for Concatenate<T> {
    fn default() -> Self {
        Self::new(-1)
    }
}

impl<T: Float> Share for Concatenate<T> {
    fn share(&self) -> Self {
        Self::new(self.axis)
    }
}

/// `xs[0]`'s shape with the lengths along `axis` summed.
fn joined_shape<'s>(
    shapes: impl IntoIterator<Item = &'s [usize]>,
    axis: usize,
) -> SmallVec<[usize; 6]> {
    let mut joined = SmallVec::<[usize; 6]>::new();
    for s in shapes {
        if joined.is_empty() {
            joined.extend_from_slice(s);
        } else {
            joined[axis] += s[axis];
        }
    }
    joined
}

impl<T: Float> Merge<T> for Concatenate<T> {
    fn type_name(&self) -> &'static str {
        "Concatenate"
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let a = self.join_axis(inputs.iter().copied(), false)?;
        Ok(joined_shape(inputs.iter().copied(), a).to_vec())
    }

    fn forward(&self, xs: &[&Var<T>]) -> Var<T> {
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape()).collect();
        let a = self.batch_axis(shapes.iter().map(Vec::as_slice));
        Var::concat(xs, a)
    }

    fn forward_train(&mut self, xs: &[ArrayViewD<'_, T>]) -> ArrayViewD<'_, T> {
        let a = self.batch_axis(xs.iter().map(|x| x.shape()));
        ensure_shape(&mut self.y, &joined_shape(xs.iter().map(|x| x.shape()), a));
        concat_into(xs, a, self.y.view_mut());
        self.y.view()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.y.view()
    }

    fn backward(&mut self, xs: &[ArrayViewD<'_, T>], dy: ArrayViewD<'_, T>) {
        let a = self.batch_axis(xs.iter().map(|x| x.shape()));
        let joined = joined_shape(xs.iter().map(|x| x.shape()), a);
        assert!(
            dy.shape() == &joined[..],
            "Concatenate: output gradient of shape {:?} for inputs {} (joined: {:?})",
            dy.shape(),
            list(xs.iter().map(|x| x.shape())),
            &joined[..]
        );
        let n = xs.len();
        ensure_buffers(&mut self.grads, n, |i| xs[i].shape().into());
        concat_backward_into(dy, a, self.grads[..n].iter_mut().map(|g| g.view_mut()));
        self.backward_inputs = n;
    }

    fn input_grad(&self, i: usize) -> ArrayViewD<'_, T> {
        nth_grad("Concatenate", &self.grads, self.backward_inputs, i)
    }

    fn predict(&self, xs: &[ArrayViewD<'_, T>]) -> ArrayD<T> {
        let a = self.batch_axis(xs.iter().map(|x| x.shape()));
        concat(xs, a)
    }
}
