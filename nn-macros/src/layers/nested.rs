//! A `sequential!` model inside another, written by its name without
//! parentheses: `Block`, `encoder: Block`, `Block -> (10)`.
//!
//! The macro cannot read another invocation's shapes, so the layer's output
//! is declared as for the user's own layers (`-> (10)` when it changes the
//! shape, else the shape arriving there is assumed), and both shapes are
//! checked when the code compiles: the generated `const` item calls
//! `nn::layers::check_nested`, whose compile-time panic names the layer and
//! both shapes. The model is built by
//! `nn::layers::Sublayer::build` from the outer model's RNG, and counts its
//! parameters through `Sublayer::PARAM_COUNT`.

use quote::quote_spanned;

use super::{LayerCx, Parts, Resolved};
use crate::errors::Errors;
use crate::parse::LayerDef;
use crate::validate::{layer_source, Params};

pub(crate) fn rule(layer: &LayerDef, cx: &LayerCx<'_>, errors: &mut Errors) -> Option<Resolved> {
    let output = cx
        .declared_output(errors)?
        .unwrap_or_else(|| cx.input.to_vec());
    let (span, t, path) = (cx.span, cx.dtype, cx.kind);
    let sub = quote_spanned!(span=> <#path as ::nn::layers::Sublayer<#t>>);
    let label = cx.label(&layer_source(layer));
    let (arriving, declared) = (cx.input, &output);
    // The compiler reports `Mistake::NestedInputShape` and
    // `Mistake::NestedOutputShape` from here.
    let items = quote_spanned! {span=>
        const _: () = ::nn::layers::check_nested::<#t, #path>(
            &[#(#arriving),*], &[#(#declared),*], #label,
        );
    };
    Some(Resolved {
        output,
        params: Some(0),
        ty: quote_spanned!(span=> #path),
        ctor: quote_spanned!(span=> #sub::build(rng)),
        check_shape: false,
        parts: Some(Parts {
            items,
            rows: quote_spanned!(span=> #sub::summary_rows(__nn_layer)),
            params: Params {
                known: 0,
                nested: vec![quote_spanned!(span=> #path)],
                unknown: false,
            },
        }),
    })
}
