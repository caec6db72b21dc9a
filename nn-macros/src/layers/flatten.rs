//! `Flatten`: one sample's shape becomes one axis.

use quote::quote_spanned;

use super::{product, LayerCx, Resolved};
use crate::args::Args;
use crate::errors::Errors;

pub(crate) fn rule(cx: &LayerCx<'_>, _args: &Args<'_>, _errors: &mut Errors) -> Option<Resolved> {
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output: vec![product(cx.input.iter().copied())],
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::Flatten<#t>),
        ctor: quote_spanned!(span=> ::nn::layers::Flatten::new()),
        check_shape: false,
        parts: None,
    })
}
