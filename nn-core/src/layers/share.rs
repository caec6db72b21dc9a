//! [`Share`]: one layer applied at several places of a graph.

/// A layer that can be applied at several places of one graph (Keras's shared
/// layers, a siamese tower): each place holds its own instance, made by
/// [`Share::share`], and all instances train one set of parameters.
///
/// On the static path every application must keep what its own backward
/// needs (the input's activation, a dropout mask, a convolution's im2col
/// matrices), so one instance cannot serve two places; the instances share
/// the parameters and buffers instead, and each backward adds its gradient
/// into the same [`Param::grad`](crate::Param::grad), as the tape does when
/// one layer is applied twice. A shared `BatchNorm` updates its running
/// statistics once per application, as in Keras; a shared `Dropout` draws a
/// mask of its own at each place.
///
/// ```
/// use nn_core::activation::Tanh;
/// use nn_core::layers::{Dense, Layer, Share};
/// use nn_core::ndarray::ArrayD;
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
///
/// let mut left: Dense<f64, 2, 2, Tanh> = Dense::init(&mut StdRng::seed_from_u64(0));
/// let mut right = left.share();
/// assert!(right.weight.same_as(&left.weight));
/// let (x1, x2) = (ArrayD::from_elem(vec![1, 2], 0.5), ArrayD::from_elem(vec![1, 2], -1.0));
/// let dy = ArrayD::from_elem(vec![1, 2], 1.0);
/// // Both forwards before either backward: each instance kept its own output.
/// left.forward_train(x1.view());
/// right.forward_train(x2.view());
/// left.backward(x1.view(), dy.view(), false);
/// right.backward(x2.view(), dy.view(), false);
/// // `weight.grad()` now holds the sum of both applications' gradients.
/// assert!(left.weight.grad().is_some());
/// ```
pub trait Share {
    /// Another instance holding the same parameters and buffers (the `Param`s are
    /// shared handles: `Param::clone` shares its value and gradient through an Arc),
    /// with caches and workspaces of its own, so each application keeps what its
    /// backward pass needs while gradients from every application add into the same
    /// parameters.
    fn share(&self) -> Self;
}
