//! Composition: models inside models ([`Sublayer`]) and skip connections
//! ([`Residual`]).
//!
//! Every `sequential!` model is a [`Layer`] and a [`Sublayer`]: written by its
//! name inside another model (`Block`, or `block: Block`, without
//! parentheses), it is built from the outer model's RNG with
//! [`Sublayer::build`], and its shapes are checked against those around it
//! when the outer model compiles ([`check_nested`]).
//!
//! A `Residual { .. }` block in `sequential!` is a [`Residual`] around a
//! hidden `sequential!`-style model of its body: `y = x + f(x)`, or
//! `y = shortcut(x) + f(x)` with a projection shortcut. Its parameters are
//! named as those of the equivalent PyTorch module that keeps the body's
//! layers as its own attributes and the shortcut as one more
//! (torchvision's `BasicBlock`): the body's names unprefixed
//! (`res.conv2d.weight`, `res.batch_norm.running_mean`), the shortcut's under
//! `shortcut.` (`res.shortcut.conv2d.weight`).

use std::sync::OnceLock;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};
use rand::Rng;

use super::{activate, activate_var, activated_shape, Layer, Share, Workspace};
use crate::activation::{ActivationFn, Linear};
use crate::kernels::arith::Add;
use crate::kernels::binary::{forward_into, forward_relu_into};
use crate::summary::SummaryRow;
use crate::tape::{Param, Var};
use crate::Float;

/// A layer that `sequential!` builds by itself and whose shapes are known at
/// compile time: every `sequential!` model (of the same element type)
/// implements it, which is what lets one be written by name inside another.
///
/// The outer model checks, when it compiles, that [`Sublayer::INPUT_SHAPE`]
/// is the shape arriving at the layer and [`Sublayer::OUTPUT_SHAPE`] the one
/// it declares after it (`-> (..)`, or the same shape); its summary shows the
/// layer as one row, expanded into [`Sublayer::summary_rows`] on request.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `sequential!` model of `{T}`, so it cannot be written without arguments",
    label = "a layer written without `(..)` is a nested `sequential!` model",
    note = "your own layer is written as a call of its constructor: `{Self}(..)` calls `{Self}::new(..)`",
    note = "a nested model must have the outer model's element type (`#[dtype(..)]`)"
)]
pub trait Sublayer<T: Float>: Layer<T> + Sized {
    /// The model's name as declared (`Block`).
    const NAME: &'static str;
    /// One sample's input shape (batch axis excluded).
    const INPUT_SHAPE: &'static [usize];
    /// One sample's output shape.
    const OUTPUT_SHAPE: &'static [usize];
    /// Trainable parameters when known at compile time, `None` when the model
    /// holds layers of your own (counted at run time).
    const PARAM_COUNT: Option<usize>;

    /// A new instance, initialized from `rng` (what the outer model's
    /// constructor calls).
    fn build<R: Rng + ?Sized>(rng: &mut R) -> Self;

    /// One summary row per layer; a nested model's row holds its layers' as
    /// [`SummaryRow::children`].
    fn summary_rows(&self) -> Vec<SummaryRow>;
}

/// `y = x`: the shortcut of a [`Residual`] without a projection, and a layer
/// of its own (its static path copies, allocation-free once warm).
pub struct Identity<T: Float> {
    buf: Workspace<T>,
}

impl<T: Float> Default for Identity<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Identity<T> {
    /// The identity.
    pub fn new() -> Self {
        Identity {
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Share for Identity<T> {
    fn share(&self) -> Self {
        Self::new()
    }
}

impl<T: Float> Layer<T> for Identity<T> {
    fn type_name(&self) -> &'static str {
        "Identity"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        x.clone()
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.buf.output_mut(x.shape()).assign(&x);
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
        self.buf
            .input_grad(need_input_grad, x.shape(), |mut dx| dx.assign(&dy))
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        x.to_owned()
    }
}

/// A skip connection: `y = f(x) + x`, or `y = f(x) + shortcut(x)` with a
/// projection shortcut (a 1×1 convolution, say) where `f` changes the shape,
/// optionally followed by an activation, `y = relu(f(x) + x)` as in
/// torchvision's `BasicBlock` ([`Residual::with_activation`];
/// `Residual(activation = relu) { .. }` in `sequential!`).
///
/// Both paths: the tape records `f(x) + x` (and the activation); the static path adds into its own
/// buffers (allocation-free once warm), and its backward gives the input the
/// sum of the gradients through the body and through the shortcut. Plain
/// `relu` is applied in the addition's own pass, with the bits of a separate
/// `ReLU` layer.
///
/// ```
/// use nn_core::activation::{tanh, Tanh};
/// use nn_core::init::Initializer;
/// use nn_core::layers::{Dense, Layer, Residual};
/// use nn_core::ndarray::ArrayD;
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let body = Dense::<f64, 3, 3, Tanh>::new(
///     tanh, true, Initializer::GlorotUniform, Initializer::Zeros, &mut rng,
/// );
/// let mut res = Residual::new(body);
/// let x = ArrayD::from_elem(vec![2, 3], 0.5);
/// let fx = res.body.predict(x.view());
/// assert_eq!(res.forward_train(x.view()), &fx + &x);
/// assert_eq!(res.predict(x.view()), &fx + &x);
///
/// let mut res = res.with_activation(nn_core::activation::relu);
/// let relu = (&fx + &x).mapv(|v: f64| v.max(0.0));
/// assert_eq!(res.forward_train(x.view()), relu);
/// ```
pub struct Residual<T: Float, B, S = Identity<T>, A = Linear> {
    /// `f`, the residual branch.
    pub body: B,
    /// The projection, if any (`None`: the identity).
    pub shortcut: Option<S>,
    /// Applied to the sum (the identity, [`Linear`], by default).
    pub activation: A,
    buf: Workspace<T>,
    /// `shortcut.`-prefixed names, built on the first visit so later ones
    /// allocate nothing.
    param_names: OnceLock<Vec<String>>,
    buffer_names: OnceLock<Vec<String>>,
}

impl<T: Float, B: Layer<T>> Residual<T, B, Identity<T>> {
    /// `y = body(x) + x`.
    pub fn new(body: B) -> Self {
        Self::build(body, None)
    }
}

impl<T: Float, B: Layer<T>, S: Layer<T>> Residual<T, B, S> {
    /// `y = body(x) + shortcut(x)`.
    pub fn with_shortcut(body: B, shortcut: S) -> Self {
        Self::build(body, Some(shortcut))
    }

    fn build(body: B, shortcut: Option<S>) -> Self {
        Residual {
            body,
            shortcut,
            activation: Linear,
            buf: Workspace::new(),
            param_names: OnceLock::new(),
            buffer_names: OnceLock::new(),
        }
    }
}

impl<T: Float, B: Layer<T>, S: Layer<T>, A: ActivationFn> Residual<T, B, S, A> {
    /// The same block followed by `activation`: `y = activation(f(x) + x)`.
    pub fn with_activation<A2: ActivationFn>(self, activation: A2) -> Residual<T, B, S, A2> {
        Residual {
            body: self.body,
            shortcut: self.shortcut,
            activation,
            buf: Workspace::new(),
            param_names: self.param_names,
            buffer_names: self.buffer_names,
        }
    }

    /// Calls `f` with each of the shortcut's parameters (`params`) or buffers
    /// under its `shortcut.`-prefixed name, cached in `names`.
    fn visit_shortcut(
        &self,
        names: &OnceLock<Vec<String>>,
        visit: fn(&S, Visitor<'_, T>),
        f: &mut dyn FnMut(&str, &Param<T>),
    ) {
        let Some(s) = &self.shortcut else {
            return;
        };
        let names = names.get_or_init(|| {
            let mut names = Vec::new();
            visit(s, &mut |n, _| names.push(format!("shortcut.{n}")));
            names
        });
        let mut i = 0;
        visit(s, &mut |_, p| {
            f(&names[i], p);
            i += 1;
        });
    }
}

impl<T: Float, B: Share, S: Share, A: ActivationFn> Share for Residual<T, B, S, A> {
    /// Shares the body's and the shortcut's parameters and buffers (through
    /// their own [`Share`]).
    fn share(&self) -> Self {
        Residual {
            body: self.body.share(),
            shortcut: self.shortcut.as_ref().map(Share::share),
            activation: self.activation.clone(),
            buf: Workspace::new(),
            param_names: OnceLock::new(),
            buffer_names: OnceLock::new(),
        }
    }
}

/// What [`Layer::visit_params`] and [`Layer::visit_buffers`] call.
type Visitor<'a, T> = &'a mut dyn FnMut(&str, &Param<T>);

/// Panics unless the two branches of a residual block agree in shape.
fn check_branches(body: &[usize], other: &[usize], shortcut: bool) {
    assert!(
        body == other,
        "Residual: the body outputs {body:?} but the {} {other:?}",
        if shortcut {
            "shortcut outputs"
        } else {
            "input (the identity shortcut) is"
        }
    );
}

impl<T: Float, B: Layer<T>, S: Layer<T>, A: ActivationFn> Layer<T> for Residual<T, B, S, A> {
    fn type_name(&self) -> &'static str {
        "Residual"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let body = self.body.output_shape(input)?;
        let other = match &self.shortcut {
            Some(s) => s.output_shape(input)?,
            None => input.to_vec(),
        };
        if body == other {
            activated_shape(&self.activation, &body)
        } else {
            Err(format!(
                "Residual: the body maps {input:?} to {body:?} but the shortcut to {other:?}"
            ))
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let fx = self.body.forward(x);
        let sx = match &self.shortcut {
            Some(s) => s.forward(x),
            None => x.clone(),
        };
        check_branches(&fx.shape(), &sx.shape(), self.shortcut.is_some());
        activate_var(&self.activation, &fx + &sx)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let projected = self.shortcut.is_some();
        let fx = self.body.forward_train(x.view());
        let sx = match &mut self.shortcut {
            Some(s) => s.forward_train(x.view()),
            None => x.view(),
        };
        check_branches(fx.shape(), sx.shape(), projected);
        if self.activation.is_plain_relu() {
            forward_relu_into(&Add, fx, sx.view(), self.buf.output_mut(sx.shape()));
            return self.buf.output();
        }
        let sum = self.buf.pre_activation_mut(&self.activation, sx.shape());
        forward_into(&Add, fx, sx.view(), sum);
        self.buf.activate(&self.activation)
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
        let (body, shortcut) = (&mut self.body, &mut self.shortcut);
        // `dz`, the sum's gradient, goes back through both branches.
        let branches = |dz: ArrayViewD<'_, T>, dx: Option<ArrayViewMutD<'_, T>>| {
            let dfx = body.backward(x.view(), dz.view(), need_input_grad);
            let dsx = match shortcut {
                Some(s) => s.backward(x.view(), dz.view(), need_input_grad),
                None => dz,
            };
            if let Some(dx) = dx {
                forward_into(&Add, dfx, dsx, dx);
            }
        };
        let (activation, shape) = (&self.activation, x.shape());
        if activation.is_plain_relu() {
            self.buf
                .relu_output_input_grad(activation, dy, need_input_grad, shape, branches)
        } else {
            self.buf
                .activated_input_grad(activation, dy, need_input_grad, shape, branches)
        }
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let mut y = self.body.predict(x.view());
        match &self.shortcut {
            Some(s) => {
                let sx = s.predict(x.view());
                check_branches(y.shape(), sx.shape(), true);
                y += &sx;
            }
            None => {
                check_branches(y.shape(), x.shape(), false);
                y += &x;
            }
        }
        activate(&self.activation, y)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.body.visit_params(f);
        self.visit_shortcut(&self.param_names, |s, f| s.visit_params(f), f);
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.body.visit_buffers(f);
        self.visit_shortcut(&self.buffer_names, |s, f| s.visit_buffers(f), f);
    }

    fn reseed(&self, seed: u64) {
        self.body.reseed(super::mix_seed(seed, 0));
        if let Some(s) = &self.shortcut {
            s.reseed(super::mix_seed(seed, 1));
        }
    }

    fn set_training(&mut self, training: bool) {
        self.body.set_training(training);
        if let Some(s) = &mut self.shortcut {
            s.set_training(training);
        }
    }
}

// Compile-time checks the `sequential!` macro emits for nested models. A
// constant's panic prints one `&str`, so messages are composed in a buffer.

/// Whether two shapes are equal, in a constant.
pub const fn same_shape(a: &[usize], b: &[usize]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A message composed in a constant (truncated at 1 KiB).
struct Message {
    bytes: [u8; 1024],
    len: usize,
}

impl Message {
    const fn new() -> Self {
        Message {
            bytes: [0; 1024],
            len: 0,
        }
    }

    const fn str(mut self, s: &str) -> Self {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && self.len < self.bytes.len() {
            self.bytes[self.len] = b[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    const fn number(mut self, n: usize) -> Self {
        let mut digits = [0u8; 20];
        let (mut k, mut n) = (0, n);
        loop {
            digits[k] = b'0' + (n % 10) as u8;
            k += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while k > 0 && self.len < self.bytes.len() {
            k -= 1;
            self.bytes[self.len] = digits[k];
            self.len += 1;
        }
        self
    }

    /// `64, 8, 8`.
    const fn dims(mut self, dims: &[usize]) -> Self {
        let mut i = 0;
        while i < dims.len() {
            if i > 0 {
                self = self.str(", ");
            }
            self = self.number(dims[i]);
            i += 1;
        }
        self
    }

    /// `(None, 64, 8, 8)`, as Keras prints a shape.
    const fn shape(self, dims: &[usize]) -> Self {
        let mut s = self.str("(None");
        if !dims.is_empty() {
            s = s.str(", ").dims(dims);
        }
        s.str(")")
    }

    const fn as_str(&self) -> &str {
        let (b, _) = self.bytes.split_at(self.len);
        match std::str::from_utf8(b) {
            Ok(s) => s,
            // Truncated inside a character: drop the message's tail.
            Err(e) => match std::str::from_utf8(b.split_at(e.valid_up_to()).0) {
                Ok(s) => s,
                Err(_) => "",
            },
        }
    }
}

/// Fails compilation unless the nested model `L` takes the shape `arriving`
/// at it and outputs the shape the outer model declares after it,
/// `declared`; `label` names the layer (`Net: layer `block` (Block)`), and
/// the message both shapes. An empty shape is the stand-in `sequential!`
/// emits beside a compile error, and is not checked.
pub const fn check_nested<T: Float, L: Sublayer<T>>(
    arriving: &[usize],
    declared: &[usize],
    label: &str,
) {
    if L::INPUT_SHAPE.is_empty() || L::OUTPUT_SHAPE.is_empty() {
        return;
    }
    if !same_shape(L::INPUT_SHAPE, arriving) {
        let m = Message::new()
            .str(label)
            .str(" receives ")
            .shape(arriving)
            .str(", but `")
            .str(L::NAME)
            .str("` takes ")
            .shape(L::INPUT_SHAPE);
        panic!("{}", m.as_str());
    }
    if !same_shape(L::OUTPUT_SHAPE, declared) {
        let m = Message::new()
            .str(label)
            .str(" outputs ")
            .shape(L::OUTPUT_SHAPE)
            .str(", but the model declares ")
            .shape(declared)
            .str(": write `-> (")
            .dims(L::OUTPUT_SHAPE)
            .str(")` after it");
        panic!("{}", m.as_str());
    }
}

/// `known` plus the nested models' counts, `None` if one of them is unknown.
pub const fn param_total(known: usize, nested: &[Option<usize>]) -> Option<usize> {
    let (mut total, mut i) = (known, 0);
    while i < nested.len() {
        match nested[i] {
            Some(n) => total += n,
            None => return None,
        }
        i += 1;
    }
    Some(total)
}

/// A model's `PARAM_COUNT`: `count`, or a compile error where it is used if a
/// nested model holds layers of your own.
pub const fn known_param_count(count: Option<usize>) -> usize {
    match count {
        Some(n) => n,
        None => panic!(
            "PARAM_COUNT: a nested model holds layers of your own, whose parameters are counted at run time: use `param_count()`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_print_shapes_like_keras() {
        let m = Message::new()
            .str("a ")
            .shape(&[1, 28, 28])
            .str(" ")
            .dims(&[10, 0]);
        assert_eq!(m.as_str(), "a (None, 1, 28, 28) 10, 0");
        assert!(same_shape(&[3, 4], &[3, 4]));
        assert!(!same_shape(&[3, 4], &[3]));
        assert_eq!(param_total(3, &[Some(4), Some(5)]), Some(12));
        assert_eq!(param_total(3, &[Some(4), None]), None);
    }

    #[test]
    fn a_long_message_is_truncated_on_a_character_boundary() {
        let mut m = Message::new();
        for _ in 0..600 {
            m = m.str("é");
        }
        assert_eq!(m.as_str().chars().count(), 512);
    }
}
