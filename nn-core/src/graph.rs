//! [`GraphModel`]: a model of several inputs and outputs, as `functional!`
//! declares (Keras's functional `Model([image, meta], [out, aux])`). A graph
//! of one input and one output is also a [`crate::Model`] and a
//! [`crate::layers::Layer`].

use std::path::Path;

use ndarray::{ArrayD, ArrayViewD};

use crate::io::{self, IoError};
use crate::model::Parameters;
use crate::summary::Summary;
use crate::{Float, Param, Var};

/// A model of several inputs and outputs, with both execution paths.
///
/// Inputs and outputs are passed in declaration order; their counts are
/// [`GraphModel::INPUTS`] and [`GraphModel::OUTPUTS`].
pub trait GraphModel<T: Float>: Parameters<T> {
    /// How many inputs the model takes.
    const INPUTS: usize;
    /// How many outputs it returns.
    const OUTPUTS: usize;
    /// The outputs' names (a `functional!` graph's `-> (..)`), for metrics.
    const OUTPUT_NAMES: &'static [&'static str];

    /// The tape path: records the graph on the inputs' tape, returns every output.
    fn forward(&self, inputs: &[&Var<T>]) -> Vec<Var<T>>;

    /// The static path's forward: keeps the inputs and computes every
    /// output into the layers' buffers (read them with [`GraphModel::output`]).
    fn forward_train(&mut self, inputs: &[ArrayViewD<'_, T>]);

    /// Output `i` of the last [`GraphModel::forward_train`].
    fn output(&self, i: usize) -> ArrayViewD<'_, T>;

    /// Whether output `i` is a softmax whose logits' gradient
    /// [`GraphModel::backward`] can take (`from_logits`), as
    /// [`crate::layers::Layer::softmax_output`].
    fn softmax_output(&self, i: usize) -> bool;

    /// The static path's backward from every output's gradient (the logits'
    /// where `from_logits[i]`); parameter gradients accumulate.
    fn backward(&mut self, grads: &[ArrayViewD<'_, T>], from_logits: &[bool]);

    /// Inference without tape or caches: every output.
    fn predict(&self, inputs: &[ArrayViewD<'_, T>]) -> Vec<ArrayD<T>>;

    /// Training (dropout active, batch statistics) or evaluation mode.
    fn set_training(&mut self, training: bool);

    /// Whether the model is in training mode.
    fn is_training(&self) -> bool;

    /// Restarts the random draws (dropout masks) from `seed` (see
    /// [`Layer::reseed`](crate::layers::Layer::reseed)).
    fn reseed(&self, _seed: u64) {}

    /// Keras's `model.summary()` with its "Connected to" column.
    fn summary(&self) -> Summary;

    /// Number of trainable scalars (frozen parameters are not; a shared
    /// weight counts once).
    fn param_count(&self) -> usize {
        crate::model::count_distinct(&mut |f| self.visit_params(f), true)
    }

    /// Parameters and buffers by name, as PyTorch's `state_dict`.
    fn named_state(&self) -> Vec<(String, Param<T>)>
    where
        Self: Sized,
    {
        io::collect_state(self)
    }

    /// Saves the parameters and buffers as safetensors (atomically).
    fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::save_params(path.as_ref(), &self.named_state())
    }

    /// Loads what [`GraphModel::save`] wrote, checking every name, shape and
    /// dtype first; on error nothing is changed.
    fn load(&mut self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::load_params(path.as_ref(), &self.named_state())
    }
}

/// `items` as an array of `N`, for a model taking `N` of them.
///
/// # Panics
/// If there are not `N`, naming the model and both counts.
#[track_caller]
pub fn exactly<X: Clone, const N: usize>(model: &str, what: &str, items: &[X]) -> [X; N] {
    assert!(
        items.len() == N,
        "{model}: expected {N} {what}, got {}",
        items.len()
    );
    std::array::from_fn(|i| items[i].clone())
}

/// Panics for output `i` of a model with `count` outputs.
#[track_caller]
pub fn no_such_output(model: &str, i: usize, count: usize) -> ! {
    panic!("{model}: no output {i}; it has {count}")
}
