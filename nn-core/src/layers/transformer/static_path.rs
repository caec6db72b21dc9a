//! The static path of a `TransformerEncoderLayer`: the blocks around the
//! self-attention (which runs its own static path), on buffers that are
//! sized once and reused every step.
//!
//! The layer drives it in phases around its attention: `before_attention`
//! (pre-norm's first layer norm), the attention, `after_attention`; then
//! `backward_to_attention`, the attention's backward, `backward_from_attention`.

use crate::kernels::dropout::MaskRng;
use ndarray::{ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Zip};

use super::super::dense::linear_grads;
use super::super::{ensure_shape, trainable_grad_buffer, GradBuffer};
use super::{FeedForwardActivation, WeightBias};
use crate::kernels::arith::Add;
use crate::kernels::binary::{add_assign_into, forward_into};
use crate::kernels::dropout::fill_mask_from;
use crate::kernels::matmul::linear_into;
use crate::kernels::norm::{layer_norm_backward_stats_into, layer_norm_stats_into, NormGrads};
use crate::Float;

/// The layer's parameters and settings, borrowed apart from its buffers.
pub(super) struct Blocks<'a, T: Float> {
    pub linear1: &'a WeightBias<T>,
    pub linear2: &'a WeightBias<T>,
    pub norm1: &'a WeightBias<T>,
    pub norm2: &'a WeightBias<T>,
    pub eps: f64,
    pub activation: FeedForwardActivation,
    pub norm_first: bool,
}

/// Every intermediate of one step, `[B, T, ·]` each (the names follow the
/// PyTorch forward: `sa` the attention block, `ff` the feed-forward block).
#[derive(Default)]
pub(super) struct Cache<T: Float> {
    /// Pre-norm: `norm1(x)`, the attention's input.
    n1: ArrayD<T>,
    /// `x + drop1(sa)`.
    r1: ArrayD<T>,
    /// The feed-forward block's input: `norm1(r1)` (post-norm) or `norm2(r1)`.
    ff_in: ArrayD<T>,
    /// `linear1(ff_in)`, its activation, what the activation's backward
    /// reads besides (GELU's `1 + erf`), and the activation after dropout.
    z1: ArrayD<T>,
    g: ArrayD<T>,
    kept: ArrayD<T>,
    gd: ArrayD<T>,
    /// `linear2(gd)`.
    z2: ArrayD<T>,
    /// Post-norm: `ff_in + drop2(z2)`, `norm2`'s input.
    r2: ArrayD<T>,
    /// Dropout masks after the attention, inside and after the feed-forward block.
    m1: ArrayD<T>,
    mf: ArrayD<T>,
    m2: ArrayD<T>,
    dropping: bool,
    /// Row statistics `[μ, σ̂]` kept for the layer norms' backward: of
    /// pre-norm's `norm1(x)`,
    s1: Vec<T>,
    /// of the norm giving `ff_in`,
    s_ff: Vec<T>,
    /// and of post-norm's output norm.
    s_out: Vec<T>,
    // Gradients.
    dr2: ArrayD<T>,
    dz2: ArrayD<T>,
    dgd: ArrayD<T>,
    dz1: ArrayD<T>,
    dff: ArrayD<T>,
    dr1: ArrayD<T>,
    da: ArrayD<T>,
    dxn: ArrayD<T>,
    /// Where a frozen norm's gradients go (computed with the input's, dropped).
    spare: [ArrayD<T>; 2],
}

/// A contiguous `[.., c]` buffer as rows `[N, c]`.
fn flat<T>(a: &ArrayD<T>) -> ArrayView2<'_, T> {
    as_rows(a.view()).expect("own buffers are contiguous")
}

/// A standard-layout `[.., c]` view as rows `[N, c]`; `None` for other layouts.
fn as_rows<T>(a: ArrayViewD<'_, T>) -> Option<ArrayView2<'_, T>> {
    let c = *a.shape().last().expect("at least 1-D");
    let n = a.len() / c.max(1);
    a.into_shape_with_order((n, c)).ok()
}

fn flat_mut<T>(a: &mut ArrayD<T>) -> ArrayViewMut2<'_, T> {
    let c = *a.shape().last().expect("at least 1-D");
    let n = a.len() / c.max(1);
    a.view_mut()
        .into_shape_with_order((n, c))
        .expect("own buffers are contiguous")
}

/// `[B, T, width]` for an input `[B, T, E]`.
fn widened(x: &[usize], width: usize) -> smallvec::SmallVec<[usize; 6]> {
    smallvec::smallvec![x[0], x[1], width]
}

/// `y = x Wᵀ + b` on rows.
fn linear<T: Float>(l: &WeightBias<T>, x: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    let (w, b) = (l.weight.value(), l.bias.value());
    linear_into(
        x,
        w.view().into_dimensionality().expect("2-D weight"),
        Some(b.view().into_dimensionality().expect("1-D bias")),
        y,
    );
}

/// `out = a + b ⊙ m` (or `a + b` without a mask, split over the cores).
fn residual<T: Float>(
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    m: Option<&ArrayD<T>>,
    out: ArrayViewMutD<'_, T>,
) {
    match m {
        Some(m) => Zip::from(out)
            .and(&a)
            .and(&b)
            .and(m)
            .for_each(|o, &a, &b, &m| *o = a + b * m),
        None => forward_into(&Add, a, b, out),
    }
}

/// `out = g ⊙ m` (or a copy of `g`).
fn masked<T: Float>(g: ArrayViewD<'_, T>, m: Option<&ArrayD<T>>, out: &mut ArrayD<T>) {
    ensure_shape(out, g.shape());
    match m {
        Some(m) => Zip::from(out)
            .and(&g)
            .and(m)
            .for_each(|o, &g, &m| *o = g * m),
        None => out.assign(&g),
    }
}

/// `norm(x)` into `y`, keeping its row statistics in `stats`.
fn layer_norm<T: Float>(
    n: &WeightBias<T>,
    eps: f64,
    x: ArrayViewD<'_, T>,
    y: &mut ArrayD<T>,
    stats: &mut Vec<T>,
) {
    ensure_shape(y, x.shape());
    norm_into(n, eps, x, y.view_mut(), stats);
}

/// `norm(x)` into `y`, keeping its row statistics in `stats`.
fn norm_into<T: Float>(
    n: &WeightBias<T>,
    eps: f64,
    x: ArrayViewD<'_, T>,
    y: ArrayViewMutD<'_, T>,
    stats: &mut Vec<T>,
) {
    let (g, b) = (n.weight.value(), n.bias.value());
    stats.resize(2 * x.len() / x.shape()[x.ndim() - 1].max(1), T::zero());
    layer_norm_stats_into(x, g.view(), b.view(), 1, eps, y, stats);
}

/// The layer norm's backward: the input's gradient into `dx`, the trainable
/// scale's and shift's added into their gradients (a frozen one's into `spare`).
fn layer_norm_grads<T: Float>(
    n: &WeightBias<T>,
    (eps, stats): (f64, &[T]),
    x: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    dx: ArrayViewMutD<'_, T>,
    spare: &mut [ArrayD<T>; 2],
) {
    let (mut dg, mut db) = (
        trainable_grad_buffer(&n.weight),
        trainable_grad_buffer(&n.bias),
    );
    let [sg, sb] = spare;
    let width = [x.shape()[x.ndim() - 1]];
    ensure_shape(sg, &width);
    ensure_shape(sb, &width);
    let (dgamma, dbeta) = (grad_view(&mut dg, sg), grad_view(&mut db, sb));
    let gamma = n.weight.value();
    let grads = NormGrads { dx, dgamma, dbeta };
    layer_norm_backward_stats_into(x, gamma.view(), dy, 1, eps, stats, grads);
}

/// A parameter's gradient buffer, or the spare for a frozen one.
fn grad_view<'a, T: Float>(
    g: &'a mut Option<GradBuffer<'_, T>>,
    spare: &'a mut ArrayD<T>,
) -> ArrayViewMutD<'a, T> {
    match g {
        Some(g) => g.view_mut(),
        None => spare.view_mut(),
    }
}

/// `m` when dropping out.
fn if_dropping<T>(dropping: bool, m: &ArrayD<T>) -> Option<&ArrayD<T>> {
    dropping.then_some(m)
}

impl<T: Float> Cache<T> {
    /// Pre-norm: `norm1(x)` into the attention's input buffer.
    pub fn before_attention(&mut self, p: &Blocks<'_, T>, x: ArrayViewD<'_, T>) {
        if p.norm_first {
            layer_norm(p.norm1, p.eps, x, &mut self.n1, &mut self.s1);
        }
    }

    /// What the attention attends over: `x` (post-norm) or `norm1(x)`.
    pub fn attention_input<'a>(
        &'a self,
        p: &Blocks<'_, T>,
        x: ArrayViewD<'a, T>,
    ) -> ArrayViewD<'a, T> {
        if p.norm_first {
            self.n1.view()
        } else {
            x
        }
    }

    /// Everything after the attention's output `a`, into `y`; `drop` draws
    /// the three dropout masks.
    pub fn after_attention(
        &mut self,
        p: &Blocks<'_, T>,
        mut drop: Option<(f64, &mut MaskRng)>,
        x: ArrayViewD<'_, T>,
        a: ArrayViewD<'_, T>,
        y: ArrayViewMutD<'_, T>,
    ) {
        let width = p.linear1.bias.len();
        self.dropping = drop.is_some();
        if let Some((rate, rng)) = &mut drop {
            for (m, shape) in [
                (&mut self.m1, widened(x.shape(), x.shape()[2])),
                (&mut self.mf, widened(x.shape(), width)),
                (&mut self.m2, widened(x.shape(), x.shape()[2])),
            ] {
                ensure_shape(m, &shape);
                fill_mask_from(m.view_mut(), *rate, rng);
            }
        }
        ensure_shape(&mut self.r1, x.shape());
        residual(
            x.view(),
            a,
            if_dropping(self.dropping, &self.m1),
            self.r1.view_mut(),
        );
        let norm = if p.norm_first { p.norm2 } else { p.norm1 };
        layer_norm(norm, p.eps, self.r1.view(), &mut self.ff_in, &mut self.s_ff);
        let hidden = widened(x.shape(), width);
        for b in [&mut self.z1, &mut self.g] {
            ensure_shape(b, &hidden);
        }
        linear(p.linear1, flat(&self.ff_in), flat_mut(&mut self.z1));
        let (z1, g) = (self.z1.view(), self.g.view_mut());
        p.activation.forward_keep_into(z1, g, &mut self.kept);
        if self.dropping {
            masked(self.g.view(), Some(&self.mf), &mut self.gd);
        }
        ensure_shape(&mut self.z2, x.shape());
        let gd = if self.dropping { &self.gd } else { &self.g };
        linear(p.linear2, flat(gd), flat_mut(&mut self.z2));
        if p.norm_first {
            residual(
                self.r1.view(),
                self.z2.view(),
                if_dropping(self.dropping, &self.m2),
                y,
            );
        } else {
            ensure_shape(&mut self.r2, x.shape());
            residual(
                self.ff_in.view(),
                self.z2.view(),
                if_dropping(self.dropping, &self.m2),
                self.r2.view_mut(),
            );
            norm_into(p.norm2, p.eps, self.r2.view(), y, &mut self.s_out);
        }
    }

    /// The backward pass from the output's gradient `dy` down to the
    /// attention's output: adds the feed-forward block's and the norms'
    /// parameter gradients (but `norm1`'s in pre-norm); the attention
    /// output's gradient is then [`Cache::attention_grad`].
    pub fn backward_to_attention(&mut self, p: &Blocks<'_, T>, dy: ArrayViewD<'_, T>) {
        let dropping = self.dropping;
        // The gradient of the feed-forward block's output (after dropout).
        let dres = if p.norm_first {
            dy.view()
        } else {
            ensure_shape(&mut self.dr2, dy.shape());
            layer_norm_grads(
                p.norm2,
                (p.eps, &self.s_out),
                self.r2.view(),
                dy.view(),
                self.dr2.view_mut(),
                &mut self.spare,
            );
            self.dr2.view()
        };
        // Without dropout the block's output gradient is `dres` itself.
        let dz2 = match as_rows(dres.view()).filter(|_| !dropping) {
            Some(dz2) => dz2,
            None => {
                masked(dres.view(), if_dropping(dropping, &self.m2), &mut self.dz2);
                flat(&self.dz2)
            }
        };
        ensure_shape(&mut self.dgd, self.z1.shape());
        let gd = if dropping { &self.gd } else { &self.g };
        linear_grads(
            &p.linear2.weight,
            Some(&p.linear2.bias),
            flat(gd),
            dz2,
            Some(flat_mut(&mut self.dgd)),
        );
        if dropping {
            self.dgd.zip_mut_with(&self.mf, |g, &m| *g *= m);
        }
        ensure_shape(&mut self.dz1, self.z1.shape());
        p.activation.backward_kept_into(
            [self.z1.view(), self.g.view(), self.kept.view()],
            self.dgd.view(),
            self.dz1.view_mut(),
        );
        ensure_shape(&mut self.dff, self.ff_in.shape());
        linear_grads(
            &p.linear1.weight,
            Some(&p.linear1.bias),
            flat(&self.ff_in),
            flat(&self.dz1),
            Some(flat_mut(&mut self.dff)),
        );
        ensure_shape(&mut self.dr1, self.r1.shape());
        if p.norm_first {
            // r1 feeds norm2 and, through the residual, the output.
            layer_norm_grads(
                p.norm2,
                (p.eps, &self.s_ff),
                self.r1.view(),
                self.dff.view(),
                self.dr1.view_mut(),
                &mut self.spare,
            );
            add_assign_into(self.dr1.view_mut(), dy.view());
        } else {
            // ff_in feeds the block and, through the residual, norm2.
            add_assign_into(self.dff.view_mut(), dres.view());
            layer_norm_grads(
                p.norm1,
                (p.eps, &self.s_ff),
                self.r1.view(),
                self.dff.view(),
                self.dr1.view_mut(),
                &mut self.spare,
            );
        }
        masked(
            self.dr1.view(),
            if_dropping(dropping, &self.m1),
            &mut self.da,
        );
    }

    /// The gradient of the attention's output, after [`Cache::backward_to_attention`].
    pub fn attention_grad(&self) -> ArrayViewD<'_, T> {
        self.da.view()
    }

    /// The rest of the backward pass from the gradient of the attention's
    /// input `dsa_in` (ignored when `dx` is not wanted in post-norm): the
    /// input's gradient into `dx`, and in pre-norm `norm1`'s parameters'.
    pub fn backward_from_attention(
        &mut self,
        p: &Blocks<'_, T>,
        x: ArrayViewD<'_, T>,
        dsa_in: ArrayViewD<'_, T>,
        dx: Option<ArrayViewMutD<'_, T>>,
    ) {
        let through_attention = if p.norm_first {
            ensure_shape(&mut self.dxn, x.shape());
            layer_norm_grads(
                p.norm1,
                (p.eps, &self.s1),
                x,
                dsa_in,
                self.dxn.view_mut(),
                &mut self.spare,
            );
            self.dxn.view()
        } else {
            dsa_in
        };
        if let Some(dx) = dx {
            forward_into(&Add, self.dr1.view(), through_attention, dx);
        }
    }
}

crate::instances!(Cache: before_attention, after_attention, backward_to_attention, attention_grad, backward_from_attention);
