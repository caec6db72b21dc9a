//! Scaled dot-product attention on the tape, and the attention weights
//! averaged over heads as a second, differentiable output.

use std::rc::Rc;

use ndarray::{ArrayD, Ix3};

use crate::kernels::attention::{self as k, four, AttentionMask, Qkv};
use crate::kernels::dropout;
use crate::tape::var::checked;
use crate::tape::{Op, Var};
use crate::Float;

/// What the forward pass kept: the probabilities `P` and the dropout mask
/// on them, if any. Shared by the output's node and the weights' node.
struct Kept<T> {
    p: ArrayD<T>,
    dropout: Option<ArrayD<T>>,
}

/// The output `(P ⊙ M) v`, over inputs `[q, k, v]`.
struct Attention<T>(Rc<Kept<T>>);

/// The weights `mean_h (P ⊙ M)`, over inputs `[q, k, v]` (`v` gets no gradient).
struct Weights<T>(Rc<Kept<T>>);

fn operands<'a, T: Float>(x: &[&'a ArrayD<T>]) -> Qkv<'a, T> {
    Qkv {
        q: four(x[0], "scaled_dot_product_attention"),
        k: four(x[1], "scaled_dot_product_attention"),
        v: four(x[2], "scaled_dot_product_attention"),
    }
}

impl<T: Float> Kept<T> {
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        dout: Option<&ArrayD<T>>,
        dweights: Option<&ArrayD<T>>,
        need: [bool; 3],
    ) -> Vec<Option<ArrayD<T>>> {
        let dweights = dweights.map(|g| {
            g.view()
                .into_dimensionality::<Ix3>()
                .expect("attention weights are 3-D")
        });
        k::attention_backward(
            &operands(x),
            four(&self.p, "attention"),
            self.dropout.as_ref().map(|m| four(m, "attention dropout")),
            dout.map(|g| four(g, "attention output gradient")),
            dweights,
            need,
        )
        .into()
    }
}

impl<T: Float> Op<T> for Attention<T> {
    fn name(&self) -> &'static str {
        "scaled_dot_product_attention"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        self.0
            .backward(x, Some(dy), None, [need[0], need[1], need[2]])
    }
}

impl<T: Float> Op<T> for Weights<T> {
    fn name(&self) -> &'static str {
        "attention_weights"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        self.0
            .backward(x, None, Some(dy), [need[0], need[1], false])
    }
}

impl<T: Float> Var<T> {
    /// Scaled dot-product attention of this query `[B, h, Tq, d]` over `key`
    /// `[B, h, Tk, d]` and `value` `[B, h, Tk, dv]` (PyTorch's
    /// `F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p,
    /// is_causal)`): `softmax(q kᵀ / √d + mask) v`, giving `[B, h, Tq, dv]`.
    /// The boolean masks follow `nn.MultiheadAttention`'s convention, `true`
    /// = masked — the opposite of a boolean `attn_mask` passed to
    /// `F.scaled_dot_product_attention`, where `true` = attended. Masked keys get probability exactly 0 (a query that
    /// sees no key at all gets a zero output, see [`crate::kernels::attention`]);
    /// with `dropout > 0` the probabilities are dropped out with a mask drawn
    /// from the tape's random source (pass 0 in evaluation). One node, which
    /// keeps the probabilities for its backward pass.
    ///
    /// ```
    /// use nn_core::kernels::attention::AttentionMask;
    /// use nn_core::Tape;
    /// use ndarray::Array4;
    ///
    /// let tape = Tape::<f64>::new();
    /// let q = tape.var(Array4::from_elem((1, 2, 3, 4), 0.5));
    /// let kv = tape.var(Array4::from_elem((1, 2, 5, 4), 1.0));
    /// let y = q.scaled_dot_product_attention(&kv, &kv, &AttentionMask::causal(true), 0.0);
    /// assert_eq!(y.shape(), vec![1, 2, 3, 4]);
    /// y.sum().backward();
    /// assert_eq!(kv.grad().unwrap().shape(), &[1, 2, 5, 4]);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit each other or the masks (`attn_mask`
    /// `[Tq, Tk]`, `key_padding_mask` `[B, Tk]`), or `dropout` is not in
    /// `[0, 1)`, naming the op and the shapes (at the caller's line).
    #[track_caller]
    pub fn scaled_dot_product_attention(
        &self,
        key: &Var<T>,
        value: &Var<T>,
        mask: &AttentionMask,
        dropout: f64,
    ) -> Var<T> {
        let (kept, output) = self.attention_forward(key, value, mask, dropout);
        self.tape()
            .record(&[self, key, value], |_| (output, Attention(kept)))
    }

    /// [`Var::scaled_dot_product_attention`] and also the attention weights
    /// averaged over heads, `[B, Tq, Tk]` (PyTorch's
    /// `nn.MultiheadAttention(.., need_weights=True)[1]`: after dropout, if
    /// any): two nodes sharing one forward pass, both differentiable.
    ///
    /// # Panics
    /// As [`Var::scaled_dot_product_attention`].
    #[track_caller]
    pub fn scaled_dot_product_attention_with_weights(
        &self,
        key: &Var<T>,
        value: &Var<T>,
        mask: &AttentionMask,
        dropout: f64,
    ) -> (Var<T>, Var<T>) {
        let (kept, output) = self.attention_forward(key, value, mask, dropout);
        let p = four(&kept.p, "attention");
        let (b, _, tq, tk) = p.dim();
        let mut weights = crate::kernels::owned::zeros(ndarray::IxDyn(&[b, tq, tk]));
        k::average_heads_into(
            p,
            kept.dropout.as_ref().map(|m| four(m, "attention dropout")),
            weights
                .view_mut()
                .into_dimensionality::<Ix3>()
                .expect("3-D"),
        );
        let inputs = [self, key, value];
        let out = self
            .tape()
            .record(&inputs, |_| (output, Attention(Rc::clone(&kept))));
        let weights = self.tape().record(&inputs, |_| (weights, Weights(kept)));
        (out, weights)
    }

    /// Checks the operands, draws the dropout mask and runs the kernel.
    #[track_caller]
    fn attention_forward(
        &self,
        key: &Var<T>,
        value: &Var<T>,
        mask: &AttentionMask,
        p: f64,
    ) -> (Rc<Kept<T>>, ArrayD<T>) {
        dropout::check_probability("scaled_dot_product_attention", p);
        let (q, kshape, v) = (self.shape(), key.shape(), value.shape());
        checked(k::check_attention(&q, &kshape, &v, mask));
        let drop = (p > 0.0).then(|| {
            let shape = k::probabilities_shape(&q, &kshape);
            self.tape()
                .with_rng(|rng| dropout::mask_from::<T>(&shape, p, rng))
        });
        let (output, probabilities) = self.with_value(|q| {
            key.with_value(|k| {
                value.with_value(|v| {
                    let qkv = operands(&[q, k, v]);
                    k::attention(&qkv, mask, drop.as_ref().map(|m| four(m, "dropout")))
                })
            })
        });
        let kept = Rc::new(Kept {
            p: probabilities,
            dropout: drop,
        });
        (kept, output)
    }
}

crate::instances!(Var: scaled_dot_product_attention, scaled_dot_product_attention_with_weights);
