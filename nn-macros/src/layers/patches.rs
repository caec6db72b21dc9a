//! `Patches(size)`: an image cut into `size × size` patches, the token
//! sequence of a vision transformer.

use quote::quote_spanned;

use super::{LayerCx, Resolved};
use crate::args::{int_lit, Args};
use crate::errors::{Errors, Mistake};
use crate::validate::shape_text;

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let Some(size_expr) = args.take_positional_or_named("size") else {
        args.missing(
            &["size"],
            (Mistake::PatchesWithoutSize, cx.kind),
            "Patches needs a patch size, e.g. `Patches(7)` for 16 patches of a 28×28 image",
            errors,
        );
        return None;
    };
    let size = int_lit(size_expr, errors)?;
    // The shape rule is the kernel's own, so the two cannot disagree.
    let output = match nn_spec::shapes::patches_shape(cx.input, size) {
        Ok(s) => s,
        Err(why) => {
            let mistake = if matches!(cx.input.len(), 2 | 3) {
                Mistake::PatchesDoNotTile
            } else {
                Mistake::NotAnImage
            };
            errors.push(
                mistake,
                size_expr,
                format!("Patches on {}: {why}", shape_text(cx.input)),
            );
            return None;
        }
    };
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output: output.to_vec(),
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::Patches<#t>),
        ctor: quote_spanned!(span=> ::nn::layers::Patches::new(#size)),
        check_shape: false,
        parts: None,
    })
}
