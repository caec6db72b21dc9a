//! Attention on a `(time, features)` sequence, with PyTorch's weights:
//! `MultiHeadAttention(heads = 4, key_dim = 16, causal = false)` (Keras's
//! names, `num_heads` too; self-attention) and `TransformerEncoder(heads = 4,
//! dim_feedforward = 2048, dropout = 0.1, activation = relu | gelu,
//! norm_first = false, eps = 1e-5, causal = false)` (PyTorch's
//! `TransformerEncoderLayer` and its defaults; `nhead` and `layer_norm_eps`,
//! its names, are accepted too).

use quote::quote_spanned;

use super::dropout::rate;
use super::sequence::sequence;
use super::{LayerCx, Resolved};
use crate::args::{bool_lit, choice, float_lit, int_lit, Args};
use crate::errors::{Errors, Mistake};

/// PyTorch's `TransformerEncoderLayer` defaults.
const DIM_FEEDFORWARD: usize = 2048;
const DROPOUT: f64 = 0.1;
const EPS: f64 = 1e-5;

/// `heads` (or Keras's `num_heads`), checked to divide the `width` of the
/// embedding — PyTorch's layout gives each head `width / heads` features —
/// and, when given, Keras's `key_dim` checked to be that quotient.
fn heads(cx: &LayerCx<'_>, args: &Args<'_>, width: usize, errors: &mut Errors) -> Option<usize> {
    let name = cx.name;
    let Some(e) = args
        .take_positional_or_named("heads")
        .or_else(|| args.take_named("num_heads"))
        .or_else(|| args.take_named("nhead"))
    else {
        args.missing(
            &["heads", "num_heads", "nhead"],
            (Mistake::AttentionWithoutHeads, cx.kind),
            format!("{name} needs a number of heads, e.g. `{name}(heads = 4)`"),
            errors,
        );
        return None;
    };
    let heads = int_lit(e, errors)?;
    if heads == 0 || !width.is_multiple_of(heads) {
        errors.push(
            Mistake::HeadsDoNotDivide,
            e,
            format!(
                "{name}: the embedding width {width} is not divisible by {heads} heads (each head takes width / heads features, as in PyTorch)"
            ),
        );
        return None;
    }
    if let Some(k) = args.take_named("key_dim") {
        let key_dim = int_lit(k, errors)?;
        if key_dim.checked_mul(heads) != Some(width) {
            errors.push(
                Mistake::KeyDimMismatch,
                k,
                format!(
                    "{name}: {heads} heads of key_dim {key_dim} make {}, but the input has {width} features; with PyTorch's layout key_dim is width / heads = {}",
                    key_dim.saturating_mul(heads),
                    width / heads
                ),
            );
            return None;
        }
    }
    Some(heads)
}

fn flag(args: &Args<'_>, name: &'static str, errors: &mut Errors) -> Option<bool> {
    match args.take_named(name) {
        Some(e) => bool_lit(e, errors),
        None => Some(false),
    }
}

pub(crate) fn multi_head_attention(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let [time, width] = sequence(cx, errors)?;
    let heads = heads(cx, args, width, errors)?;
    let causal = flag(args, "causal", errors)?;
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output: vec![time, width],
        params: Some(attention_params(width)),
        ty: quote_spanned!(span=> ::nn::layers::MultiheadAttention<#t>),
        ctor: quote_spanned!(span=>
            ::nn::layers::MultiheadAttention::new(#width, #heads, rng).causal(#causal)
        ),
        check_shape: false,
        parts: None,
    })
}

/// `in_proj` (3E × E and 3E) and `out_proj` (E × E and E).
fn attention_params(width: usize) -> usize {
    width
        .saturating_mul(width)
        .saturating_add(width)
        .saturating_mul(4)
}

pub(crate) fn transformer_encoder(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let [time, width] = sequence(cx, errors)?;
    let heads = heads(cx, args, width, errors)?;
    let ff = match args.take_named("dim_feedforward") {
        Some(e) => match int_lit(e, errors)? {
            0 => {
                errors.push(
                    Mistake::ZeroUnits,
                    e,
                    "TransformerEncoder needs a feed-forward width of at least 1, got `0`",
                );
                return None;
            }
            n => n,
        },
        None => DIM_FEEDFORWARD,
    };
    let dropout = match args.take_named("dropout") {
        Some(e) => rate(e, "TransformerEncoder's dropout", errors)?,
        None => DROPOUT,
    };
    let gelu = match args.take_named("activation") {
        Some(e) => {
            choice(
                e,
                &["relu", "gelu"],
                "TransformerEncoder's activation (PyTorch's)",
                Mistake::FeedForwardActivation,
                errors,
            )? == "gelu"
        }
        None => false,
    };
    let norm_first = flag(args, "norm_first", errors)?;
    let causal = flag(args, "causal", errors)?;
    let eps = match args
        .take_named("eps")
        .or_else(|| args.take_named("layer_norm_eps"))
    {
        Some(e) => float_lit(e, errors)?,
        None => EPS,
    };
    let (span, t) = (cx.span, cx.dtype);
    let activation = if gelu {
        quote_spanned!(span=> ::nn::layers::FeedForwardActivation::Gelu)
    } else {
        quote_spanned!(span=> ::nn::layers::FeedForwardActivation::Relu)
    };
    // Attention, the two linear maps and the two norms' weights and biases.
    let params = attention_params(width)
        .saturating_add(ff.saturating_mul(width).saturating_mul(2))
        .saturating_add(ff)
        .saturating_add(width.saturating_mul(5));
    Some(Resolved {
        output: vec![time, width],
        params: Some(params),
        ty: quote_spanned!(span=> ::nn::layers::TransformerEncoderLayer<#t>),
        ctor: quote_spanned!(span=> ::nn::layers::TransformerEncoderLayer::new(
            ::nn::layers::TransformerConfig::new(#width, #heads)
                .dim_feedforward(#ff)
                .dropout(#dropout)
                .activation(#activation)
                .norm_first(#norm_first)
                .layer_norm_eps(#eps)
                .causal(#causal),
            rng,
        )),
        check_shape: false,
        parts: None,
    })
}
