//! `nn`: declare a model in a few lines, train it on MNIST in seconds, and
//! write research code whose gradients agree with PyTorch's.
//!
//! This facade re-exports the workspace's crates; most programs need only
//! `use nn::prelude::*;`.
//!
//! # Declaring a model
//!
//! [`sequential!`] turns a Keras-style declaration into a typed struct:
//!
//! ```
//! use nn::prelude::*;
//!
//! sequential! {
//!     /// A perceptron for MNIST.
//!     pub struct Mlp: input(784) {
//!         hidden: Dense(128, activation = relu),
//!         Dropout(0.2),
//!         Dense(10),
//!         Activation("softmax"),
//!     }
//! }
//!
//! let model = Mlp::with_seed(0);
//! assert_eq!(Mlp::PARAM_COUNT, 101_770);
//! println!("{}", model.summary());
//! ```
//!
//! - **Input**: `input(784)` or `input(1, 28, 28)` (channels, height, width); every
//!   later shape is inferred, convolution and pooling sizes included.
//! - **Layers**: `Dense(units, activation = .., use_bias = .., kernel_init = ..,
//!   bias_init = .., input = ..)`, `Activation(..)`, `ReLU`, `Softmax`,
//!   `LeakyReLU(negative_slope)`, `ELU(alpha)`, `Dropout(rate)`, `Flatten`,
//!   `Conv2d(filters, kernel = 3, stride = 1, padding = "same" | "valid" | n,
//!   dilation = 1, activation = ..)`, `MaxPool2d(2)`, `AvgPool2d(2, stride = ..,
//!   padding = ..)`, `GlobalAvgPool`, `BatchNorm(momentum = 0.1, eps = 1e-5,
//!   activation = ..)` (`relu` runs inside batch norm's passes),
//!   `LayerNorm(eps = 1e-5)`, `Embedding(vocabulary, dim)` (first layer), and any
//!   type of yours implementing [`layers::Layer`], written with its constructor's
//!   arguments (`Scale<f32>(8, 0.5)` calls `Scale::<f32>::new(8, 0.5)`) and, if it
//!   changes the shape, its output (`MyProj(64) -> (64)`), checked when the model is built.
//!   A layer of yours written for the tape alone ([`layers::TapeLayer`]: a tape
//!   `forward` and its parameters) goes in as `Tape(MyLayer(64))`, with a static
//!   path derived from the tape ([`layers::TapeOnly`], which says what that costs).
//! - **Composition**: another `sequential!` model by its name without
//!   parentheses (`stage1: Stage`, `-> (n)` after it when it changes the shape;
//!   both shapes checked when the code compiles), and skip connections,
//!   `Residual { .. }` for `y = x + f(x)` and `Residual(shortcut = Conv2d(..)) {
//!   .. }` (or `shortcut = { .. }`, a chain) for `y = shortcut(x) + f(x)`. For
//!   anything else, `#[derive(Module)]` on a struct of parts with your own
//!   `forward` (see the README).
//! - **Activations**: every name of `keras.activations` (all 32: `relu`, `gelu`, `glu`,
//!   `leaky_relu`, `sparsemax`, `threshold`, …) wherever an activation goes —
//!   `activation = relu` on `Dense` and `Conv2d`, or a layer of its own, `Activation(relu)` —
//!   as an identifier, a string checked at compile time (`"relu"`), or a path
//!   (`nn::activation::relu`). Arguments are Keras's, always by name, and the others keep
//!   Keras's defaults: `Dense(64, activation = leaky_relu(negative_slope = 0.1))`,
//!   `Activation(relu(max_value = 6.0))`, `gelu(approximate = true)`, `softmax(axis = -1)`.
//!   Keras gives `threshold` no defaults, so both are written:
//!   `Activation(threshold(threshold = 0.5, default_value = -1.0))`. Numbers may be integer
//!   or float literals, negative too. Keras's activation layers take the same arguments,
//!   by name or in Keras's order: `ReLU(max_value = 6.0)`, `LeakyReLU(0.1)` (the layer's
//!   default slope is Keras's 0.3; the function's, 0.2), `ELU(alpha = 0.5)`,
//!   `Softmax(axis = -1)`. `glu` halves an axis, the last by default:
//!   `Dense(128, activation = glu)` outputs 64, and an odd length is a compile error; `axis`
//!   counts the batch axis, as at run time (0 is the batch, -1 the last). Your own activation
//!   is a unit struct implementing [`activation::ActivationFn`] (`activation = my::Swish`) or a
//!   struct literal (`activation = my::Swish { beta: 2.0 }`). `linear`, or no activation, is
//!   the identity.
//! - **Initializers**: Keras's names (`glorot_uniform`, the default for kernels;
//!   `zeros`, the default for biases; `he_normal`, …), `torch_default` (PyTorch's
//!   `nn.Linear`/`nn.Conv2d` default for weights and biases, to train the same model
//!   as a PyTorch script: `kernel_init = torch_default, bias_init = torch_default`),
//!   or any [`init::Initializer`].
//! - **Names**: `hidden: Dense(..)` names the field; unnamed layers get Keras's
//!   names (`dense`, `dense_1`, `dropout`, `re_lu`, …). Parameters are
//!   `hidden.weight` (`[out, in]`, PyTorch's layout) and `hidden.bias`.
//! - **Element type**: `f32`, or `#[dtype(f64)]` on the struct.
//!
//! Mistakes are compile errors underlining the offending expression: an unknown
//! activation or layer (with a suggestion), a size that disagrees with the
//! previous layer, a dropout rate outside `[0, 1)`, zero units, a missing
//! `input(..)`, duplicate names, an empty model, an argument a layer does not
//! take, an activation argument it does not take, of the wrong kind, given
//! twice, positional or missing (`threshold`), an odd length under `glu`. Every
//! kind of mistake has a compile-fail case under `nn-checks/tests/ui/`.
//!
//! The struct implements [`Model`]: the tape path [`Model::forward`] for research
//! code, the static path [`Model::forward_train`] + [`Model::backward`] /
//! [`Model::backward_loss`] (reused buffers, no tape, fused `p - y` gradient after
//! a softmax), [`Model::predict`], train/eval mode, [`Parameters::visit_params`],
//! [`Model::summary`], and safetensors [`Model::save`] / [`Model::load`] /
//! [`Model::load_pytorch`] (the `state_dict` of the equivalent `nn.Sequential`,
//! matched by position: the k-th parametrized PyTorch module's `weight`/`bias` are
//! the k-th layer's).
//!
//! # Graphs of layers
//!
//! [`functional!`] declares Keras's functional models: named inputs, a `let`
//! per layer call, merges (`Add`, `Subtract`, `Multiply`, `Average`,
//! `Maximum`, `Minimum`, `Concatenate(axis = ..)`), a layer declared once and
//! applied at several places, several outputs; shapes are checked when the
//! code compiles.
//!
//! ```
//! use nn::prelude::*;
//!
//! functional! {
//!     /// Two inputs, a shared tower, two outputs.
//!     pub struct Siamese(a: input(4), b: input(4)) -> (same, aux) {
//!         let tower = Dense(8, activation = tanh);   // declared: applied below
//!         let ha = tower(a);
//!         let hb = tower(b);                         // the same weights
//!         let d = Subtract(ha, hb);
//!         let same = Dense(1, activation = sigmoid)(d);
//!         let h = Concatenate(ha, hb);
//!         let aux = Dense(3)(h);
//!     }
//! }
//! ```
//!
//! A graph of one input and one output is a [`Model`] and a [`layers::Layer`]
//! (it trains with `fit` and nests in `sequential!`); one of several is a
//! [`GraphModel`], trained with [`train::fit_graph`] on a
//! [`train::GraphData`], one loss per output with Keras's `loss_weights`.
//!
//! # Research code on the tape
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
    activation, gradcheck, graph, init, io, kernels, layers, loss, model, module, ndarray, rand,
    summary, tape, Float, GraphModel, Model, Param, Parameters, Tape, Var,
};
pub use nn_core::{freeze, freeze_layer, unfreeze, unfreeze_layer};
pub use nn_core::{GradcheckOptions, GradcheckReport};
pub use nn_macros::{functional, sequential, Module};
pub use nn_optim as optim;

pub mod distributed;
pub mod plot;
pub mod train;

/// Threads the large kernels use: `$NN_NUM_THREADS` if set, else every core (at most 8).
pub fn threads() -> usize {
    nn_core::threads()
}
pub use nn_core::data;

/// The names most programs use.
pub mod prelude {
    pub use crate::train::{
        evaluate, fit, predict, FitOptions, OnTape, TapeModel, TrainLoss, Verbosity,
    };
    pub use nn_core::activation::{ActivationFn, Pointwise};
    pub use nn_core::data::{mnist::Mnist, Data, Dataset};
    pub use nn_core::layers::Layer;
    pub use nn_core::loss::{
        binary_cross_entropy, binary_cross_entropy_with_logits, categorical_cross_entropy,
        cross_entropy, huber, kl_divergence, mae, mse, Reduction,
    };
    pub use nn_core::loss::{sparse_categorical_cross_entropy, Loss, Target};
    pub use nn_core::{
        gradcheck, Float, GradcheckOptions, GraphModel, Model, Param, Parameters, Tape, Var,
    };
    pub use nn_macros::{functional, sequential, Module};
    pub use nn_optim::{
        Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
    };
}

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
