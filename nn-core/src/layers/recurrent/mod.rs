//! Recurrent layers: [`SimpleRnn`], [`Lstm`] and [`Gru`], one generic
//! [`Recurrent`] over a [`Cell`], with PyTorch's definitions, parameter names
//! and layouts (so weights move to and from `nn.RNN`, `nn.LSTM`, `nn.GRU`)
//! and Keras's layer names and `return_sequences`.
//!
//! The math, each cell's step and the one sequence driver, is in
//! [`crate::kernels::recurrent`]; the tape path records one node per layer
//! and direction ([`Var::recurrent`]), the static path runs the same kernels
//! in buffers the layer keeps.

mod config;
mod layer;
mod static_path;
mod tape_path;

pub use crate::kernels::recurrent::{Cell, GruCell, LstmCell, RnnCell};
pub use config::RecurrentConfig;

use rand::Rng;

use crate::init::Initializer;
use crate::tape::{Param, Var};
use crate::Float;
use static_path::Buffers;

use super::Share;

/// A recurrent layer of cell `C`: `num_layers` stacked layers, each one
/// direction or two, over batch-first sequences `[B, T, input_size]`.
///
/// Parameters per layer `l` and direction, in PyTorch's `named_parameters`
/// order and layouts (`G` gates: 1, 4 or 3): `weight_ih_l{l}` `[G·H, in]`,
/// `weight_hh_l{l}` `[G·H, H]`, `bias_ih_l{l}`, `bias_hh_l{l}` `[G·H]`, then
/// the same with the suffix `_reverse` for the backward direction.
///
/// On the tape, [`Recurrent::forward_with_state`] is PyTorch's
/// `module(x, h0)`: `(output, (h_n, c_n))`. As a [`Layer`](super::Layer)
/// (in `sequential!` models) it takes samples `[T, input_size]` and gives
/// every step's output `[T, dirs·H]` or, without
/// [`return_sequences`](RecurrentConfig::return_sequences), the last one
/// `[dirs·H]`, both directions' final hidden states side by side (Keras's
/// last output: the forward direction's at `t = T-1`, the backward's at `t = 0`).
///
/// ```
/// use nn_core::layers::{Layer, Lstm, LstmCell, RecurrentConfig};
/// use nn_core::ndarray::Array3;
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
/// use nn_core::Tape;
///
/// let config = RecurrentConfig::new(3, 8).num_layers(2).bidirectional(true);
/// let lstm: Lstm<f64> = Lstm::new(LstmCell, config, &mut StdRng::seed_from_u64(0));
///
/// let tape = Tape::new();
/// let x = tape.constant(Array3::from_elem((4, 10, 3), 0.5)); // [batch, steps, features]
/// let out = lstm.forward_with_state(&x, None, None);
/// assert_eq!(out.output.shape(), vec![4, 10, 16]); // [batch, steps, 2 * 8]
/// assert_eq!(out.h_n.shape(), vec![4, 4, 8]); // [layers * directions, batch, 8]
/// out.output.sum().backward();
///
/// let mut names = Vec::new();
/// lstm.visit_params(&mut |name, p| {
///     assert!(p.grad().is_some());
///     names.push(name.to_string())
/// });
/// assert_eq!(names[..5], ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse"]);
/// ```
pub struct Recurrent<T: Float, C: Cell> {
    cell: C,
    config: RecurrentConfig,
    /// Per run (index `layer · directions + direction`): PyTorch's
    /// `[weight_ih, weight_hh, bias_ih, bias_hh]`.
    params: Vec<[Param<T>; 4]>,
    /// Their names, made once so that visiting allocates nothing.
    names: Vec<[String; 4]>,
    /// The static path's caches and gradients.
    buf: Buffers<T>,
    /// `predict`'s buffers, reused from call to call.
    inference: std::cell::RefCell<Buffers<T>>,
    /// Whether dropout between layers is active.
    training: bool,
    /// Draws the static path's dropout masks.
    rng: std::cell::RefCell<crate::kernels::dropout::MaskRng>,
}

/// The Elman RNN, Keras's `SimpleRNN` and PyTorch's `nn.RNN`.
pub type SimpleRnn<T> = Recurrent<T, RnnCell>;
/// The LSTM, Keras's `LSTM` and PyTorch's `nn.LSTM`.
pub type Lstm<T> = Recurrent<T, LstmCell>;
/// The GRU, PyTorch's `nn.GRU` (Keras's `GRU` with `reset_after=True`).
pub type Gru<T> = Recurrent<T, GruCell>;

/// What [`Recurrent::forward_with_state`] returns, PyTorch's
/// `(output, (h_n, c_n))`; [`Var::recurrent`] returns one for a single run
/// (one layer, one direction).
pub struct RecurrentOutput<T: Float> {
    /// Every step's output of the top layer: `[B, T, dirs·H]`.
    pub output: Var<T>,
    /// Every layer and direction's final hidden state: `[layers·dirs, B, H]`
    /// (index `layer · dirs + direction`).
    pub h_n: Var<T>,
    /// Their final cell states, for an LSTM: `[layers·dirs, B, H]`.
    pub c_n: Option<Var<T>>,
}

impl<T: Float, C: Cell> Recurrent<T, C> {
    /// A layer with PyTorch's initialization: every weight and bias drawn
    /// from `U(-1/√H, 1/√H)`, in `named_parameters` order.
    ///
    /// # Panics
    /// If a size or `num_layers` is 0, naming the layer.
    #[track_caller]
    pub fn new<R: Rng + ?Sized>(cell: C, config: RecurrentConfig, rng: &mut R) -> Self {
        config.check(cell.name());
        let (h, g) = (config.hidden_size, C::GATES);
        let k = 1.0 / (h as f64).sqrt();
        let init = Initializer::RandomUniform { min: -k, max: k };
        let mut params = Vec::new();
        let mut names = Vec::new();
        for l in 0..config.num_layers {
            for d in 0..config.directions() {
                let shapes: [&[usize]; 4] = [
                    &[g * h, config.layer_input(l)],
                    &[g * h, h],
                    &[g * h],
                    &[g * h],
                ];
                params.push(shapes.map(|s| Param::new(init.init::<T, R>(s, rng))));
                let suffix = if d == 1 { "_reverse" } else { "" };
                names.push(
                    ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
                        .map(|n| format!("{n}_l{l}{suffix}")),
                );
            }
        }
        Recurrent {
            cell,
            config,
            params,
            names,
            buf: Buffers::default(),
            inference: Default::default(),
            training: true,
            rng: std::cell::RefCell::new(rand::SeedableRng::seed_from_u64(rng.random())),
        }
    }

    /// Reseeds the random source of the static path's dropout masks (the
    /// tape path draws from its tape's).
    pub fn reseed(&self, seed: u64) {
        *self.rng.borrow_mut() = rand::SeedableRng::seed_from_u64(seed);
    }

    /// The sizes and options.
    pub fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    /// The cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }
}

impl<T: Float, C: Cell> Share for Recurrent<T, C> {
    fn share(&self) -> Self {
        Recurrent {
            cell: self.cell.clone(),
            config: self.config.clone(),
            params: self.params.clone(),
            names: self.names.clone(),
            buf: Buffers::default(),
            inference: Default::default(),
            training: self.training,
            rng: std::cell::RefCell::new(rand::SeedableRng::seed_from_u64(
                self.rng.borrow_mut().random(),
            )),
        }
    }
}
