//! Scaled dot-product attention (PyTorch's `F.scaled_dot_product_attention`)
//! forward beside backward, the attention weights averaged over heads, and
//! the views that split a projection into heads without copying.
//!
//! Per batch `b` and head `h`, on 2-D views of `[B, h, T, d]` operands (any
//! strides, so heads cut out of a `[B·T, 3E]` projection are never copied):
//!
//! ```text
//! S = q kᵀ / √d + mask          P = softmax_rows(S)          O = (P ⊙ M) v
//! dV = (P ⊙ M)ᵀ dO     dP = (dO vᵀ) ⊙ M     dS = P ⊙ (dP − rowsum(dP ⊙ P))
//! dQ = dS k / √d       dK = dSᵀ q / √d
//! ```
//!
//! where `M` is an optional dropout mask on the probabilities (`0` or
//! `1 / (1 − p)`; PyTorch's `dropout_p`), the identity when absent. A masked
//! position gets probability exactly 0. A query with every key masked gets
//! probabilities 0, so a zero output and zero gradients (PyTorch's
//! `_safe_softmax`: what `F.scaled_dot_product_attention` and
//! `nn.MultiheadAttention(.., need_weights=False)` give; its
//! `need_weights=True` path uses a plain softmax and gives NaN there, which
//! would then poison every gradient through the shared projections).

mod heads;
mod mask;

use std::marker::PhantomData;
use std::ops::Range;

use ndarray::{
    s, ArrayD, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut, ArrayViewMut2, ArrayViewMut3,
    ArrayViewMut4, Axis, Dimension, Ix3, Ix4, IxDyn, RawArrayViewMut,
};

use super::gemm::gemm;
use super::lanes::{lane_dot, lane_max, lane_sum};
use crate::parallel::{for_each_part, parts_for};
use crate::run_widest;
use crate::Float;
use heads::four_mut;
pub use heads::{four, split_heads, split_heads_mut};
pub use mask::AttentionMask;
use mask::MaskViews;

/// The operands of one attention: queries `[B, h, Tq, d]`, keys
/// `[B, h, Tk, d]` and values `[B, h, Tk, dv]`, of any strides.
#[derive(Clone)]
pub struct Qkv<'a, T> {
    /// `[B, h, Tq, d]`.
    pub q: ArrayView4<'a, T>,
    /// `[B, h, Tk, d]`.
    pub k: ArrayView4<'a, T>,
    /// `[B, h, Tk, dv]`.
    pub v: ArrayView4<'a, T>,
}

/// Where [`attention_backward_into`] writes the operands' gradients (each
/// overwritten; `None` = not wanted).
pub struct QkvGrads<'a, T> {
    /// `[B, h, Tq, d]`.
    pub dq: Option<ArrayViewMut4<'a, T>>,
    /// `[B, h, Tk, d]`.
    pub dk: Option<ArrayViewMut4<'a, T>>,
    /// `[B, h, Tk, dv]`.
    pub dv: Option<ArrayViewMut4<'a, T>>,
}

/// Whether `q`, `k`, `v` and `mask` fit (see [`Qkv`]), or why not: a message
/// naming `scaled_dot_product_attention` and the shapes.
pub fn check_attention(
    q: &[usize],
    k: &[usize],
    v: &[usize],
    mask: &AttentionMask,
) -> Result<(), String> {
    let op = "scaled_dot_product_attention";
    let fits = q.len() == 4
        && k.len() == 4
        && v.len() == 4
        && q[..2] == k[..2]
        && k[..3] == v[..3]
        && q[3] == k[3];
    if !fits {
        return Err(format!(
            "{op}: query {q:?}, key {k:?} and value {v:?} must be [B, h, Tq, d], [B, h, Tk, d] and [B, h, Tk, dv]"
        ));
    }
    mask.check(op, q[0], q[2], k[2])
}

/// `[B, h, Tq, Tk]`: the shape of the probabilities of `q` and `k`.
pub fn probabilities_shape(q: &[usize], k: &[usize]) -> [usize; 4] {
    [q[0], q[1], q[2], k[2]]
}

/// Attention of `qkv` under `mask` into `out` (`[B, h, Tq, dv]`), keeping
/// the probabilities `P` in `p` (`[B, h, Tq, Tk]`) for the backward pass.
/// `dropout`, if given, is a mask of `p`'s shape applied to the
/// probabilities before they weight the values. The heads are shared out
/// among up to `scratch.len_of(Axis(0))` threads (see [`scratch_shape`]);
/// `scratch[i]` (`[Tq, Tk]`) holds part `i`'s dropped probabilities of one
/// head while they do.
///
/// # Panics
/// If the shapes do not fit, naming the op and the shapes.
pub fn attention_into<T: Float>(
    qkv: &Qkv<'_, T>,
    mask: &AttentionMask,
    dropout: Option<ArrayView4<'_, T>>,
    p: ArrayViewMut4<'_, T>,
    scratch: ArrayViewMut3<'_, T>,
    out: ArrayViewMut4<'_, T>,
) {
    let Qkv { q, k, v } = qkv;
    if let Err(e) = check_attention(q.shape(), k.shape(), v.shape(), mask) {
        panic!("{e}");
    }
    let (bsz, heads, tq, d) = q.dim();
    let (tk, dv) = (k.dim().2, v.dim().3);
    check_buffers(&p, dropout.as_ref(), &scratch, (bsz, heads, tq, tk));
    assert!(
        out.dim() == (bsz, heads, tq, dv),
        "scaled_dot_product_attention: output {:?} for query {:?} and value {:?}",
        out.shape(),
        q.shape(),
        v.shape()
    );
    let parts = head_parts(bsz * heads, tq * tk * (d + dv), scratch.dim().0);
    let job = Forward {
        qkv,
        masks: mask.views(),
        unmasked: mask.is_empty(),
        dropout,
        p: Disjoint::new(p),
        scratch: Disjoint::new(scratch),
        out: Disjoint::new(out),
        scale: T::lit(1.0 / (d as f64).sqrt()),
    };
    let step = (bsz * heads).div_ceil(parts);
    for_each_part(parts, &|part| {
        let start = (part * step).min(bsz * heads);
        job.run(part, start..(start + step).min(bsz * heads));
    });
}

/// `[parts, Tq, Tk]`: the scratch [`attention_into`] and
/// [`attention_backward_into`] use to share the heads of `q` (`[B, h, Tq,
/// d]`) and `k` (`[B, h, Tk, d]`) out among every thread.
pub fn scratch_shape(q: &[usize], k: &[usize]) -> [usize; 3] {
    [crate::threads(), q[2], k[2]]
}

/// How many parts to split `count` heads of `per_head` elements of work
/// into, given scratch for `slots` parts.
fn head_parts(count: usize, per_head: usize, slots: usize) -> usize {
    parts_for(count, count.saturating_mul(per_head))
        .min(slots)
        .max(1)
}

/// A mutable view whose sub-views the parts of a parallel loop write, each
/// its own (the heads of a `[B, h, ·, ·]` buffer, the slots of a scratch).
struct Disjoint<'a, T, D> {
    raw: RawArrayViewMut<T, D>,
    _borrow: PhantomData<&'a mut T>,
}

// SAFETY: the sub-views handed out are disjoint (the callers of `head` and
// `slot` promise it), so sharing the view among threads shares no element.
unsafe impl<T: Send, D: Send> Send for Disjoint<'_, T, D> {}
unsafe impl<T: Send, D: Sync> Sync for Disjoint<'_, T, D> {}

impl<'a, T, D: Dimension> Disjoint<'a, T, D> {
    fn new(mut view: ArrayViewMut<'a, T, D>) -> Self {
        Disjoint {
            raw: view.raw_view_mut(),
            _borrow: PhantomData,
        }
    }
}

impl<'a, T> Disjoint<'a, T, Ix4> {
    /// Head `(b, h)`.
    ///
    /// # Safety
    /// No other view of that head lives while the returned one does.
    unsafe fn head(&self, b: usize, h: usize) -> ArrayViewMut2<'a, T> {
        self.raw
            .index_axis_move(Axis(0), b)
            .index_axis_move(Axis(0), h)
            .deref_into_view_mut()
    }
}

impl<'a, T> Disjoint<'a, T, Ix3> {
    /// Slot `i`.
    ///
    /// # Safety
    /// No other view of that slot lives while the returned one does.
    unsafe fn slot(&self, i: usize) -> ArrayViewMut2<'a, T> {
        self.raw.index_axis_move(Axis(0), i).deref_into_view_mut()
    }
}

/// Head `(b, h)` of a `[B, h, ·, ·]` operand.
fn head<'a, T>(x: &ArrayView4<'a, T>, b: usize, h: usize) -> ArrayView2<'a, T> {
    x.index_axis_move(Axis(0), b).index_axis_move(Axis(0), h)
}

/// The forward pass over a range of heads (flat indices `b · h + head`).
struct Forward<'a, 'v, T: Float> {
    qkv: &'a Qkv<'v, T>,
    masks: MaskViews<'a>,
    unmasked: bool,
    dropout: Option<ArrayView4<'a, T>>,
    p: Disjoint<'a, T, Ix4>,
    scratch: Disjoint<'a, T, Ix3>,
    out: Disjoint<'a, T, Ix4>,
    scale: T,
}

impl<T: Float> Forward<'_, '_, T> {
    /// Heads `flat` with scratch slot `part`, compiled for the widest vectors
    /// the CPU has (so the softmax's `exp` vectorizes).
    fn run(&self, part: usize, flat: Range<usize>) {
        run_widest!(<T: Float> (
            f: &Forward<'_, '_, T> = self,
            part: usize = part,
            flat: Range<usize> = flat,
        ) => f.heads(part, flat))
    }

    #[inline(always)]
    fn heads(&self, part: usize, flat: Range<usize>) {
        let Qkv { q, k, v } = self.qkv;
        let heads = q.dim().1;
        // SAFETY: each part has its own slot and its own range of heads.
        let mut scratch = unsafe { self.scratch.slot(part) };
        for bh in flat {
            let (b, h) = (bh / heads, bh % heads);
            // SAFETY: as above.
            let (mut ph, mut oh) = unsafe { (self.p.head(b, h), self.out.head(b, h)) };
            gemm(
                self.scale,
                &head(q, b, h),
                &head(k, b, h).t(),
                T::zero(),
                &mut ph,
            );
            for (i, mut row) in ph.rows_mut().into_iter().enumerate() {
                match row.as_slice_mut() {
                    Some(row) if self.unmasked => softmax_slice(row),
                    _ => softmax_row(row, |j| self.masks.masked(b, i, j)),
                }
            }
            let vh = head(v, b, h);
            match &self.dropout {
                Some(m) => {
                    drop_into(ph.view(), head(m, b, h), scratch.view_mut());
                    gemm(T::one(), &scratch, &vh, T::zero(), &mut oh);
                }
                None => gemm(T::one(), &ph, &vh, T::zero(), &mut oh),
            }
        }
    }
}

fn check_buffers<T: Float>(
    p: &ArrayViewMut4<'_, T>,
    dropout: Option<&ArrayView4<'_, T>>,
    scratch: &ArrayViewMut3<'_, T>,
    want: (usize, usize, usize, usize),
) {
    assert!(
        p.dim() == want
            && dropout.is_none_or(|m| m.dim() == want)
            && scratch.dim().0 > 0
            && scratch.dim().1 == want.2
            && scratch.dim().2 == want.3,
        "scaled_dot_product_attention: probabilities {:?}, dropout mask {:?} and scratch {:?} for [B, h, Tq, Tk] = {want:?}",
        p.shape(),
        dropout.map(|m| m.shape()),
        scratch.shape()
    );
}

/// Softmax of one unmasked, contiguous row of scores in place, in loops of
/// one operation each so each vectorizes (the maximum and sum in lanes).
#[inline(always)]
fn softmax_slice<T: Float>(row: &mut [T]) {
    let max = lane_max(row);
    if max == T::neg_infinity() {
        // Every score -inf (or the row empty): as a masked row, nothing.
        row.fill(T::zero());
        return;
    }
    for x in row.iter_mut() {
        *x = (*x - max).exp_fast();
    }
    divide_by_sum(row);
}

/// Divides a row of exponentials by their sum (in lanes).
#[inline(always)]
fn divide_by_sum<T: Float>(row: &mut [T]) {
    let inv = lane_sum(row, |x| x).recip();
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// Softmax of one row of scores in place, `masked(j)` positions set to 0;
/// a row with every position masked becomes 0 (see the module docs).
#[inline(always)]
fn softmax_row<T: Float>(mut row: ndarray::ArrayViewMut1<'_, T>, masked: impl Fn(usize) -> bool) {
    let mut max = T::neg_infinity();
    for (j, &s) in row.iter().enumerate() {
        if !masked(j) && s > max {
            max = s;
        }
    }
    if max == T::neg_infinity() {
        row.fill(T::zero());
        return;
    }
    for (j, x) in row.iter_mut().enumerate() {
        *x = if masked(j) {
            T::zero()
        } else {
            (*x - max).exp_fast()
        };
    }
    // Summed as an unmasked row is (masked terms are zeros), so no mask and
    // an empty one give the same bits.
    match row.as_slice_mut() {
        Some(row) => divide_by_sum(row),
        None => {
            let inv = row.iter().fold(T::zero(), |s, &x| s + x).recip();
            row.mapv_inplace(|x| x * inv);
        }
    }
}

/// `out = p ⊙ mask`.
#[inline(always)]
fn drop_into<T: Float>(
    p: ArrayView2<'_, T>,
    mask: ArrayView2<'_, T>,
    mut out: ArrayViewMut2<'_, T>,
) {
    ndarray::Zip::from(&mut out)
        .and(&p)
        .and(&mask)
        .for_each(|o, &p, &m| *o = p * m);
}

/// The gradients of [`attention_into`] into `grads`, from the operands, the
/// kept probabilities `p`, the same `dropout` mask, and the gradient of the
/// output `dout` (`[B, h, Tq, dv]`) and/or of the weights averaged over heads
/// `dweights` (`[B, Tq, Tk]`, see [`average_heads_into`]); an absent one
/// counts as zero. The heads are shared out as in [`attention_into`];
/// `scratch[i]` (`[Tq, Tk]`) holds part `i`'s `dS` of one head.
///
/// # Panics
/// If the shapes do not fit, naming the op and the shapes.
pub fn attention_backward_into<T: Float>(
    qkv: &Qkv<'_, T>,
    p: ArrayView4<'_, T>,
    dropout: Option<ArrayView4<'_, T>>,
    dout: Option<ArrayView4<'_, T>>,
    dweights: Option<ArrayView3<'_, T>>,
    scratch: ArrayViewMut3<'_, T>,
    grads: QkvGrads<'_, T>,
) {
    let Qkv { q, k, v } = qkv;
    let (bsz, heads, tq, d) = q.dim();
    let (tk, dv) = (k.dim().2, v.dim().3);
    let fits = |g: &Option<ArrayViewMut4<'_, T>>, want| g.as_ref().is_none_or(|g| g.dim() == want);
    assert!(
        p.dim() == (bsz, heads, tq, tk)
            && dropout.as_ref().is_none_or(|m| m.dim() == p.dim())
            && scratch.dim().0 > 0
            && (scratch.dim().1, scratch.dim().2) == (tq, tk)
            && dout.as_ref().is_none_or(|g| g.dim() == (bsz, heads, tq, dv))
            && dweights.as_ref().is_none_or(|g| g.dim() == (bsz, tq, tk))
            && fits(&grads.dq, q.dim())
            && fits(&grads.dk, k.dim())
            && fits(&grads.dv, v.dim()),
        "scaled_dot_product_attention backward: query {:?}, key {:?}, value {:?}, probabilities {:?}, output gradient {:?}, weights gradient {:?}, scratch {:?}",
        q.shape(),
        k.shape(),
        v.shape(),
        p.shape(),
        dout.as_ref().map(|g| g.shape()),
        dweights.as_ref().map(|g| g.shape()),
        scratch.shape()
    );
    let parts = head_parts(bsz * heads, tq * tk * (2 * d + 2 * dv), scratch.dim().0);
    let job = Backward {
        qkv,
        p,
        dropout,
        dout,
        dweights,
        scratch: Disjoint::new(scratch),
        dq: grads.dq.map(Disjoint::new),
        dk: grads.dk.map(Disjoint::new),
        dv: grads.dv.map(Disjoint::new),
        scale: T::lit(1.0 / (d as f64).sqrt()),
        per_head: T::lit(1.0 / heads as f64),
    };
    let step = (bsz * heads).div_ceil(parts);
    for_each_part(parts, &|part| {
        let start = (part * step).min(bsz * heads);
        job.run(part, start..(start + step).min(bsz * heads));
    });
}

/// The backward pass over a range of heads (flat indices `b · h + head`).
struct Backward<'a, 'v, T: Float> {
    qkv: &'a Qkv<'v, T>,
    p: ArrayView4<'a, T>,
    dropout: Option<ArrayView4<'a, T>>,
    dout: Option<ArrayView4<'a, T>>,
    dweights: Option<ArrayView3<'a, T>>,
    scratch: Disjoint<'a, T, Ix3>,
    dq: Option<Disjoint<'a, T, Ix4>>,
    dk: Option<Disjoint<'a, T, Ix4>>,
    dv: Option<Disjoint<'a, T, Ix4>>,
    scale: T,
    per_head: T,
}

impl<T: Float> Backward<'_, '_, T> {
    /// Heads `flat` with scratch slot `part`, compiled for the widest vectors
    /// the CPU has.
    fn run(&self, part: usize, flat: Range<usize>) {
        run_widest!(<T: Float> (
            f: &Backward<'_, '_, T> = self,
            part: usize = part,
            flat: Range<usize> = flat,
        ) => f.heads(part, flat))
    }

    #[inline(always)]
    fn heads(&self, part: usize, flat: Range<usize>) {
        let Qkv { q, k, v } = self.qkv;
        let heads = q.dim().1;
        // SAFETY: each part has its own slot and its own range of heads.
        let mut scratch = unsafe { self.scratch.slot(part) };
        for bh in flat {
            let (b, h) = (bh / heads, bh % heads);
            let ph = head(&self.p, b, h);
            let mh = self.dropout.as_ref().map(|m| head(m, b, h));
            let doh = self.dout.as_ref().map(|g| head(g, b, h));
            if let Some(dv) = &self.dv {
                // SAFETY: as above.
                let mut dvh = unsafe { dv.head(b, h) };
                match (&doh, &mh) {
                    (Some(g), Some(m)) => {
                        drop_into(ph, m.view(), scratch.view_mut());
                        gemm(T::one(), &scratch.t(), g, T::zero(), &mut dvh);
                    }
                    (Some(g), None) => gemm(T::one(), &ph.t(), g, T::zero(), &mut dvh),
                    (None, _) => dvh.fill(T::zero()),
                }
            }
            if self.dq.is_none() && self.dk.is_none() {
                continue;
            }
            // dP (of the dropped probabilities, then through the mask).
            match &doh {
                Some(g) => gemm(T::one(), g, &head(v, b, h).t(), T::zero(), &mut scratch),
                None => scratch.fill(T::zero()),
            }
            if let Some(dw) = &self.dweights {
                scratch.scaled_add(self.per_head, &dw.index_axis(Axis(0), b));
            }
            if let Some(m) = &mh {
                scratch.zip_mut_with(m, |g, &m| *g *= m);
            }
            // dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place.
            for (mut g, pr) in scratch.rows_mut().into_iter().zip(ph.rows()) {
                match (g.as_slice_mut(), pr.as_slice()) {
                    (Some(g), Some(pr)) => softmax_grad_slice(g, pr),
                    _ => {
                        let dot = g.iter().zip(pr.iter()).map(|(&g, &p)| g * p).sum::<T>();
                        g.zip_mut_with(&pr, |g, &p| *g = p * (*g - dot));
                    }
                }
            }
            if let Some(dq) = &self.dq {
                // SAFETY: as above.
                let mut dqh = unsafe { dq.head(b, h) };
                gemm(self.scale, &scratch, &head(k, b, h), T::zero(), &mut dqh);
            }
            if let Some(dk) = &self.dk {
                // SAFETY: as above.
                let mut dkh = unsafe { dk.head(b, h) };
                gemm(
                    self.scale,
                    &scratch.t(),
                    &head(q, b, h),
                    T::zero(),
                    &mut dkh,
                );
            }
        }
    }
}

/// `g = p ⊙ (g − Σ g ⊙ p)` on one contiguous row (the sum in lanes).
#[inline(always)]
fn softmax_grad_slice<T: Float>(g: &mut [T], p: &[T]) {
    let dot = lane_dot(g, p);
    for (g, &p) in g.iter_mut().zip(p) {
        *g = p * (*g - dot);
    }
}

/// The attention weights averaged over heads (PyTorch's `need_weights=True,
/// average_attn_weights=True`): `out[b] = mean_h (P ⊙ M)[b, h]`, `[B, Tq, Tk]`,
/// the weights that multiplied the values (after dropout, as PyTorch returns them).
pub fn average_heads_into<T: Float>(
    p: ArrayView4<'_, T>,
    dropout: Option<ArrayView4<'_, T>>,
    mut out: ArrayViewMut3<'_, T>,
) {
    let (bsz, heads, tq, tk) = p.dim();
    assert!(
        out.dim() == (bsz, tq, tk) && dropout.as_ref().is_none_or(|m| m.dim() == p.dim()),
        "attention weights: output {:?} for probabilities {:?}",
        out.shape(),
        p.shape()
    );
    let per_head = T::lit(1.0 / heads as f64);
    out.fill(T::zero());
    for b in 0..bsz {
        let mut ob = out.index_axis_mut(Axis(0), b);
        for h in 0..heads {
            let ph = p.slice(s![b, h, .., ..]);
            match &dropout {
                Some(m) => ndarray::Zip::from(&mut ob)
                    .and(&ph)
                    .and(&m.slice(s![b, h, .., ..]))
                    .for_each(|o, &p, &m| *o += per_head * p * m),
                None => ob.scaled_add(per_head, &ph),
            }
        }
    }
}
/// The allocating form of [`attention_into`]: `(output, probabilities)`.
pub fn attention<T: Float>(
    qkv: &Qkv<'_, T>,
    mask: &AttentionMask,
    dropout: Option<ArrayView4<'_, T>>,
) -> (ArrayD<T>, ArrayD<T>) {
    let (q, k, v) = (qkv.q.shape(), qkv.k.shape(), qkv.v.shape());
    if let Err(e) = check_attention(q, k, v, mask) {
        panic!("{e}");
    }
    let ps = probabilities_shape(q, k);
    let mut p = crate::kernels::owned::zeros(IxDyn(&ps));
    let mut out = crate::kernels::owned::zeros(IxDyn(&[q[0], q[1], q[2], v[3]]));
    let mut scratch = crate::kernels::owned::zeros(scratch_shape(q, k));
    attention_into(
        qkv,
        mask,
        dropout,
        four_mut(&mut p),
        scratch.view_mut(),
        four_mut(&mut out),
    );
    (out, p)
}

/// The allocating form of [`attention_backward_into`]: `[dq, dk, dv]` where
/// `need` asks.
pub fn attention_backward<T: Float>(
    qkv: &Qkv<'_, T>,
    p: ArrayView4<'_, T>,
    dropout: Option<ArrayView4<'_, T>>,
    dout: Option<ArrayView4<'_, T>>,
    dweights: Option<ArrayView3<'_, T>>,
    need: [bool; 3],
) -> [Option<ArrayD<T>>; 3] {
    let fresh =
        |want: bool, shape: &[usize]| want.then(|| crate::kernels::owned::zeros(IxDyn(shape)));
    let mut dq = fresh(need[0], qkv.q.shape());
    let mut dk = fresh(need[1], qkv.k.shape());
    let mut dv = fresh(need[2], qkv.v.shape());
    let mut scratch = crate::kernels::owned::zeros(scratch_shape(qkv.q.shape(), qkv.k.shape()));
    attention_backward_into(
        qkv,
        p,
        dropout,
        dout,
        dweights,
        scratch.view_mut(),
        QkvGrads {
            dq: dq.as_mut().map(four_mut),
            dk: dk.as_mut().map(four_mut),
            dv: dv.as_mut().map(four_mut),
        },
    );
    [dq, dk, dv]
}

#[cfg(test)]
mod tests;
