//! The `Model` trait: what every `sequential!` model offers, so training
//! loops and optimizers work on any of them.

use std::path::Path;

use ndarray::{ArrayD, ArrayViewD};

use crate::io::{self, IoError};
use crate::loss::{Loss, Target};
use crate::summary::Summary;
use crate::tape::{Param, Var};
use crate::Float;

/// Anything that holds named parameters: models, and the lists of `(name,
/// param)` pairs research code keeps. Optimizers and checkpoints work on it.
pub trait Parameters<T: Float> {
    /// Calls `f` with every parameter and its stable name (`hidden.weight`).
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>));

    /// Calls `f` with every buffer and its stable name (`bn.running_mean`):
    /// state saved and loaded with the parameters but never trained, as
    /// PyTorch's `named_buffers`. Optimizers and gradient clipping see only
    /// [`Parameters::visit_params`].
    fn visit_buffers(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}
}

impl<T: Float, S: AsRef<str>> Parameters<T> for [(S, Param<T>)] {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        for (name, p) in self {
            f(name.as_ref(), p);
        }
    }
}

impl<T: Float, S: AsRef<str>> Parameters<T> for Vec<(S, Param<T>)> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.as_slice().visit_params(f);
    }
}

/// Calls `f` once per distinct parameter of `params`, under the first name
/// it is reached by: a parameter held twice (a layer shared with
/// [`crate::layers::Share`], one `Param` in two fields) is one parameter, as
/// PyTorch's `parameters()` leaves out duplicates. Optimizers and gradient
/// clipping visit through it, so a shared weight is stepped, and counted in
/// a norm, once.
pub fn visit_distinct_params<T: Float>(
    params: &dyn Parameters<T>,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    visit_distinct(&mut |g| params.visit_params(g), f)
}

/// What a visit of parameters calls with each name and parameter.
pub(crate) type Visitor<'a, T> = dyn FnMut(&str, &Param<T>) + 'a;

/// [`visit_distinct_params`] over any visit of parameters (a layer's or a
/// graph's, which are not [`Parameters`] themselves).
pub(crate) fn visit_distinct<T: Float>(
    visit_all: &mut dyn FnMut(&mut Visitor<'_, T>),
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    thread_local! {
        // The addresses visited in this call, reused from step to step.
        static SEEN: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut visit = |seen: &mut Vec<usize>| {
        seen.clear();
        visit_all(&mut |name, p| {
            let address = p.storage_address();
            if !seen.contains(&address) {
                seen.push(address);
                f(name, p);
            }
        });
        seen.clear();
    };
    SEEN.with(|cell| match cell.try_borrow_mut() {
        Ok(mut seen) => visit(&mut seen),
        // Called from inside another visit on this thread.
        Err(_) => visit(&mut Vec::new()),
    });
}

/// The scalars of the distinct parameters `visit_all` reaches that are
/// trainable (`trainable`) or frozen (`!trainable`): a weight two layers
/// share counts once, as in Keras's `count_params()` and PyTorch's
/// `sum(p.numel() for p in model.parameters())`.
pub(crate) fn count_distinct<T: Float>(
    visit_all: &mut dyn FnMut(&mut Visitor<'_, T>),
    trainable: bool,
) -> usize {
    let mut n = 0;
    visit_distinct(visit_all, &mut |_, p| {
        if p.is_trainable() == trainable {
            n += p.len()
        }
    });
    n
}

/// A trainable model with both execution paths. `sequential!` implements it.
pub trait Model<T: Float>: Parameters<T> {
    /// The tape path: records the whole model on `x`'s tape.
    fn forward(&self, x: &Var<T>) -> Var<T>;

    /// The static path's forward: runs every layer into its reused buffers and
    /// returns the output.
    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T>;

    /// The static path's backward from the gradient of the output of the last
    /// [`Model::forward_train`]; parameter gradients accumulate.
    fn backward(&mut self, grad_output: ArrayViewD<'_, T>);

    /// After [`Model::forward_train`]: the mean `loss` against `target`, with
    /// gradients accumulated into the parameters. A softmax output followed by a
    /// categorical cross-entropy uses the fused gradient `p - y`.
    fn backward_loss(&mut self, loss: Loss, target: &Target<'_, T>) -> T;

    /// [`Model::forward_train`] without keeping a copy of `x`: the backward
    /// pass that follows must be [`Model::backward_lent`] or
    /// [`Model::backward_loss_lent`], given the same `x`. The training loop
    /// holds the batch through the whole step, so copying it into the model
    /// (5 % of an `mlp` epoch) buys nothing there. The default keeps the copy.
    #[doc(hidden)]
    fn forward_train_lent(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.forward_train(x)
    }

    /// [`Model::backward`] after [`Model::forward_train_lent`] of `x`.
    #[doc(hidden)]
    fn backward_lent(&mut self, _x: ArrayViewD<'_, T>, grad_output: ArrayViewD<'_, T>) {
        self.backward(grad_output)
    }

    /// [`Model::backward_loss`] after [`Model::forward_train_lent`] of `x`.
    #[doc(hidden)]
    fn backward_loss_lent(
        &mut self,
        _x: ArrayViewD<'_, T>,
        loss: Loss,
        target: &Target<'_, T>,
    ) -> T {
        self.backward_loss(loss, target)
    }

    /// Inference without tape or caches (dropout off).
    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T>;

    /// Training mode (dropout active) or evaluation mode.
    fn set_training(&mut self, training: bool);

    /// Whether the model is in training mode.
    fn is_training(&self) -> bool;

    /// Restarts the random draws (dropout masks) from `seed` (see
    /// [`Layer::reseed`](crate::layers::Layer::reseed)).
    fn reseed(&self, _seed: u64) {}

    /// The Keras-style summary table.
    fn summary(&self) -> Summary;

    /// Switches to training mode.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Switches to evaluation mode.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Number of trainable scalars (frozen parameters are not; a shared
    /// weight counts once).
    fn param_count(&self) -> usize {
        count_distinct(&mut |f| self.visit_params(f), true)
    }

    /// Zeroes every parameter's gradient (keeping the buffers).
    fn zero_grad(&self) {
        self.visit_params(&mut |_, p| p.zero_grad());
    }

    /// `(name, parameter)` pairs in a stable order.
    fn named_params(&self) -> Vec<(String, Param<T>)> {
        io::collect_params(|f| self.visit_params(f))
    }

    /// `(name, buffer)` pairs in a stable order (BatchNorm's running statistics).
    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        io::collect_params(|f| self.visit_buffers(f))
    }

    /// Parameters and buffers together, each module's parameters then its
    /// buffers: what PyTorch's `state_dict` holds, and what [`Model::save`]
    /// writes.
    fn named_state(&self) -> Vec<(String, Param<T>)>
    where
        Self: Sized,
    {
        io::collect_state(self)
    }

    /// Saves the parameters and buffers as safetensors (atomically), under
    /// their stable names with PyTorch's layouts.
    fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::save_params(path.as_ref(), &self.named_state())
    }

    /// Loads parameters and buffers saved by [`Model::save`], checking every
    /// name, shape and dtype first (a float of another width is converted, as
    /// PyTorch's `load_state_dict` does); on error nothing is changed.
    fn load(&mut self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::load_params(path.as_ref(), &self.named_state())
    }

    /// Loads the `state_dict` of the equivalent PyTorch `nn.Sequential`, saved
    /// with `safetensors.torch.save_file`; tensors are matched by position (see
    /// [`io::load_params_positional`]).
    fn load_pytorch(&mut self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::load_params_positional(path.as_ref(), &self.named_state())
    }
}
