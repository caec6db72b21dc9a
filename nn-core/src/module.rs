//! [`Module`]: anything with named parameters, named buffers and a train/eval
//! mode — every layer, every `sequential!` model, and the structs
//! `#[derive(Module)]` builds from them — so parts nest inside each other
//! and the rest of the framework (optimizers, checkpoints, `fit`) takes any
//! of them.

use std::path::Path;

use crate::io::{self, IoError};
use crate::layers::Layer;
use crate::tape::Param;
use crate::{Float, Parameters};

/// Named parameters and buffers and a train/eval mode, as PyTorch's
/// `nn.Module` has them.
///
/// Every [`Layer`] is a `Module`. For a struct of parts, derive it:
///
/// ```
/// use nn_core::module::Module;
/// use nn_core::{Param, Parameters};
/// use ndarray::array;
///
/// /// `Module` by hand, as `#[derive(Module)]` in the `nn` crate writes it.
/// struct Scale { gain: Param<f64> }
///
/// impl Module<f64> for Scale {
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
///         f("gain", &self.gain);
///     }
/// }
///
/// let s = Scale { gain: Param::new(array![1.0, 2.0].into_dyn()) };
/// let mut names = Vec::new();
/// s.visit_params(&mut |n, _| names.push(n.to_string()));
/// assert_eq!(names, ["gain"]);
/// ```
pub trait Module<T: Float> {
    /// Calls `f` with every parameter and its name relative to this module
    /// (`conv.weight`, `blocks.0.bias`).
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>));

    /// Calls `f` with every buffer (state saved with the parameters but never
    /// trained: BatchNorm's running statistics) and its relative name.
    fn visit_buffers(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}

    /// Switches between training (dropout active, batch statistics) and
    /// evaluation.
    fn set_training(&mut self, _training: bool) {}

    /// Restarts the random draws (dropout masks) of every part from `seed`
    /// (see [`Layer::reseed`]).
    fn reseed(&self, _seed: u64) {}

    /// Parameters and buffers, each part's parameters then its buffers: what
    /// PyTorch's `state_dict` holds.
    fn named_state(&self) -> Vec<(String, Param<T>)>
    where
        Self: Sized,
    {
        io::collect_state(&AsParameters(self))
    }

    /// Saves [`Module::named_state`] as safetensors (atomically), under the
    /// same names and layouts as the equivalent PyTorch module's `state_dict`.
    fn save(&self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::save_params(path.as_ref(), &self.named_state())
    }

    /// Loads what [`Module::save`] wrote (or a PyTorch `state_dict` saved with
    /// `safetensors.torch.save_file`) by name, checking every name, shape and
    /// dtype first (a float of another width is converted, as PyTorch's
    /// `load_state_dict` does); on error nothing is changed.
    fn load(&mut self, path: impl AsRef<Path>) -> Result<(), IoError>
    where
        Self: Sized,
    {
        io::load_params(path.as_ref(), &self.named_state())
    }
}

/// A module seen as [`Parameters`], for the I/O helpers.
struct AsParameters<'a, M>(&'a M);

impl<T: Float, M: Module<T>> Parameters<T> for AsParameters<'_, M> {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.0.visit_params(f)
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        self.0.visit_buffers(f)
    }
}

impl<T: Float, L: Layer<T>> Module<T> for L {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        Layer::visit_params(self, f)
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        Layer::visit_buffers(self, f)
    }
    fn set_training(&mut self, training: bool) {
        Layer::set_training(self, training)
    }
    fn reseed(&self, seed: u64) {
        Layer::reseed(self, seed)
    }
}

/// Visits `part`'s parameters under `prefix` (`prefix.name`): what
/// `#[derive(Module)]` calls for each field.
pub fn visit_params_under<T: Float, M: Module<T> + ?Sized>(
    part: &M,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    part.visit_params(&mut |name, p| f(&join(prefix, name), p));
}

/// Visits `part`'s buffers under `prefix`.
pub fn visit_buffers_under<T: Float, M: Module<T> + ?Sized>(
    part: &M,
    prefix: &str,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    part.visit_buffers(&mut |name, p| f(&join(prefix, name), p));
}

/// `prefix.name` as PyTorch joins module paths (`prefix` alone for an empty
/// name, `name` alone for an empty prefix).
fn join(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}.{name}"),
    }
}

/// A list of modules, named by index (`blocks.0.weight`) like PyTorch's
/// `nn.ModuleList`.
pub fn visit_list_params<T: Float, M: Module<T>>(
    parts: &[M],
    prefix: &str,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    for (i, part) in parts.iter().enumerate() {
        visit_params_under(part, &join(prefix, &i.to_string()), f);
    }
}

/// The buffers of a list of modules, named by index.
pub fn visit_list_buffers<T: Float, M: Module<T>>(
    parts: &[M],
    prefix: &str,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    for (i, part) in parts.iter().enumerate() {
        visit_buffers_under(part, &join(prefix, &i.to_string()), f);
    }
}
