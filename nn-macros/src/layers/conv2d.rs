//! `Conv2d(filters, kernel = .., stride = .., padding = .., dilation = ..,
//! activation = .., use_bias = .., kernel_init = .., bias_init = ..)`: a 2-D
//! convolution over a `(channels, height, width)` input.

use quote::{quote, quote_spanned};

use super::window::{self, image, positive_pair, Padding, Window};
use super::{product, LayerCx, Resolved};
use crate::activation_fn;
use crate::args::{bool_lit, initializer, int_lit, Args};
use crate::errors::{Errors, Mistake};

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let span = cx.span;
    let Some(filters_expr) = args.take_positional_or_named("filters") else {
        args.missing(
            &["filters"],
            (Mistake::ConvWithoutFilters, cx.kind),
            "Conv2d needs a number of filters and a kernel, e.g. `Conv2d(32, kernel = 3)`",
            errors,
        );
        return None;
    };
    let filters = int_lit(filters_expr, errors)?;
    if filters == 0 {
        errors.push(
            Mistake::ZeroFilters,
            filters_expr,
            "Conv2d needs at least 1 filter, got `0`",
        );
        return None;
    }
    let kernel_expr = args
        .take_named("kernel")
        .or_else(|| args.take_named("kernel_size"))
        .or_else(|| args.take_positional_or_named("kernel"));
    let Some(kernel_expr) = kernel_expr else {
        args.missing(
            &["kernel", "kernel_size"],
            (Mistake::ConvWithoutKernel, cx.kind),
            "Conv2d needs a kernel size, e.g. `Conv2d(32, kernel = 3)`",
            errors,
        );
        return None;
    };
    let kernel = positive_pair(cx, Some(kernel_expr), "kernel", (1, 1), errors)?;
    let stride = positive_pair(cx, args.take_named("stride"), "stride", (1, 1), errors)?;
    let dilation = positive_pair(cx, args.take_named("dilation"), "dilation", (1, 1), errors)?;
    let padding = match args.take_named("padding") {
        None => Padding::Valid,
        Some(e) => window::padding(e, errors)?,
    };
    let activation = activation_fn::named_argument(args, span, errors)?;
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

    let [c, h, w] = image(cx, errors)?;
    let geometry = Window {
        kernel,
        stride,
        dilation,
        padding,
    };
    let (oh, ow) = window::output(cx, (h, w), &geometry, errors)?;
    let output = activation.output(&[filters, oh, ow], errors)?;
    let params = product([filters, c, kernel.0, kernel.1]).saturating_add(if use_bias {
        filters
    } else {
        0
    });

    let t = cx.dtype;
    let ((kh, kw), (sh, sw), (dh, dw)) = (kernel, stride, dilation);
    let (act, act_value) = (&activation.ty, &activation.value);
    let pad = match padding {
        Padding::Valid => quote!(::nn::layers::Padding::Valid),
        Padding::Same => quote!(::nn::layers::Padding::Same),
        Padding::Explicit(r, c) => quote!(::nn::layers::Padding::Explicit(#r, #c)),
    };
    Some(Resolved {
        output,
        params: Some(params),
        ty: quote_spanned!(span=> ::nn::layers::Conv2d<#t, #c, #filters, #kh, #kw, #act>),
        ctor: quote_spanned!(span=> ::nn::layers::Conv2d::new(#act_value, (#sh, #sw), #pad, (#dh, #dw), #use_bias, #kernel_init, #bias_init, rng)),
        check_shape: false,
        parts: None,
    })
}
