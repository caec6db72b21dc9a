//! `MultiheadAttention`: PyTorch's `nn.MultiheadAttention(embed_dim,
//! num_heads, bias=True, batch_first=True)`, on the tape and on the static path.

mod static_path;

use std::cell::RefCell;

use crate::kernels::dropout::MaskRng;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::{Rng, SeedableRng};

use super::{Layer, Share, Workspace};
use crate::init::Initializer;
use crate::kernels::dropout;
use crate::tape::{Param, Var};
use crate::Float;
use static_path::{rows, Cache, Projections};

pub use crate::kernels::attention::AttentionMask;

/// Multi-head attention (PyTorch's `nn.MultiheadAttention(embed_dim,
/// num_heads, bias=True, batch_first=True)`; Keras's `MultiHeadAttention`):
/// the query, key and value are projected by the stacked `in_proj_weight`,
/// split into `num_heads` heads of `embed_dim / num_heads`, attended
/// ([`Var::scaled_dot_product_attention`]), merged and projected by
/// `out_proj`. Parameters under PyTorch's names and layouts, so a
/// `state_dict` loads as is.
///
/// As a [`Layer`] it is self-attention over `[T, E]` samples (with a causal
/// mask when built [`.causal(true)`](MultiheadAttention::causal)); on the
/// tape, [`MultiheadAttention::attend`] takes separate query, key and value
/// and any [`AttentionMask`].
///
/// ```
/// use nn_core::layers::{AttentionMask, Layer, MultiheadAttention};
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
/// use nn_core::Tape;
/// use ndarray::Array3;
///
/// let mha = MultiheadAttention::<f64>::new(8, 2, &mut StdRng::seed_from_u64(0));
/// let tape = Tape::new();
/// let query = tape.var(Array3::from_elem((2, 5, 8), 0.1)); // [B, Tq, E]
/// let memory = tape.var(Array3::from_elem((2, 7, 8), 0.2)); // [B, Tk, E]
/// let (y, weights) = mha.attend_with_weights(&query, &memory, &memory, &AttentionMask::default());
/// assert_eq!((y.shape(), weights.shape()), (vec![2, 5, 8], vec![2, 5, 7]));
/// y.sum().backward();
/// assert!(mha.in_proj_weight.grad().is_some());
///
/// // The static path: causal self-attention over a batch of [T, E] samples.
/// let mut causal = MultiheadAttention::<f64>::new(8, 2, &mut StdRng::seed_from_u64(0)).causal(true);
/// let x = Array3::from_elem((2, 5, 8), 0.3).into_dyn();
/// assert_eq!(causal.forward_train(x.view()).shape(), &[2, 5, 8]);
/// ```
pub struct MultiheadAttention<T: Float> {
    /// `[3E, E]`: the query, key and value projections stacked (PyTorch's layout).
    pub in_proj_weight: Param<T>,
    /// `[3E]`.
    pub in_proj_bias: Param<T>,
    /// `[E, E]` (PyTorch's `out_proj.weight`).
    pub out_proj_weight: Param<T>,
    /// `[E]` (PyTorch's `out_proj.bias`).
    pub out_proj_bias: Param<T>,
    embed_dim: usize,
    num_heads: usize,
    causal: bool,
    /// Dropout on the attention probabilities in training (PyTorch's `dropout`).
    dropout: f64,
    training: bool,
    /// Draws the static path's dropout masks.
    rng: RefCell<MaskRng>,
    cache: Cache<T>,
    buf: Workspace<T>,
}

impl<T: Float> MultiheadAttention<T> {
    /// Attention of `num_heads` heads over `embed_dim` features with
    /// PyTorch's initialization: a xavier_uniform `in_proj_weight`,
    /// `out_proj.weight` from `U(±1/√E)` (`nn.Linear`'s default), zero biases.
    ///
    /// # Panics
    /// Unless `num_heads` divides `embed_dim` (both positive), naming both.
    pub fn new<R: Rng + ?Sized>(embed_dim: usize, num_heads: usize, rng: &mut R) -> Self {
        assert!(
            embed_dim > 0 && num_heads > 0 && embed_dim.is_multiple_of(num_heads),
            "MultiheadAttention: num_heads {num_heads} must divide embed_dim {embed_dim}"
        );
        let e = embed_dim;
        MultiheadAttention {
            in_proj_weight: Param::new(Initializer::GlorotUniform.init::<T, R>(&[3 * e, e], rng)),
            in_proj_bias: Param::new(ArrayD::zeros(IxDyn(&[3 * e]))),
            out_proj_weight: Param::new(Initializer::TorchDefault.init::<T, R>(&[e, e], rng)),
            out_proj_bias: Param::new(ArrayD::zeros(IxDyn(&[e]))),
            embed_dim,
            num_heads,
            causal: false,
            dropout: 0.0,
            training: true,
            rng: RefCell::new(MaskRng::seed_from_u64(rng.random())),
            cache: Cache::default(),
            buf: Workspace::new(),
        }
    }

    /// Whether [`Layer`]'s self-attention masks future positions (query `i`
    /// sees keys `j <= i`).
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Dropout on the attention probabilities while training (PyTorch's
    /// `dropout` argument, default 0).
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`.
    pub fn dropout(mut self, p: f64) -> Self {
        dropout::check_probability("MultiheadAttention", p);
        self.dropout = p;
        self
    }

    /// Reseeds the RNG of the static path's dropout masks (to reproduce a run).
    pub fn reseed(&self, seed: u64) {
        *self.rng.borrow_mut() = MaskRng::seed_from_u64(seed);
    }

    /// The width `E` of queries, keys, values and output.
    pub fn embed_dim(&self) -> usize {
        self.embed_dim
    }

    /// The number of heads.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Whether the self-attention of [`Layer`] is causal.
    pub fn is_causal(&self) -> bool {
        self.causal
    }

    /// The dropout rate on the attention probabilities (applied in training).
    pub fn dropout_rate(&self) -> f64 {
        self.dropout
    }

    /// The tape path, PyTorch's `mha(query, key, value, key_padding_mask,
    /// attn_mask, need_weights=False)[0]`: `query` `[B, Tq, E]`, `key` and
    /// `value` `[B, Tk, E]`, giving `[B, Tq, E]`.
    ///
    /// # Panics
    /// If the shapes do not fit the layer, each other or the mask, naming
    /// the layer and the shapes.
    #[track_caller]
    pub fn attend(
        &self,
        query: &Var<T>,
        key: &Var<T>,
        value: &Var<T>,
        mask: &AttentionMask,
    ) -> Var<T> {
        let (q, k, v) = self.heads(query, key, value, mask);
        let o = q.scaled_dot_product_attention(&k, &v, mask, self.active_dropout());
        self.merge(&o)
    }

    /// [`MultiheadAttention::attend`] and also the attention weights averaged
    /// over heads, `[B, Tq, Tk]` (PyTorch's `need_weights=True,
    /// average_attn_weights=True`), differentiable too.
    ///
    /// # Panics
    /// As [`MultiheadAttention::attend`].
    #[track_caller]
    pub fn attend_with_weights(
        &self,
        query: &Var<T>,
        key: &Var<T>,
        value: &Var<T>,
        mask: &AttentionMask,
    ) -> (Var<T>, Var<T>) {
        let (q, k, v) = self.heads(query, key, value, mask);
        let (o, w) =
            q.scaled_dot_product_attention_with_weights(&k, &v, mask, self.active_dropout());
        (self.merge(&o), w)
    }

    fn active_dropout(&self) -> f64 {
        if self.training {
            self.dropout
        } else {
            0.0
        }
    }

    /// Checks the inputs, projects them and splits the heads: `[B, h, T, d]` each.
    #[track_caller]
    fn heads(
        &self,
        query: &Var<T>,
        key: &Var<T>,
        value: &Var<T>,
        mask: &AttentionMask,
    ) -> (Var<T>, Var<T>, Var<T>) {
        let (qs, ks, vs) = (query.shape(), key.shape(), value.shape());
        let e = self.embed_dim;
        let fits = qs.len() == 3
            && ks.len() == 3
            && vs == ks
            && qs[0] == ks[0]
            && qs[2] == e
            && ks[2] == e;
        if !fits {
            panic!(
                "MultiheadAttention: query {qs:?}, key {ks:?} and value {vs:?} must be [batch, Tq, {e}], [batch, Tk, {e}] and [batch, Tk, {e}]"
            );
        }
        if let Err(err) = mask.check("MultiheadAttention", qs[0], qs[1], ks[1]) {
            panic!("{err}");
        }
        let tape = query.tape();
        let (w, b) = (
            tape.param(&self.in_proj_weight),
            tape.param(&self.in_proj_bias),
        );
        let split = |x: &Var<T>| {
            let s = x.shape();
            let d = e / self.num_heads;
            x.reshape(&[s[0], s[1], self.num_heads, d])
                .permute(&[0, 2, 1, 3])
        };
        let part = |x: &Var<T>, i: usize| {
            let r = i * e..(i + 1) * e;
            split(&x.linear(&w.slice(0, r.clone()), Some(&b.slice(0, r))))
        };
        if query.id() == key.id() && key.id() == value.id() {
            // Self-attention: one product for the three projections, as PyTorch.
            let qkv = query.linear(&w, Some(&b));
            let third = |i: usize| split(&qkv.slice(2, i * e..(i + 1) * e));
            (third(0), third(1), third(2))
        } else {
            (part(query, 0), part(key, 1), part(value, 2))
        }
    }

    /// Merges the heads of `o` (`[B, h, T, d]`) and applies `out_proj`.
    fn merge(&self, o: &Var<T>) -> Var<T> {
        let s = o.shape();
        let tape = o.tape();
        o.permute(&[0, 2, 1, 3])
            .reshape(&[s[0], s[2], self.embed_dim])
            .linear(
                &tape.param(&self.out_proj_weight),
                Some(&tape.param(&self.out_proj_bias)),
            )
    }

    fn check_sample(&self, x: &[usize]) {
        self.check_shape(x, false)
    }

    /// `[batch, time, embed_dim]` with `time > 0`, and `batch > 0` unless
    /// `empty_batch` (inference on no sequences).
    fn check_shape(&self, x: &[usize], empty_batch: bool) {
        assert!(
            x.len() == 3 && x[2] == self.embed_dim && (x[0] > 0 || empty_batch) && x[1] > 0,
            "MultiheadAttention: expected input [batch, time, {}], got {x:?}",
            self.embed_dim
        );
    }

    fn projections(&self) -> Projections<'_, T> {
        Projections {
            in_w: &self.in_proj_weight,
            in_b: &self.in_proj_bias,
            out_w: &self.out_proj_weight,
            out_b: &self.out_proj_bias,
            heads: self.num_heads,
        }
    }

    /// The parameters, apart from the buffers and the dropout RNG (borrowed
    /// mutably).
    fn split(
        &mut self,
    ) -> (
        Projections<'_, T>,
        &mut Cache<T>,
        &mut Workspace<T>,
        &mut MaskRng,
    ) {
        let w = Projections {
            in_w: &self.in_proj_weight,
            in_b: &self.in_proj_bias,
            out_w: &self.out_proj_weight,
            out_b: &self.out_proj_bias,
            heads: self.num_heads,
        };
        (w, &mut self.cache, &mut self.buf, self.rng.get_mut())
    }
}

impl<T: Float> Share for MultiheadAttention<T> {
    /// The same parameters, heads, mask, dropout and mode, with buffers and a
    /// dropout RNG of its own (seeded from this layer's, which advances it).
    fn share(&self) -> Self {
        MultiheadAttention {
            in_proj_weight: self.in_proj_weight.clone(),
            in_proj_bias: self.in_proj_bias.clone(),
            out_proj_weight: self.out_proj_weight.clone(),
            out_proj_bias: self.out_proj_bias.clone(),
            embed_dim: self.embed_dim,
            num_heads: self.num_heads,
            causal: self.causal,
            dropout: self.dropout,
            training: self.training,
            rng: RefCell::new(MaskRng::seed_from_u64(self.rng.borrow_mut().random())),
            cache: Cache::default(),
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Layer<T> for MultiheadAttention<T> {
    fn type_name(&self) -> &'static str {
        "MultiHeadAttention"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [_, e] if *e == self.embed_dim => Ok(input.to_vec()),
            _ => Err(format!(
                "MultiheadAttention over {} features takes [time, {}], not {input:?}",
                self.embed_dim, self.embed_dim
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.check_sample(&x.shape());
        self.attend(x, x, x, &AttentionMask::causal(self.causal))
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.check_sample(x.shape());
        let (rate, active) = (self.dropout, self.training && self.dropout > 0.0);
        let mask = AttentionMask::causal(self.causal);
        let (w, cache, buf, rng) = self.split();
        let (n, e) = (x.len() / x.shape()[2], x.shape()[2]);
        let y = buf
            .output_mut(x.shape())
            .into_shape_with_order((n, e))
            .expect("a fresh buffer is contiguous");
        let drop = active.then_some((rate, rng));
        cache.forward(&w, &mask, drop, rows(&x).view(), x.shape()[0], y);
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
        self.check_sample(x.shape());
        let (w, cache, buf, _) = self.split();
        let (xr, dyr) = (rows(&x), rows(&dy));
        buf.maybe_input_grad(need_input_grad, x.shape(), |dx| {
            let dx = dx.map(|d| {
                let (n, e) = xr.dim();
                d.into_shape_with_order((n, e))
                    .expect("a fresh buffer is contiguous")
            });
            cache.backward(&w, xr.view(), dyr.view(), dx)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check_shape(x.shape(), true);
        let mut y = ArrayD::zeros(x.raw_dim());
        if x.shape()[0] == 0 {
            // No sequences: the output's shape, no rows (as PyTorch's).
            return y;
        }
        let y2 = y
            .view_mut()
            .into_shape_with_order((x.len() / self.embed_dim, self.embed_dim))
            .expect("a fresh array is contiguous");
        Cache::default().forward(
            &self.projections(),
            &AttentionMask::causal(self.causal),
            None,
            rows(&x).view(),
            x.shape()[0],
            y2,
        );
        y
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("in_proj_weight", &self.in_proj_weight);
        f("in_proj_bias", &self.in_proj_bias);
        f("out_proj.weight", &self.out_proj_weight);
        f("out_proj.bias", &self.out_proj_bias);
    }

    fn reseed(&self, seed: u64) {
        MultiheadAttention::reseed(self, seed)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

crate::instances!(MultiheadAttention: attend, attend_with_weights);
crate::instances!(impl Layer for MultiheadAttention: forward, forward_train, backward, predict);
