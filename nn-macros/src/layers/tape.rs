//! `Tape(MyLayer(args)) -> (64)`: your own layer written for the tape alone
//! (`nn::layers::TapeLayer`), given a static path derived from the tape by
//! `nn::layers::TapeOnly`. The constructor call is written as for your own
//! layers (`MyLayer::<f32>(8)` calls `MyLayer::<f32>::new(8)`), and so is the
//! output shape when it changes.

use quote::quote_spanned;
use syn::{Expr, ExprPath};

use super::{LayerCx, Resolved};
use crate::args::Args;
use crate::errors::{Errors, Mistake};

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let wrong = |errors: &mut Errors, at: &dyn quote::ToTokens| {
        errors.push(
            Mistake::TapeWithoutLayer,
            at,
            "`Tape(..)` wraps your own layer, written as a call of its type: `Tape(MyLayer(64))` builds `MyLayer::new(64)`",
        );
        None
    };
    let Some(e) = args.take_positional_or_named("layer") else {
        return wrong(errors, cx.kind);
    };
    let Expr::Call(call) = e else {
        return wrong(errors, e);
    };
    let Expr::Path(ExprPath {
        qself: None, path, ..
    }) = &*call.func
    else {
        return wrong(errors, e);
    };
    let output = cx
        .declared_output(errors)?
        .unwrap_or_else(|| cx.input.to_vec());
    let (span, t) = (cx.span, cx.dtype);
    let inner_args = call.args.iter();
    Some(Resolved {
        output,
        params: None,
        ty: quote_spanned!(span=> ::nn::layers::TapeOnly<#t, #path>),
        ctor: quote_spanned!(span=> ::nn::layers::TapeOnly::new(#path::new(#(#inner_args),*))),
        check_shape: true,
        parts: None,
    })
}
