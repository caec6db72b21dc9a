//! The user's own layers: any type implementing `Layer`, written by its path
//! with its constructor's arguments in order, `my::Block(64)` (`MyLayer()`
//! for a constructor without arguments: without parentheses, a path is a
//! nested model, see `nested`), and its output shape when it changes the
//! shape, `-> (64)`. The model checks the declared shape against the layer's
//! own `output_shape` when it is built.

use quote::quote_spanned;

use super::{LayerCx, Resolved};
use crate::errors::{Errors, Mistake};
use crate::parse::{Arg, LayerDef, OutputSpec};

pub(crate) fn rule(layer: &LayerDef, cx: &LayerCx<'_>, errors: &mut Errors) -> Option<Resolved> {
    let mut args = Vec::new();
    for a in &layer.args {
        match a {
            Arg::Positional(e) => args.push(e.clone()),
            Arg::Named { name, value } => {
                errors.push(
                    Mistake::NamedArgumentOnOwnLayer,
                    quote::quote!(#name = #value),
                    format!(
                        "your own layer `{}` takes its constructor's arguments in order; named argument `{name}` is not supported",
                        cx.name
                    ),
                );
                return None;
            }
        }
    }
    let output = match &layer.output {
        Some(spec) => declared_shape(spec, errors)?,
        None => cx.input.to_vec(),
    };
    let span = cx.span;
    let path = cx.kind;
    // `Scale<f32>` is the type; `Scale::<f32>::new(..)` the constructor.
    let mut ctor = path.clone();
    if let Some(last) = ctor.segments.last_mut() {
        if let syn::PathArguments::AngleBracketed(a) = &mut last.arguments {
            a.colon2_token = Some(Default::default());
        }
    }
    Some(Resolved {
        output,
        params: None,
        ty: quote_spanned!(span=> #path),
        ctor: quote_spanned!(span=> #ctor::new(#(#args),*)),
        check_shape: true,
        parts: None,
    })
}

/// The shape a `-> (64)` declares, or `None` after reporting why it is not one.
pub(crate) fn declared_shape(spec: &OutputSpec, errors: &mut Errors) -> Option<Vec<usize>> {
    if spec.dims.is_empty() {
        errors.push(
            Mistake::EmptyOutputShape,
            spec,
            "`-> ()` declares no output dimension; give at least one, e.g. `-> (64)`",
        );
        return None;
    }
    let mut out = Vec::new();
    for d in &spec.dims {
        match d.base10_parse::<usize>() {
            Ok(n) if n > 0 => out.push(n),
            _ => {
                errors.push(
                    Mistake::ZeroOutputDimension,
                    d,
                    format!("output dimension `{d}` must be a positive integer"),
                );
                return None;
            }
        }
    }
    Some(out)
}
