//! `BatchNorm(momentum = .., eps = .., activation = ..)` over the first axis
//! of a sample (channels, or the features of a flat input) and
//! `LayerNorm(eps = ..)` over the last.

use quote::quote_spanned;

use super::{LayerCx, Resolved};
use crate::activation_fn;
use syn::Expr;

use crate::args::{float_lit, signed_float_lit, source, Args};
use crate::errors::{Errors, Mistake};

/// PyTorch's defaults (Keras's momentum 0.99 is PyTorch's 0.01 the other way round).
const MOMENTUM: f64 = 0.1;
const EPS: f64 = 1e-5;

pub(crate) fn batch_norm(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let momentum = match args.take_named("momentum") {
        Some(e) => momentum(e, errors)?,
        None => MOMENTUM,
    };
    let eps = match args.take_named("eps") {
        Some(e) => float_lit(e, errors)?,
        None => EPS,
    };
    let (span, t) = (cx.span, cx.dtype);
    let activation = activation_fn::named_argument(args, span, errors)?;
    let c = cx.input.first().copied().unwrap_or(1);
    let output = activation.output(cx.input, errors)?;
    let (act, act_value) = (&activation.ty, &activation.value);
    Some(Resolved {
        output,
        params: Some(c.saturating_mul(2)),
        ty: quote_spanned!(span=> ::nn::layers::BatchNorm<#t, #c, #act>),
        ctor: quote_spanned!(span=> ::nn::layers::BatchNorm::with_activation(#act_value, #momentum, #eps)),
        check_shape: false,
        parts: None,
    })
}

/// A momentum in PyTorch's convention, the new batch's weight: in `[0, 1]`.
fn momentum(e: &Expr, errors: &mut Errors) -> Option<f64> {
    let m = signed_float_lit(e, errors)?;
    if !(0.0..=1.0).contains(&m) {
        errors.push(
            Mistake::MomentumOutOfRange,
            e,
            format!(
                "BatchNorm's momentum is the new batch's weight (PyTorch's convention), in [0, 1]; got {}",
                source(e)
            ),
        );
        return None;
    }
    Some(m)
}

pub(crate) fn layer_norm(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let eps = match args.take_named("eps") {
        Some(e) => float_lit(e, errors)?,
        None => EPS,
    };
    let n = cx.input.last().copied().unwrap_or(1);
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output: cx.input.to_vec(),
        params: Some(n.saturating_mul(2)),
        ty: quote_spanned!(span=> ::nn::layers::LayerNorm<#t, #n>),
        ctor: quote_spanned!(span=> ::nn::layers::LayerNorm::new(#eps)),
        check_shape: false,
        parts: None,
    })
}
