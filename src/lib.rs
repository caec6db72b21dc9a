//! `nn`: declare a model in a few lines, train it on MNIST in seconds, and
//! write research code whose gradients agree with PyTorch's.
//!
//! This facade re-exports the workspace's crates; most programs need only
//! `use nn::prelude::*;`.
//!
//! ```
//! use nn::prelude::*;
//! use nn::ndarray::array;
//!
//! let tape = Tape::<f64>::new();
//! let w = Param::new(array![[0.5, -0.2], [0.1, 0.3]]);
//! let x = tape.constant(array![[1.0, 2.0]]);
//! let logits = x.linear(&tape.param(&w), None);
//! let loss = cross_entropy(&logits, &[1], Reduction::Mean);
//! loss.backward();
//! assert!(w.grad().is_some());
//! ```

pub use nn_core::{
    activation, gradcheck, init, io, kernels, layers, loss, model, ndarray, rand, summary, tape,
    Float, Model, Param, Tape, Var,
};
pub use nn_core::{GradcheckOptions, GradcheckReport};
pub use nn_macros::sequential;
pub use nn_optim as optim;

/// The names most programs use.
pub mod prelude {
    pub use nn_core::activation::{Activation, Pointwise};
    pub use nn_core::layers::Layer;
    pub use nn_core::loss::{
        binary_cross_entropy, binary_cross_entropy_with_logits, categorical_cross_entropy,
        cross_entropy, huber, kl_divergence, mae, mse, Reduction,
    };
    pub use nn_core::loss::{sparse_categorical_cross_entropy, Loss, Target};
    pub use nn_core::{gradcheck, Float, GradcheckOptions, Model, Param, Tape, Var};
    pub use nn_macros::sequential;
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
