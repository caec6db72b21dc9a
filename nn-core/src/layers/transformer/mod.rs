//! `TransformerEncoderLayer`: PyTorch's `nn.TransformerEncoderLayer(d_model,
//! nhead, dim_feedforward, dropout, activation, layer_norm_eps,
//! batch_first=True, norm_first)`, on the tape and on the static path.

mod config;
mod static_path;

use std::cell::RefCell;

use crate::kernels::dropout::MaskRng;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::{Rng, SeedableRng};

use super::{AttentionMask, Layer, MultiheadAttention, Share, Workspace};
use crate::init::Initializer;
use crate::tape::{Param, Var};
use crate::Float;
pub use config::{FeedForwardActivation, TransformerConfig};
use static_path::{Blocks, Cache};

/// A weight and a bias: a linear map's (`[out, in]`, `[out]`, PyTorch's
/// layout) or a layer norm's scale and shift (`[E]` each).
pub struct WeightBias<T: Float> {
    /// The weight (a layer norm's γ).
    pub weight: Param<T>,
    /// The bias (a layer norm's β).
    pub bias: Param<T>,
}

impl<T: Float> WeightBias<T> {
    /// `nn.Linear(fan_in, out)`'s initialization: weight and bias from `U(±1/√fan_in)`.
    fn linear<R: Rng + ?Sized>(out: usize, fan_in: usize, rng: &mut R) -> Self {
        let init = Initializer::TorchDefault;
        WeightBias {
            weight: Param::new(init.init::<T, R>(&[out, fan_in], rng)),
            bias: Param::new(init.init_bias::<T, R>(&[out, fan_in], out, rng)),
        }
    }

    /// `nn.LayerNorm(width)`'s: ones and zeros.
    fn norm(width: usize) -> Self {
        WeightBias {
            weight: Param::new(ArrayD::ones(IxDyn(&[width]))),
            bias: Param::new(ArrayD::zeros(IxDyn(&[width]))),
        }
    }

    /// The same parameters (shared handles).
    fn share(&self) -> Self {
        WeightBias {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
        }
    }
}

/// One transformer encoder layer (PyTorch's `nn.TransformerEncoderLayer`,
/// `batch_first=True`): self-attention and a feed-forward block, each with a
/// residual connection and a layer norm, after the sum (post-norm, PyTorch's
/// default) or before the block (`norm_first`):
///
/// ```text
/// post-norm: x = norm1(x + drop(sa(x)));  x = norm2(x + drop(ff(x)))
/// pre-norm:  x = x + drop(sa(norm1(x)));  x = x + drop(ff(norm2(x)))
/// ff(x) = linear2(drop(activation(linear1(x))))
/// ```
///
/// Dropout (also on the attention probabilities) is active only in
/// training ([`Layer::set_training`]). Parameters under PyTorch's names
/// (`self_attn.in_proj_weight`, `linear1.weight`, `norm2.bias`, …) and
/// layouts, so a `state_dict` loads as is.
///
/// ```
/// use nn_core::layers::{AttentionMask, Layer, TransformerConfig, TransformerEncoderLayer};
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
/// use nn_core::Tape;
/// use ndarray::Array3;
///
/// let config = TransformerConfig::new(16, 4).dim_feedforward(32).norm_first(true).causal(true);
/// let mut layer = TransformerEncoderLayer::<f64>::new(config, &mut StdRng::seed_from_u64(0));
/// layer.set_training(false);
/// let x = Array3::from_elem((2, 6, 16), 0.5); // [B, T, E]
///
/// // On the tape, with masks of one's own (PyTorch's `layer(x, src_mask, src_key_padding_mask)`).
/// let tape = Tape::new();
/// let xv = tape.var(x.clone());
/// let y = layer.forward_masked(&xv, &AttentionMask::causal(true));
/// y.sum().backward();
/// assert_eq!(xv.grad().unwrap().shape(), &[2, 6, 16]);
///
/// // The static path gives the same numbers.
/// let ys = layer.forward_train(x.view().into_dyn());
/// assert!((&ys - &y.value()).iter().all(|d| d.abs() < 1e-12));
/// ```
pub struct TransformerEncoderLayer<T: Float> {
    /// The self-attention block.
    pub self_attn: MultiheadAttention<T>,
    /// `[dim_feedforward, d_model]` and `[dim_feedforward]`.
    pub linear1: WeightBias<T>,
    /// `[d_model, dim_feedforward]` and `[d_model]`.
    pub linear2: WeightBias<T>,
    /// The first layer norm (before the attention in pre-norm, after it otherwise).
    pub norm1: WeightBias<T>,
    /// The second layer norm.
    pub norm2: WeightBias<T>,
    config: TransformerConfig,
    training: bool,
    /// Draws the static path's dropout masks.
    rng: RefCell<MaskRng>,
    cache: Cache<T>,
    buf: Workspace<T>,
}

impl<T: Float> TransformerEncoderLayer<T> {
    /// A layer with PyTorch's initialization: the attention's (see
    /// [`MultiheadAttention::new`]), `U(±1/√fan_in)` weights and biases for
    /// the linear maps (`nn.Linear`'s default), ones and zeros for the norms.
    ///
    /// # Panics
    /// Unless `nhead` divides `d_model`, `dim_feedforward` is positive,
    /// `dropout` in `[0, 1)` and `layer_norm_eps` positive, naming the layer
    /// and the values.
    pub fn new<R: Rng + ?Sized>(config: TransformerConfig, rng: &mut R) -> Self {
        config.validate();
        let (e, f) = (config.d_model, config.dim_feedforward);
        let self_attn = MultiheadAttention::new(e, config.nhead, rng)
            .causal(config.causal)
            .dropout(config.dropout);
        TransformerEncoderLayer {
            self_attn,
            linear1: WeightBias::linear(f, e, rng),
            linear2: WeightBias::linear(e, f, rng),
            norm1: WeightBias::norm(e),
            norm2: WeightBias::norm(e),
            rng: RefCell::new(MaskRng::seed_from_u64(rng.random())),
            config,
            training: true,
            cache: Cache::default(),
            buf: Workspace::new(),
        }
    }

    /// The settings it was built with.
    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// Reseeds the RNGs of the static path's dropout masks, this layer's
    /// and its attention's (to reproduce a run).
    pub fn reseed(&self, seed: u64) {
        *self.rng.borrow_mut() = MaskRng::seed_from_u64(seed);
        self.self_attn.reseed(seed.wrapping_add(1));
    }

    /// The tape path with masks of one's own: PyTorch's `layer(x, src_mask,
    /// src_key_padding_mask)` for `x` `[B, T, E]`, giving `[B, T, E]`. (The
    /// [`Layer`] path uses the config's causal mask.)
    ///
    /// # Panics
    /// If `x` is not `[batch, time, d_model]` or the masks do not fit it,
    /// naming the layer and the shapes.
    #[track_caller]
    pub fn forward_masked(&self, x: &Var<T>, mask: &AttentionMask) -> Var<T> {
        self.check(&x.shape());
        let tape = x.tape();
        let (p, training, eps) = (
            self.config.dropout,
            self.training,
            self.config.layer_norm_eps,
        );
        let drop = |v: &Var<T>| v.dropout(p, training);
        let norm = |v: &Var<T>, n: &WeightBias<T>| {
            v.layer_norm(&tape.param(&n.weight), &tape.param(&n.bias), 1, eps)
        };
        let linear = |v: &Var<T>, l: &WeightBias<T>| {
            v.linear(&tape.param(&l.weight), Some(&tape.param(&l.bias)))
        };
        let sa = |v: &Var<T>| drop(&self.self_attn.attend(v, v, v, mask));
        let ff = |v: &Var<T>| {
            let hidden = drop(&self.config.activation.apply(&linear(v, &self.linear1)));
            drop(&linear(&hidden, &self.linear2))
        };
        if self.config.norm_first {
            let h = x + &sa(&norm(x, &self.norm1));
            &h + &ff(&norm(&h, &self.norm2))
        } else {
            let h = norm(&(x + &sa(x)), &self.norm1);
            norm(&(&h + &ff(&h)), &self.norm2)
        }
    }

    #[track_caller]
    fn check(&self, x: &[usize]) {
        self.check_shape(x, false)
    }

    /// `[batch, time, d_model]` with `time > 0`, and `batch > 0` unless
    /// `empty_batch` (inference on no sequences).
    #[track_caller]
    fn check_shape(&self, x: &[usize], empty_batch: bool) {
        let e = self.config.d_model;
        assert!(
            x.len() == 3 && x[2] == e && (x[0] > 0 || empty_batch) && x[1] > 0,
            "TransformerEncoderLayer: expected input [batch, time, {e}], got {x:?}"
        );
    }

    fn dropping(&self) -> bool {
        self.training && self.config.dropout > 0.0
    }

    fn blocks(&self) -> Blocks<'_, T> {
        Blocks {
            linear1: &self.linear1,
            linear2: &self.linear2,
            norm1: &self.norm1,
            norm2: &self.norm2,
            eps: self.config.layer_norm_eps,
            activation: self.config.activation,
            norm_first: self.config.norm_first,
        }
    }

    /// The parameters and settings, apart from the buffers, the attention
    /// and the dropout RNG (borrowed mutably).
    #[allow(clippy::type_complexity)]
    fn split(
        &mut self,
    ) -> (
        Blocks<'_, T>,
        &mut Cache<T>,
        &mut MultiheadAttention<T>,
        &mut Workspace<T>,
        &mut MaskRng,
    ) {
        let Self {
            self_attn,
            linear1,
            linear2,
            norm1,
            norm2,
            config,
            rng,
            cache,
            buf,
            ..
        } = self;
        let blocks = Blocks {
            linear1,
            linear2,
            norm1,
            norm2,
            eps: config.layer_norm_eps,
            activation: config.activation,
            norm_first: config.norm_first,
        };
        (blocks, cache, self_attn, buf, rng.get_mut())
    }
}

impl<T: Float> Share for TransformerEncoderLayer<T> {
    /// The same parameters and settings (the attention shared too), with
    /// buffers and dropout RNGs of its own.
    fn share(&self) -> Self {
        TransformerEncoderLayer {
            self_attn: self.self_attn.share(),
            linear1: self.linear1.share(),
            linear2: self.linear2.share(),
            norm1: self.norm1.share(),
            norm2: self.norm2.share(),
            config: self.config.clone(),
            training: self.training,
            rng: RefCell::new(MaskRng::seed_from_u64(self.rng.borrow_mut().random())),
            cache: Cache::default(),
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Layer<T> for TransformerEncoderLayer<T> {
    fn type_name(&self) -> &'static str {
        "TransformerEncoder"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [_, e] if *e == self.config.d_model => Ok(input.to_vec()),
            _ => Err(format!(
                "TransformerEncoderLayer of d_model {} takes [time, {}], not {input:?}",
                self.config.d_model, self.config.d_model
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.forward_masked(x, &AttentionMask::causal(self.config.causal))
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.check(x.shape());
        let (dropping, rate) = (self.dropping(), self.config.dropout);
        let (blocks, cache, self_attn, buf, rng) = self.split();
        cache.before_attention(&blocks, x.view());
        let a = self_attn.forward_train(cache.attention_input(&blocks, x.view()));
        let drop = dropping.then_some((rate, rng));
        cache.after_attention(&blocks, drop, x.view(), a, buf.output_mut(x.shape()));
        buf.output()
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
        self.check(x.shape());
        let (blocks, cache, self_attn, buf, _) = self.split();
        cache.backward_to_attention(&blocks, dy);
        // Pre-norm needs the attention input's gradient for norm1's parameters.
        let need_sa = need_input_grad || blocks.norm_first;
        let sa_in = cache.attention_input(&blocks, x.view());
        let dsa_in = self_attn.backward(sa_in, cache.attention_grad(), need_sa);
        buf.maybe_input_grad(need_input_grad, x.shape(), |dx| {
            cache.backward_from_attention(&blocks, x.view(), dsa_in, dx)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check_shape(x.shape(), true);
        if x.shape()[0] == 0 {
            // No sequences: the output's shape, no rows (as PyTorch's).
            return ArrayD::zeros(x.raw_dim());
        }
        let blocks = self.blocks();
        let mut cache = Cache::default();
        cache.before_attention(&blocks, x.view());
        let a = self
            .self_attn
            .predict(cache.attention_input(&blocks, x.view()));
        let mut y = ArrayD::zeros(x.raw_dim());
        cache.after_attention(&blocks, None, x.view(), a.view(), y.view_mut());
        y
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        let a = &self.self_attn;
        f("self_attn.in_proj_weight", &a.in_proj_weight);
        f("self_attn.in_proj_bias", &a.in_proj_bias);
        f("self_attn.out_proj.weight", &a.out_proj_weight);
        f("self_attn.out_proj.bias", &a.out_proj_bias);
        f("linear1.weight", &self.linear1.weight);
        f("linear1.bias", &self.linear1.bias);
        f("linear2.weight", &self.linear2.weight);
        f("linear2.bias", &self.linear2.bias);
        f("norm1.weight", &self.norm1.weight);
        f("norm1.bias", &self.norm1.bias);
        f("norm2.weight", &self.norm2.weight);
        f("norm2.bias", &self.norm2.bias);
    }

    fn reseed(&self, seed: u64) {
        TransformerEncoderLayer::reseed(self, seed)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
        self.self_attn.set_training(training);
    }
}

crate::instances!(TransformerEncoderLayer: forward_masked);
crate::instances!(impl Layer for TransformerEncoderLayer: forward, forward_train, backward, predict);
