//! [`TransformerConfig`] and [`FeedForwardActivation`]: the settings of a
//! `TransformerEncoderLayer`, with PyTorch's defaults.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::activation::{gelu, relu, ActivationFn};
use crate::kernels::gelu::{gelu_keep_into, gelu_kept_backward_into};
use crate::tape::Var;
use crate::Float;

/// The activation between the feed-forward block's two linear maps
/// (PyTorch's `activation="relu"` or `"gelu"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedForwardActivation {
    /// `max(x, 0)`, PyTorch's default.
    Relu,
    /// The exact GELU, `x Φ(x)` with the error function (PyTorch's `"gelu"`).
    Gelu,
}

impl FeedForwardActivation {
    /// Records the activation of `x` on its tape.
    pub fn apply<T: Float>(self, x: &Var<T>) -> Var<T> {
        match self {
            FeedForwardActivation::Relu => x.relu(),
            FeedForwardActivation::Gelu => x.gelu(),
        }
    }

    /// `y = f(z)`.
    pub fn forward_into<T: Float>(self, z: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
        match self {
            FeedForwardActivation::Relu => relu.forward_into(z, y),
            FeedForwardActivation::Gelu => gelu.forward_into(z, y),
        }
    }

    /// [`Self::forward_into`], keeping in `kept` what
    /// [`Self::backward_kept_into`] reads (for GELU, `1 + erf(z / √2)`:
    /// its backward then needs no `erf`; nothing for ReLU).
    pub(crate) fn forward_keep_into<T: Float>(
        self,
        z: ArrayViewD<'_, T>,
        y: ArrayViewMutD<'_, T>,
        kept: &mut ndarray::ArrayD<T>,
    ) {
        match self {
            FeedForwardActivation::Relu => relu.forward_into(z, y),
            FeedForwardActivation::Gelu => {
                crate::layers::ensure_shape(kept, z.shape());
                gelu_keep_into(z, y, kept.view_mut())
            }
        }
    }

    /// [`Self::backward_into`] given what [`Self::forward_keep_into`] kept.
    pub(crate) fn backward_kept_into<T: Float>(
        self,
        [z, y, kept]: [ArrayViewD<'_, T>; 3],
        dy: ArrayViewD<'_, T>,
        dz: ArrayViewMutD<'_, T>,
    ) {
        match self {
            FeedForwardActivation::Relu => relu.backward_into(z, y, dy, dz),
            FeedForwardActivation::Gelu => gelu_kept_backward_into(z, kept, dy, dz),
        }
    }

    /// `dz` from the input `z`, the output `y` and the output's gradient `dy`.
    pub fn backward_into<T: Float>(
        self,
        z: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dz: ArrayViewMutD<'_, T>,
    ) {
        match self {
            FeedForwardActivation::Relu => relu.backward_into(z, y, dy, dz),
            FeedForwardActivation::Gelu => gelu.backward_into(z, y, dy, dz),
        }
    }
}

/// The settings of a [`TransformerEncoderLayer`](super::TransformerEncoderLayer),
/// PyTorch's `nn.TransformerEncoderLayer` arguments (always `batch_first`)
/// plus whether its [`Layer`](crate::layers::Layer) self-attention is causal.
///
/// ```
/// use nn_core::layers::{FeedForwardActivation, TransformerConfig};
///
/// let config = TransformerConfig::new(64, 4)
///     .dim_feedforward(256)
///     .activation(FeedForwardActivation::Gelu)
///     .norm_first(true)
///     .causal(true);
/// assert_eq!((config.dropout, config.layer_norm_eps), (0.1, 1e-5));
/// ```
#[derive(Clone, Debug)]
pub struct TransformerConfig {
    /// The width `E` of the sequence's vectors.
    pub d_model: usize,
    /// Attention heads (must divide `d_model`).
    pub nhead: usize,
    /// The feed-forward block's hidden width (PyTorch: 2048).
    pub dim_feedforward: usize,
    /// Dropout after the attention and in and after the feed-forward block,
    /// and on the attention probabilities (PyTorch: 0.1). Active only in training.
    pub dropout: f64,
    /// The feed-forward activation (PyTorch: ReLU).
    pub activation: FeedForwardActivation,
    /// Layer norm before each block (pre-norm) rather than after each
    /// residual sum (post-norm, PyTorch's default).
    pub norm_first: bool,
    /// The layer norms' ε (PyTorch: 1e-5).
    pub layer_norm_eps: f64,
    /// Whether the self-attention of [`Layer`](crate::layers::Layer) is
    /// causal (not a PyTorch argument: its `src_mask`/`is_causal` at call time).
    pub causal: bool,
}

impl TransformerConfig {
    /// PyTorch's defaults: `dim_feedforward` 2048, dropout 0.1, ReLU,
    /// post-norm, ε 1e-5; not causal.
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: FeedForwardActivation::Relu,
            norm_first: false,
            layer_norm_eps: 1e-5,
            causal: false,
        }
    }

    /// Sets [`TransformerConfig::dim_feedforward`].
    pub fn dim_feedforward(mut self, dim_feedforward: usize) -> Self {
        self.dim_feedforward = dim_feedforward;
        self
    }

    /// Sets [`TransformerConfig::dropout`].
    pub fn dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets [`TransformerConfig::activation`].
    pub fn activation(mut self, activation: FeedForwardActivation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets [`TransformerConfig::norm_first`].
    pub fn norm_first(mut self, norm_first: bool) -> Self {
        self.norm_first = norm_first;
        self
    }

    /// Sets [`TransformerConfig::layer_norm_eps`].
    pub fn layer_norm_eps(mut self, layer_norm_eps: f64) -> Self {
        self.layer_norm_eps = layer_norm_eps;
        self
    }

    /// Sets [`TransformerConfig::causal`].
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Panics unless the settings make a layer, naming the layer and the
    /// offending values.
    pub(super) fn validate(&self) {
        let what = "TransformerEncoderLayer";
        assert!(
            self.d_model > 0 && self.nhead > 0 && self.d_model.is_multiple_of(self.nhead),
            "{what}: nhead {} must divide d_model {}",
            self.nhead,
            self.d_model
        );
        assert!(
            self.dim_feedforward > 0,
            "{what}: dim_feedforward must be positive"
        );
        assert!(
            (0.0..1.0).contains(&self.dropout),
            "{what}: dropout must be in [0, 1), got {}",
            self.dropout
        );
        assert!(
            self.layer_norm_eps > 0.0,
            "{what}: layer_norm_eps must be positive, got {}",
            self.layer_norm_eps
        );
    }
}
