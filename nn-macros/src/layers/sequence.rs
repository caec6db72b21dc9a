//! What a layer on a `(time, features)` sequence checks, and the two
//! sequence layers without weights of their own shape:
//! `PositionalEmbedding` (a learned vector per step) and `GlobalAvgPool1d`
//! (the mean over time).

use quote::quote_spanned;

use super::{LayerCx, Resolved};
use crate::args::Args;
use crate::errors::{Errors, Mistake};
use crate::validate::shape_text;

/// The input as `[time, features]`, or reports that the layer needs a
/// sequence (suggesting how to declare one).
pub(crate) fn sequence(cx: &LayerCx<'_>, errors: &mut Errors) -> Option<[usize; 2]> {
    match *cx.input {
        [t, f] => Some([t, f]),
        _ => {
            let hint = match cx.input {
                [n] => format!(
                    "; declare the model's input as `input(time, features)`, e.g. `input({n}, 1)`"
                ),
                _ => String::from("; a sequence has one time axis and one feature axis"),
            };
            errors.push(
                Mistake::NotASequence,
                cx.kind,
                format!(
                    "{} expects a (time, features) sequence, but the previous layer outputs {}{hint}",
                    cx.name,
                    shape_text(cx.input)
                ),
            );
            None
        }
    }
}

/// `PositionalEmbedding`: a learned `(time, features)` table added to the input.
pub(crate) fn positional_embedding(
    cx: &LayerCx<'_>,
    _args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let [t, f] = sequence(cx, errors)?;
    let (span, ty) = (cx.span, cx.dtype);
    Some(Resolved {
        output: vec![t, f],
        params: Some(t.saturating_mul(f)),
        ty: quote_spanned!(span=> ::nn::layers::PositionalEmbedding<#ty>),
        ctor: quote_spanned!(span=> ::nn::layers::PositionalEmbedding::new(#t, #f, rng)),
        check_shape: false,
        parts: None,
    })
}

/// `GlobalAvgPool1d`: the mean over time.
pub(crate) fn global_avg_pool1d(
    cx: &LayerCx<'_>,
    _args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let [_, f] = sequence(cx, errors)?;
    let (span, ty) = (cx.span, cx.dtype);
    Some(Resolved {
        output: vec![f],
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::GlobalAvgPool1d<#ty>),
        ctor: quote_spanned!(span=> ::nn::layers::GlobalAvgPool1d::new()),
        check_shape: false,
        parts: None,
    })
}
