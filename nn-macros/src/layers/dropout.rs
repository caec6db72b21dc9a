//! `Dropout(rate)`: zeroes a fraction `rate` of its inputs while training.

use quote::quote_spanned;
use syn::Expr;

use super::{LayerCx, Resolved};
use crate::args::{signed_float_lit, source, Args};
use crate::errors::{Errors, Mistake};

/// A drop probability in `[0, 1)`, else reported naming `what` (every
/// layer's dropout argument goes through here).
pub(crate) fn rate(e: &Expr, what: &str, errors: &mut Errors) -> Option<f64> {
    let rate = signed_float_lit(e, errors)?;
    if !(0.0..1.0).contains(&rate) {
        errors.push(
            Mistake::DropoutRateOutOfRange,
            e,
            format!("{what} must be in [0, 1), got {}", source(e)),
        );
        return None;
    }
    Some(rate)
}

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let Some(e) = args.take_positional_or_named("rate") else {
        args.missing(
            &["rate"],
            (Mistake::DropoutWithoutRate, cx.kind),
            "Dropout needs a rate, e.g. `Dropout(0.2)`",
            errors,
        );
        return None;
    };
    let rate = rate(e, "Dropout rate", errors)?;
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output: cx.input.to_vec(),
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::Dropout<#t>),
        ctor: quote_spanned!(span=> ::nn::layers::Dropout::new(#rate, rng)),
        check_shape: false,
        parts: None,
    })
}
