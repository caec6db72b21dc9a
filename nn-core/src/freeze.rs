//! Freezing every parameter of a model or a layer: see [`freeze()`].

use crate::layers::Layer;
use crate::{Float, Param, Parameters};

/// Freezes every parameter of `params` (a model, or `(name, param)` pairs),
/// to train the rest of a model while they stay fixed.
///
/// A frozen parameter ([`Param::set_trainable`]`(false)`, PyTorch's
/// `requires_grad_(False)`, Keras's `trainable = False`) keeps its value
/// through training: the tape records it as a constant, layers skip its
/// gradient on the static path (Dense and Conv2d skip the weight-gradient
/// product), optimizers and gradient clipping pass it over, and summaries
/// count it under "Non-trainable params". Its gradient stays `None`.
/// [`freeze_layer`] does the same for one layer, [`unfreeze`] and
/// [`unfreeze_layer`] undo it.
///
/// Buffers (running statistics) are not parameters and are untouched: a
/// frozen BatchNorm in training mode still updates them, as in PyTorch; put
/// it in evaluation mode as well to fix them.
///
/// ```
/// use nn_core::activation::Linear;
/// use nn_core::init::Initializer;
/// use nn_core::layers::{Dense, Layer};
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let layer = Dense::<f32, 4, 3>::new(
///     Linear, true, Initializer::GlorotUniform, Initializer::Zeros, &mut rng,
/// );
/// nn_core::freeze_layer(&layer);
/// assert_eq!((layer.param_count(), layer.non_trainable_count()), (0, 15));
/// nn_core::unfreeze_layer(&layer);
/// assert_eq!((layer.param_count(), layer.non_trainable_count()), (15, 0));
///
/// let params = vec![("w", layer.weight.clone())];
/// nn_core::freeze(&params);
/// assert!(!layer.weight.is_trainable());
/// ```
pub fn freeze<T: Float, P: Parameters<T> + ?Sized>(params: &P) {
    params.visit_params(&mut |_, p| p.set_trainable(false));
}

/// Unfreezes every parameter of `params` (see [`freeze()`]): training updates
/// them again from the next step on.
pub fn unfreeze<T: Float, P: Parameters<T> + ?Sized>(params: &P) {
    params.visit_params(&mut |_, p| p.set_trainable(true));
}

/// Freezes every parameter of one layer (a field of a `sequential!` model,
/// say): see [`freeze()`].
pub fn freeze_layer<T: Float, L: Layer<T> + ?Sized>(layer: &L) {
    layer.visit_params(&mut |_, p: &Param<T>| p.set_trainable(false));
}

/// Unfreezes every parameter of one layer (see [`freeze()`]).
pub fn unfreeze_layer<T: Float, L: Layer<T> + ?Sized>(layer: &L) {
    layer.visit_params(&mut |_, p: &Param<T>| p.set_trainable(true));
}
