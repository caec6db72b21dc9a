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

use ndarray::{
    s, ArrayD, ArrayView2, ArrayView3, ArrayView4, ArrayViewMut2, ArrayViewMut3, ArrayViewMut4,
    Axis, IxDyn,
};

use super::gemm::gemm;
use crate::Float;
use heads::four_mut;
pub use heads::{four, split_heads, split_heads_mut};
pub use mask::AttentionMask;

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
/// probabilities before they weight the values; `scratch` (`[Tq, Tk]`) holds
/// the dropped probabilities of one head while they do.
///
/// # Panics
/// If the shapes do not fit, naming the op and the shapes.
pub fn attention_into<T: Float>(
    qkv: &Qkv<'_, T>,
    mask: &AttentionMask,
    dropout: Option<ArrayView4<'_, T>>,
    mut p: ArrayViewMut4<'_, T>,
    mut scratch: ArrayViewMut2<'_, T>,
    mut out: ArrayViewMut4<'_, T>,
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
    let scale = T::lit(1.0 / (d as f64).sqrt());
    let masks = mask.views();
    for b in 0..bsz {
        for h in 0..heads {
            let mut ph = p.slice_mut(s![b, h, .., ..]);
            gemm(
                scale,
                &q.slice(s![b, h, .., ..]),
                &k.slice(s![b, h, .., ..]).t(),
                T::zero(),
                &mut ph,
            );
            for (i, row) in ph.rows_mut().into_iter().enumerate() {
                softmax_row(row, |j| masks.masked(b, i, j));
            }
            let vh = v.slice(s![b, h, .., ..]);
            let mut oh = out.slice_mut(s![b, h, .., ..]);
            match &dropout {
                Some(m) => {
                    drop_into(ph.view(), m.slice(s![b, h, .., ..]), scratch.view_mut());
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
    scratch: &ArrayViewMut2<'_, T>,
    want: (usize, usize, usize, usize),
) {
    assert!(
        p.dim() == want
            && dropout.is_none_or(|m| m.dim() == want)
            && scratch.dim() == (want.2, want.3),
        "scaled_dot_product_attention: probabilities {:?}, dropout mask {:?} and scratch {:?} for [B, h, Tq, Tk] = {want:?}",
        p.shape(),
        dropout.map(|m| m.shape()),
        scratch.shape()
    );
}

/// Softmax of one row of scores in place, `masked(j)` positions set to 0;
/// a row with every position masked becomes 0 (see the module docs).
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
    let mut sum = T::zero();
    for (j, x) in row.iter_mut().enumerate() {
        *x = if masked(j) {
            T::zero()
        } else {
            (*x - max).exp()
        };
        sum += *x;
    }
    let inv = sum.recip();
    row.mapv_inplace(|x| x * inv);
}

/// `out = p ⊙ mask`.
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
/// counts as zero. `scratch` (`[Tq, Tk]`) holds one head's `dS`.
///
/// # Panics
/// If the shapes do not fit, naming the op and the shapes.
pub fn attention_backward_into<T: Float>(
    qkv: &Qkv<'_, T>,
    p: ArrayView4<'_, T>,
    dropout: Option<ArrayView4<'_, T>>,
    dout: Option<ArrayView4<'_, T>>,
    dweights: Option<ArrayView3<'_, T>>,
    mut scratch: ArrayViewMut2<'_, T>,
    grads: QkvGrads<'_, T>,
) {
    let Qkv { q, k, v } = qkv;
    let (bsz, heads, tq, d) = q.dim();
    let (tk, dv) = (k.dim().2, v.dim().3);
    assert!(
        p.dim() == (bsz, heads, tq, tk)
            && dropout.as_ref().is_none_or(|m| m.dim() == p.dim())
            && scratch.dim() == (tq, tk)
            && dout.as_ref().is_none_or(|g| g.dim() == (bsz, heads, tq, dv))
            && dweights.as_ref().is_none_or(|g| g.dim() == (bsz, tq, tk)),
        "scaled_dot_product_attention backward: query {:?}, key {:?}, value {:?}, probabilities {:?}, output gradient {:?}, weights gradient {:?}, scratch {:?}",
        q.shape(),
        k.shape(),
        v.shape(),
        p.shape(),
        dout.as_ref().map(|g| g.shape()),
        dweights.as_ref().map(|g| g.shape()),
        scratch.shape()
    );
    let QkvGrads {
        mut dq,
        mut dk,
        mut dv,
    } = grads;
    let scale = T::lit(1.0 / (d as f64).sqrt());
    let per_head = T::lit(1.0 / heads as f64);
    for b in 0..bsz {
        for h in 0..heads {
            let ph = p.slice(s![b, h, .., ..]);
            let mh = dropout.as_ref().map(|m| m.slice(s![b, h, .., ..]));
            let doh = dout.as_ref().map(|g| g.slice(s![b, h, .., ..]));
            if let Some(dv) = &mut dv {
                let mut dvh = dv.slice_mut(s![b, h, .., ..]);
                match (&doh, &mh) {
                    (Some(g), Some(m)) => {
                        drop_into(ph, m.view(), scratch.view_mut());
                        gemm(T::one(), &scratch.t(), g, T::zero(), &mut dvh);
                    }
                    (Some(g), None) => gemm(T::one(), &ph.t(), g, T::zero(), &mut dvh),
                    (None, _) => dvh.fill(T::zero()),
                }
            }
            if dq.is_none() && dk.is_none() {
                continue;
            }
            // dP (of the dropped probabilities, then through the mask).
            match &doh {
                Some(g) => gemm(
                    T::one(),
                    g,
                    &v.slice(s![b, h, .., ..]).t(),
                    T::zero(),
                    &mut scratch,
                ),
                None => scratch.fill(T::zero()),
            }
            if let Some(dw) = &dweights {
                scratch.scaled_add(per_head, &dw.index_axis(Axis(0), b));
            }
            if let Some(m) = &mh {
                scratch.zip_mut_with(m, |g, &m| *g *= m);
            }
            // dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place.
            for (mut g, pr) in scratch.rows_mut().into_iter().zip(ph.rows()) {
                let dot = g.iter().zip(pr.iter()).map(|(&g, &p)| g * p).sum::<T>();
                g.zip_mut_with(&pr, |g, &p| *g = p * (*g - dot));
            }
            if let Some(dq) = &mut dq {
                let k = k.slice(s![b, h, .., ..]);
                gemm(
                    scale,
                    &scratch,
                    &k,
                    T::zero(),
                    &mut dq.slice_mut(s![b, h, .., ..]),
                );
            }
            if let Some(dk) = &mut dk {
                let q = q.slice(s![b, h, .., ..]);
                gemm(
                    scale,
                    &scratch.t(),
                    &q,
                    T::zero(),
                    &mut dk.slice_mut(s![b, h, .., ..]),
                );
            }
        }
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
    let mut p = ArrayD::zeros(IxDyn(&ps));
    let mut out = ArrayD::zeros(IxDyn(&[q[0], q[1], q[2], v[3]]));
    let mut scratch = ndarray::Array2::zeros((ps[2], ps[3]));
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
    let fresh = |want: bool, shape: &[usize]| want.then(|| ArrayD::zeros(IxDyn(shape)));
    let mut dq = fresh(need[0], qkv.q.shape());
    let mut dk = fresh(need[1], qkv.k.shape());
    let mut dv = fresh(need[2], qkv.v.shape());
    let mut scratch = ndarray::Array2::zeros((p.dim().2, p.dim().3));
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
mod tests {
    use super::*;
    use ndarray::Array4;

    fn ramp(shape: (usize, usize, usize, usize), k: f64) -> Array4<f64> {
        let mut i = 0.0;
        Array4::from_shape_simple_fn(shape, || {
            i += 1.0;
            (i * k).sin()
        })
    }

    #[test]
    fn masked_positions_get_exactly_zero_and_rows_sum_to_one() {
        let (q, k, v) = (
            ramp((1, 2, 3, 4), 0.7),
            ramp((1, 2, 3, 4), 1.3),
            ramp((1, 2, 3, 2), 0.4),
        );
        let qkv = Qkv {
            q: q.view(),
            k: k.view(),
            v: v.view(),
        };
        let (_, p) = attention(&qkv, &AttentionMask::causal(true), None);
        for ((_, _, i, j), &x) in four(&p, "p").indexed_iter() {
            if j > i {
                assert_eq!(x, 0.0);
            }
        }
        for row in p.lanes(Axis(3)) {
            assert!((row.sum() - 1.0).abs() < 1e-15);
        }
    }

    #[test]
    fn a_fully_masked_row_attends_to_nothing() {
        let q = ramp((1, 1, 2, 2), 0.3);
        let qkv = Qkv {
            q: q.view(),
            k: q.view(),
            v: q.view(),
        };
        let mask = AttentionMask {
            attn_mask: Some(ndarray::arr2(&[[true, true], [false, true]]).into_dyn()),
            ..Default::default()
        };
        let (out, _) = attention(&qkv, &mask, None);
        assert!(out.slice(s![0, 0, 0, ..]).iter().all(|&x| x == 0.0));
        assert!(out.slice(s![0, 0, 1, ..]).iter().all(|x| x.is_finite()));
    }
}
