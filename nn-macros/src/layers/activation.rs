//! Keras's activation layers: `Activation(f)` with any activation (see
//! `crate::activation_fn`), and `ReLU`, `Softmax`, `LeakyReLU`, `ELU`, which
//! apply one built-in and take its arguments by name or in Keras's order.

use proc_macro2::TokenStream;
use quote::{quote_spanned, ToTokens};

use nn_spec::find_activation;

use super::{LayerCx, Resolved};
use crate::activation_fn::{self, read_value, Func, Value};
use crate::args::Args;
use crate::errors::{Errors, Mistake};

/// The layer around an activation: same parameters (none), shape by the
/// activation's rule.
fn layer(cx: &LayerCx<'_>, func: Func, errors: &mut Errors) -> Option<Resolved> {
    let output = func.output(cx.input, errors)?;
    let span = cx.span;
    let (t, ty, value) = (cx.dtype, &func.ty, &func.value);
    Some(Resolved {
        output,
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::Activation<#t, #ty>),
        ctor: quote_spanned!(span=> ::nn::layers::Activation::new(#value)),
        check_shape: false,
        parts: None,
    })
}

/// `Activation(relu)`, `Activation("softmax")`, `Activation(relu(max_value = 6.0))`,
/// `Activation(MySwish)`.
pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let Some(e) = args.take_positional_or_named("activation") else {
        errors.push(
            Mistake::ActivationLayerWithoutFunction,
            cx.kind,
            "Activation needs a function: `Activation(relu)` or `Activation(\"softmax\")`",
        );
        return None;
    };
    let func = activation_fn::resolve(e, errors)?;
    layer(cx, func, errors)
}

/// A Keras layer applying the built-in `function`: its arguments are the
/// function's, by name or positionally in the order `positional`; `defaults`
/// are the layer's own where Keras's layer differs from the function.
fn keras_layer(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
    function: &str,
    positional: &[&str],
    defaults: &[(&str, Value)],
) -> Option<Resolved> {
    let origin: TokenStream = cx.kind.to_token_stream();
    let Some(spec) = find_activation(function) else {
        errors.push(
            Mistake::UnknownActivation,
            &origin,
            format!(
                "unknown activation `{function}` behind the layer `{}`",
                cx.name
            ),
        );
        return None;
    };
    let mut given = Vec::new();
    let mut ok = true;
    let order = positional
        .iter()
        .filter_map(|p| spec.arg(p))
        .chain(spec.args.iter().filter(|a| !positional.contains(&a.name)));
    for arg in order {
        let e = if positional.contains(&arg.name) {
            args.take_positional_or_named(arg.name)
        } else {
            args.take_named(arg.name)
        };
        match e {
            Some(e) => match read_value(function, arg, e, errors) {
                Some(v) => given.push((arg, v)),
                None => ok = false,
            },
            None => {
                if let Some((_, v)) = defaults.iter().find(|(n, _)| *n == arg.name) {
                    given.push((arg, v.clone()));
                }
            }
        }
    }
    if !ok {
        return None;
    }
    let func = activation_fn::builtin(spec, function, &given, origin, cx.span, errors)?;
    layer(cx, func, errors)
}

/// `ReLU`, `ReLU(max_value = 6.0)`: Keras's `ReLU(max_value, negative_slope, threshold)`.
pub(crate) fn relu(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    keras_layer(
        cx,
        args,
        errors,
        "relu",
        &["max_value", "negative_slope", "threshold"],
        &[],
    )
}

/// The activation layers and the function each applies: what an argument
/// `activation = ReLU` meant (see `activation_fn::resolve`).
pub(crate) const FUNCTION_OF_LAYER: [(&str, &str); 4] = [
    ("ReLU", "relu"),
    ("Softmax", "softmax"),
    ("LeakyReLU", "leaky_relu"),
    ("ELU", "elu"),
];

/// `Softmax`, `Softmax(axis = 1)`.
pub(crate) fn softmax(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    keras_layer(cx, args, errors, "softmax", &["axis"], &[])
}

/// `LeakyReLU`, `LeakyReLU(0.1)`: Keras's layer defaults to a slope of 0.3
/// (the function `leaky_relu`, to 0.2).
pub(crate) fn leaky_relu(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    keras_layer(
        cx,
        args,
        errors,
        "leaky_relu",
        &["negative_slope"],
        &[("negative_slope", Value::Float(0.3))],
    )
}

/// `ELU`, `ELU(alpha = 0.5)`.
pub(crate) fn elu(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    keras_layer(cx, args, errors, "elu", &["alpha"], &[])
}
