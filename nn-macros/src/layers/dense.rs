//! `Dense(units, activation = .., use_bias = .., kernel_init = .., bias_init = .., input = ..)`:
//! a fully connected layer on a flat input, or on each step of a `(time,
//! features)` sequence (its last axis), as Keras's `Dense`.

use quote::{quote, quote_spanned};

use super::{product, LayerCx, Resolved};
use crate::activation_fn::{self, Func};
use crate::args::{bool_lit, initializer, int_lit, Args};
use crate::errors::{Errors, Mistake};
use crate::validate::shape_text;

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let span = cx.span;
    let Some(units_expr) = args.take_positional_or_named("units") else {
        args.missing(
            &["units"],
            (Mistake::DenseWithoutUnits, cx.kind),
            "Dense needs a number of units, e.g. `Dense(128)`",
            errors,
        );
        return None;
    };
    let units = int_lit(units_expr, errors)?;
    if units == 0 {
        errors.push(
            Mistake::ZeroUnits,
            units_expr,
            "Dense needs at least 1 unit, got `0`",
        );
        return None;
    }
    let activation: Func = activation_fn::named_argument(args, span, errors)?;
    let use_bias = match args.take_named("use_bias") {
        Some(e) => bool_lit(e, errors)?,
        None => true,
    };
    let kernel_init = match args.take_named("kernel_init") {
        Some(e) => initializer(e, errors)?,
        None => quote!(::nn::init::Initializer::GlorotUniform),
    };
    let bias_init = match args.take_named("bias_init") {
        Some(e) => initializer(e, errors)?,
        None => quote!(::nn::init::Initializer::Zeros),
    };
    let input = cx.input;
    if let Some(e) = args.take_named("input") {
        let declared = int_lit(e, errors)?;
        if input.last() != Some(&declared) {
            errors.push(
                Mistake::InputSizeMismatch,
                e,
                format!(
                    "`input = {declared}` does not match the previous layer's output {}",
                    shape_text(input)
                ),
            );
        }
    }
    // A sequence's steps are mapped alike; an image is almost always meant
    // to be flattened first, so that stays a mistake.
    if input.len() > 2 {
        errors.push(
            Mistake::DenseOnNonFlatInput,
            cx.kind,
            format!(
                "Dense expects a flat input or a (time, features) sequence, but the previous layer outputs {}; add `Flatten` before it",
                shape_text(input)
            ),
        );
    }
    // After a shape error the layer's own output is still known: later layers
    // are checked against it, so one mistake reports one error.
    let mut output = match input {
        [time, _] => vec![*time],
        _ => vec![],
    };
    output.push(units);
    let output = activation.output(&output, errors)?;
    let inp = input.last().copied().unwrap_or(1);
    let params = product([inp, units]).saturating_add(if use_bias { units } else { 0 });
    let (t, act, act_value) = (cx.dtype, &activation.ty, &activation.value);
    Some(Resolved {
        output,
        params: Some(params),
        ty: quote_spanned!(span=> ::nn::layers::Dense<#t, #inp, #units, #act>),
        ctor: quote_spanned!(span=> ::nn::layers::Dense::new(#act_value, #use_bias, #kernel_init, #bias_init, rng)),
        check_shape: false,
        parts: None,
    })
}
