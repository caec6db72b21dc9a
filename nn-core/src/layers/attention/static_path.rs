//! The static path of `MultiheadAttention`: self-attention on buffers that
//! are sized once and reused every step, the same kernels as the tape.

use crate::kernels::dropout::MaskRng;
use ndarray::{ArrayD, ArrayViewD, CowArray, Ix1, Ix2, Ix3, IxDyn, Order};

use super::super::dense::linear_grads;
use super::super::ensure_shape;
use super::AttentionMask;
use crate::kernels::attention::{
    attention_backward_into, attention_into, split_heads, split_heads_mut, Qkv, QkvGrads,
};
use crate::kernels::dropout;
use crate::kernels::matmul::linear_into;
use crate::tape::Param;
use crate::Float;

/// The layer's parameters, borrowed apart from its buffers.
pub(super) struct Projections<'a, T: Float> {
    pub in_w: &'a Param<T>,
    pub in_b: &'a Param<T>,
    pub out_w: &'a Param<T>,
    pub out_b: &'a Param<T>,
    pub heads: usize,
}

/// What the static path keeps between forward and backward, reused every step.
pub(super) struct Cache<T> {
    batch: usize,
    /// `[B·T, 3E]`: the projected queries, keys and values.
    qkv: ArrayD<T>,
    /// `[B, h, T, T]`: the attention probabilities.
    p: ArrayD<T>,
    /// `[B, h, T, T]`: their dropout mask, when `dropping`.
    drop: ArrayD<T>,
    /// Whether the last forward dropped out probabilities.
    dropping: bool,
    /// `[B·T, E]`: the heads' outputs merged, before `out_proj`.
    ctx: ArrayD<T>,
    /// `[threads, T, T]`: one head's dropped probabilities or score
    /// gradient, for each thread the heads are shared out among.
    scratch: ArrayD<T>,
    dctx: ArrayD<T>,
    dqkv: ArrayD<T>,
}

impl<T: Float> Default for Cache<T> {
    fn default() -> Self {
        let empty = || ArrayD::zeros(IxDyn(&[0]));
        Cache {
            batch: 0,
            qkv: empty(),
            p: empty(),
            drop: empty(),
            dropping: false,
            ctx: empty(),
            scratch: empty(),
            dctx: empty(),
            dqkv: empty(),
        }
    }
}

/// `x` (`[.., E]`) as rows `[N, E]`: a view when contiguous, else a copy.
pub(in crate::layers) fn rows<'a, T: Float>(x: &'a ArrayViewD<'_, T>) -> CowArray<'a, T, Ix2> {
    let e = *x.shape().last().expect("at least 1-D");
    let n = x.len() / e.max(1);
    x.to_shape(((n, e), Order::RowMajor))
        .expect("rows: sizes agree")
}

fn two_d<T>(a: &ArrayD<T>) -> ndarray::ArrayView2<'_, T> {
    a.view().into_dimensionality::<Ix2>().expect("2-D")
}

fn two_d_mut<T>(a: &mut ArrayD<T>) -> ndarray::ArrayViewMut2<'_, T> {
    a.view_mut().into_dimensionality::<Ix2>().expect("2-D")
}

fn three_d_mut<T>(a: &mut ArrayD<T>) -> ndarray::ArrayViewMut3<'_, T> {
    a.view_mut().into_dimensionality::<Ix3>().expect("3-D")
}

fn one_d<T>(a: &ArrayD<T>) -> ndarray::ArrayView1<'_, T> {
    a.view().into_dimensionality::<Ix1>().expect("1-D")
}

impl<T: Float> Cache<T> {
    /// Self-attention of `x` (`[B·T, E]`, `batch` sequences) into `y`
    /// (`[B·T, E]`), keeping what [`Cache::backward`] needs; `drop` draws a
    /// dropout mask on the probabilities.
    pub fn forward(
        &mut self,
        w: &Projections<'_, T>,
        mask: &AttentionMask,
        drop: Option<(f64, &mut MaskRng)>,
        x: ndarray::ArrayView2<'_, T>,
        batch: usize,
        y: ndarray::ArrayViewMut2<'_, T>,
    ) {
        let (n, e) = x.dim();
        let t = n / batch;
        self.batch = batch;
        ensure_shape(&mut self.qkv, &[n, 3 * e]);
        ensure_shape(&mut self.p, &[batch, w.heads, t, t]);
        ensure_shape(&mut self.scratch, &[crate::threads(), t, t]);
        ensure_shape(&mut self.ctx, &[n, e]);
        {
            let (iw, ib) = (w.in_w.value(), w.in_b.value());
            linear_into(x, two_d(&iw), Some(one_d(&ib)), two_d_mut(&mut self.qkv));
        }
        self.dropping = drop.is_some();
        if let Some((rate, rng)) = drop {
            ensure_shape(&mut self.drop, self.p.shape());
            dropout::fill_mask_from(self.drop.view_mut(), rate, rng);
        }
        let qkv = heads_of(&self.qkv, batch, w.heads);
        let ctx = split_heads_mut(self.ctx.view_mut(), batch, w.heads, 1)
            .into_iter()
            .next()
            .expect("one part");
        attention_into(
            &qkv,
            mask,
            self.dropping.then(|| four(&self.drop)),
            self.p.view_mut().into_dimensionality().expect("4-D"),
            three_d_mut(&mut self.scratch),
            ctx,
        );
        let (ow, ob) = (w.out_w.value(), w.out_b.value());
        linear_into(two_d(&self.ctx), two_d(&ow), Some(one_d(&ob)), y);
    }

    /// The gradients of the last [`Cache::forward`] from `dy` (`[B·T, E]`):
    /// added into the trainable parameters, and the input's written to `dx`.
    pub fn backward(
        &mut self,
        w: &Projections<'_, T>,
        x: ndarray::ArrayView2<'_, T>,
        dy: ndarray::ArrayView2<'_, T>,
        dx: Option<ndarray::ArrayViewMut2<'_, T>>,
    ) {
        let (n, e) = x.dim();
        assert!(
            self.ctx.shape() == [n, e] && dy.dim() == (n, e),
            "MultiheadAttention: backward of input {:?} and gradient {:?} after a forward of {:?}",
            x.shape(),
            dy.shape(),
            self.ctx.shape()
        );
        ensure_shape(&mut self.dctx, &[n, e]);
        ensure_shape(&mut self.dqkv, &[n, 3 * e]);
        linear_grads(
            w.out_w,
            Some(w.out_b),
            two_d(&self.ctx),
            dy,
            Some(two_d_mut(&mut self.dctx)),
        );
        let qkv = heads_of(&self.qkv, self.batch, w.heads);
        let dctx = split_heads(self.dctx.view(), self.batch, w.heads, 1);
        let mut dqkv = split_heads_mut(self.dqkv.view_mut(), self.batch, w.heads, 3).into_iter();
        let mut next = || dqkv.next();
        let grads = QkvGrads {
            dq: next(),
            dk: next(),
            dv: next(),
        };
        drop(dqkv);
        attention_backward_into(
            &qkv,
            four(&self.p),
            self.dropping.then(|| four(&self.drop)),
            Some(dctx[0]),
            None,
            three_d_mut(&mut self.scratch),
            grads,
        );
        linear_grads(w.in_w, Some(w.in_b), x, two_d(&self.dqkv), dx);
    }
}

/// The query, key and value heads of a `[B·T, 3E]` projection.
fn heads_of<T: Float>(qkv: &ArrayD<T>, batch: usize, heads: usize) -> Qkv<'_, T> {
    let h = split_heads(qkv.view(), batch, heads, 3);
    Qkv {
        q: h[0],
        k: h[1],
        v: h[2],
    }
}

fn four<T>(a: &ArrayD<T>) -> ndarray::ArrayView4<'_, T> {
    a.view().into_dimensionality().expect("4-D")
}

crate::instances!(Cache: forward, backward);
