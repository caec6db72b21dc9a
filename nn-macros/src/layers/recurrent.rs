//! The recurrent layers under Keras's names, with PyTorch's weights:
//! `SimpleRNN(units, activation = tanh | relu)`, `LSTM(units)`, `GRU(units)`,
//! each taking `return_sequences` (Keras's; default `false`: the last
//! output), `num_layers`, `bidirectional` and `dropout` (PyTorch's: between
//! stacked layers), and
//! `Bidirectional(LSTM(64))` for Keras's wrapper. The input is a `(time,
//! features)` sequence.

use proc_macro2::TokenStream;
use quote::{format_ident, quote_spanned};
use syn::{Expr, ExprCall};

use super::dropout::rate;
use super::sequence::sequence;
use super::{product, LayerCx, Resolved};
use crate::args::{bool_lit, choice, int_lit, Args};
use crate::errors::{Errors, Mistake};
use crate::parse::Arg;
use crate::validate::last_segment;

/// A recurrent layer: its name in `sequential!`, its gates per unit, and
/// the `nn::layers` type and cell it builds (the RNN's cell is its
/// activation's, chosen in the rule).
struct Kind {
    name: &'static str,
    gates: usize,
    ty: &'static str,
    cell: &'static [&'static str],
}

/// The one list of recurrent layers: the rules below, `Bidirectional` and
/// the messages all read it.
const KINDS: [Kind; 3] = [
    Kind {
        name: "SimpleRNN",
        gates: 1,
        ty: "SimpleRnn",
        cell: &["RnnCell", "Tanh"],
    },
    Kind {
        name: "LSTM",
        gates: 4,
        ty: "Lstm",
        cell: &["LstmCell"],
    },
    Kind {
        name: "GRU",
        gates: 3,
        ty: "Gru",
        cell: &["GruCell"],
    },
];

fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

pub(crate) fn simple_rnn(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    recurrent(cx, &KINDS[0], args, false, errors)
}

pub(crate) fn lstm(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    recurrent(cx, &KINDS[1], args, false, errors)
}

pub(crate) fn gru(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    recurrent(cx, &KINDS[2], args, false, errors)
}

/// `Bidirectional(LSTM(64, ..))`: the wrapped layer run both ways.
pub(crate) fn bidirectional(
    cx: &LayerCx<'_>,
    args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let inner = args.take_positional_or_named("layer");
    let call = inner.and_then(|e| match e {
        Expr::Call(c) => Some(c),
        _ => None,
    });
    let kind = call.and_then(|c| match &*c.func {
        Expr::Path(p) => kind(&last_segment(&p.path)),
        _ => None,
    });
    let (Some(call), Some(kind)) = (call, kind) else {
        let at: &dyn quote::ToTokens = match inner {
            Some(e) => e,
            None => cx.kind,
        };
        errors.push(
            Mistake::BidirectionalWithoutRecurrent,
            at,
            "Bidirectional wraps a recurrent layer, e.g. `Bidirectional(LSTM(64))` (SimpleRNN, LSTM or GRU)",
        );
        return None;
    };
    let inner_args = call_args(call);
    let args = Args::new(kind.name, &inner_args);
    let resolved = recurrent(cx, kind, &args, true, errors);
    args.finish(errors);
    resolved
}

/// The arguments of `LSTM(64, return_sequences = true)` written inside
/// `Bidirectional(..)`, as the layer's own would be parsed.
fn call_args(call: &ExprCall) -> Vec<Arg> {
    call.args
        .iter()
        .map(|e| {
            let named = match e {
                Expr::Assign(a) => match &*a.left {
                    Expr::Path(p) => p.path.get_ident().map(|name| (name, &a.right)),
                    _ => None,
                },
                _ => None,
            };
            match named {
                Some((name, value)) => Arg::Named {
                    name: name.clone(),
                    value: (**value).clone(),
                },
                None => Arg::Positional(e.clone()),
            }
        })
        .collect()
}

fn recurrent(
    cx: &LayerCx<'_>,
    kind: &Kind,
    args: &Args<'_>,
    wrapped: bool,
    errors: &mut Errors,
) -> Option<Resolved> {
    let name = kind.name;
    let Some(units_expr) = args.take_positional_or_named("units") else {
        args.missing(
            &["units"],
            (Mistake::RecurrentWithoutUnits, cx.kind),
            format!("{name} needs a number of units, e.g. `{name}(128)`"),
            errors,
        );
        return None;
    };
    let units = int_lit(units_expr, errors)?;
    if units == 0 {
        errors.push(
            Mistake::ZeroUnits,
            units_expr,
            format!("{name} needs at least 1 unit, got `0`"),
        );
        return None;
    }
    let relu = match kind.name {
        "SimpleRNN" => match args.take_named("activation") {
            Some(e) => {
                choice(
                    e,
                    &["tanh", "relu"],
                    "SimpleRNN's activation (PyTorch's nonlinearity)",
                    Mistake::RecurrentActivation,
                    errors,
                )? == "relu"
            }
            None => false,
        },
        _ => false,
    };
    let return_sequences = match args.take_named("return_sequences") {
        Some(e) => bool_lit(e, errors)?,
        None => false,
    };
    let layers = match args.take_named("num_layers") {
        Some(e) => match int_lit(e, errors)? {
            0 => {
                errors.push(
                    Mistake::ZeroUnits,
                    e,
                    format!("{name} needs at least 1 layer, got `0`"),
                );
                return None;
            }
            n => n,
        },
        None => 1,
    };
    let dropout = match args.take_named("dropout") {
        Some(e) => {
            let p = rate(e, &format!("{name}'s dropout"), errors)?;
            if layers < 2 {
                // Keras's `dropout` drops the layer's input, PyTorch's the
                // outputs between stacked layers: never accept one silently
                // meaning the other.
                errors.push(
                    Mistake::RecurrentDropoutWithoutLayers,
                    e,
                    format!(
                        "{name}'s `dropout` (PyTorch's) drops the outputs between stacked layers, so it needs `num_layers` of 2 or more; to drop the layer's input (Keras's `dropout`), put `Dropout({p})` before it"
                    ),
                );
                return None;
            }
            p
        }
        None => 0.0,
    };
    let both_ways = match args.take_named("bidirectional") {
        Some(e) if wrapped => {
            errors.push(
                Mistake::BidirectionalTwice,
                e,
                format!("`Bidirectional` already runs {name} both ways; drop its `bidirectional` argument"),
            );
            return None;
        }
        Some(e) => bool_lit(e, errors)?,
        None => wrapped,
    };
    let [time, features] = sequence(cx, errors)?;

    let directions = if both_ways { 2 } else { 1 };
    let width = units.saturating_mul(directions);
    let gates = units.saturating_mul(kind.gates);
    // Per layer and direction: W_ih, W_hh and the two biases (PyTorch's).
    let params = (0..layers.min(2))
        .map(|l| {
            let input = if l == 0 { features } else { width };
            let per = product([gates, input.saturating_add(units).saturating_add(2)]);
            // Every layer past the first has the second's size.
            let count = if l == 0 { 1 } else { layers - 1 };
            product([per, directions, count])
        })
        .fold(0usize, usize::saturating_add);
    let output = if return_sequences {
        vec![time, width]
    } else {
        vec![width]
    };
    let (span, t) = (cx.span, cx.dtype);
    let ty = format_ident!("{}", kind.ty);
    let cell = if relu {
        &["RnnCell", "Relu"]
    } else {
        kind.cell
    };
    let cell = cell.iter().map(|c| format_ident!("{}", c));
    let (ty, cell): (TokenStream, TokenStream) = (
        quote_spanned!(span=> ::nn::layers::#ty<#t>),
        quote_spanned!(span=> ::nn::layers #(::#cell)*),
    );
    Some(Resolved {
        output,
        params: Some(params),
        ctor: quote_spanned!(span=> <#ty>::new(
            #cell,
            ::nn::layers::RecurrentConfig::new(#features, #units)
                .num_layers(#layers)
                .bidirectional(#both_ways)
                .return_sequences(#return_sequences)
                .dropout(#dropout),
            rng,
        )),
        ty,
        check_shape: false,
        parts: None,
    })
}
