//! Validation of the image layers: `Conv2d`, `MaxPool2d`, `AvgPool2d`,
//! `GlobalAvgPool`, with their output shapes computed from the input's.

use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit};

use crate::args::{
    activation, bool_lit, builtin_activation, initializer, int_lit, lit, Args, Errors,
};
use crate::parse::LayerDef;
use crate::validate::{shape_text, Kind, PaddingSpec, Resolved};

/// The input as `[channels, height, width]`, or an error at the layer.
pub fn image(
    layer: &LayerDef,
    name: &str,
    input: &[usize],
    errors: &mut Errors,
) -> Option<[usize; 3]> {
    match input {
        &[c, h, w] => Some([c, h, w]),
        _ => {
            errors.push(
                layer.kind.span(),
                format!(
                    "{name} expects an image input (channels, height, width), but the previous layer outputs {}; declare e.g. `input(1, 28, 28)`",
                    shape_text(input)
                ),
            );
            None
        }
    }
}

/// `3` or `(3, 5)`.
fn pair(e: &Expr, what: &str, errors: &mut Errors) -> Option<(usize, usize)> {
    match e {
        Expr::Tuple(t) if t.elems.len() == 2 => {
            Some((int_lit(&t.elems[0], errors)?, int_lit(&t.elems[1], errors)?))
        }
        Expr::Paren(p) => pair(&p.expr, what, errors),
        _ if lit(e).is_some() => int_lit(e, errors).map(|v| (v, v)),
        _ => {
            errors.push(
                e.span(),
                format!(
                    "{what} must be a number or a pair `(rows, cols)`, found `{}`",
                    e.to_token_stream()
                ),
            );
            None
        }
    }
}

fn positive(
    e: Option<&Expr>,
    v: (usize, usize),
    what: &str,
    errors: &mut Errors,
    span: proc_macro2::Span,
) -> Option<(usize, usize)> {
    if v.0 == 0 || v.1 == 0 {
        errors.push(
            e.map(|e| e.span()).unwrap_or(span),
            format!("{what} must be positive, got {v:?}"),
        );
        return None;
    }
    Some(v)
}

/// `what` as written in `e` (a number or a pair), else `default`; both parts positive.
fn positive_pair(
    e: Option<&Expr>,
    what: &str,
    default: (usize, usize),
    errors: &mut Errors,
    span: proc_macro2::Span,
) -> Option<(usize, usize)> {
    let value = match e {
        Some(e) => pair(e, what, errors)?,
        None => default,
    };
    positive(e, value, what, errors, span)
}

/// Output size along one axis, or `None` when the (dilated) kernel does not fit.
fn out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_total: usize,
) -> Option<usize> {
    let span = dilation * (kernel - 1) + 1;
    (input + pad_total >= span).then(|| (input + pad_total - span) / stride + 1)
}

fn same_total(input: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    let out = input.div_ceil(stride);
    ((out - 1) * stride + dilation * (kernel - 1) + 1).saturating_sub(input)
}

/// Output `(h, w)` of a window, or an error quoting the layer.
#[allow(clippy::too_many_arguments)]
fn window_out(
    layer: &LayerDef,
    name: &str,
    hw: (usize, usize),
    kernel: (usize, usize),
    stride: (usize, usize),
    dilation: (usize, usize),
    pad_total: (usize, usize),
    errors: &mut Errors,
) -> Option<(usize, usize)> {
    match (
        out_len(hw.0, kernel.0, stride.0, dilation.0, pad_total.0),
        out_len(hw.1, kernel.1, stride.1, dilation.1, pad_total.1),
    ) {
        (Some(h), Some(w)) => Some((h, w)),
        _ => {
            errors.push(
                layer.kind.span(),
                format!(
                    "{name}: the {}x{} kernel is larger than its {}x{} input (padding {}x{}); use a smaller kernel or padding",
                    kernel.0, kernel.1, hw.0, hw.1, pad_total.0, pad_total.1
                ),
            );
            None
        }
    }
}

pub fn conv2d(
    layer: &LayerDef,
    args: Args<'_>,
    input: &[usize],
    errors: &mut Errors,
) -> Option<Resolved> {
    let span = layer.kind.span();
    let Some(filters_expr) = args.take_positional_or_named("filters") else {
        errors.push(
            span,
            "Conv2d needs a number of filters and a kernel, e.g. `Conv2d(32, kernel = 3)`",
        );
        return None;
    };
    let filters = int_lit(filters_expr, errors)?;
    if filters == 0 {
        errors.push(
            filters_expr.span(),
            "Conv2d needs at least 1 filter, got `0`",
        );
        return None;
    }
    let kernel_expr = args
        .take_named("kernel")
        .or_else(|| args.take_named("kernel_size"))
        .or_else(|| args.take_positional_or_named("kernel"));
    let Some(kernel_expr) = kernel_expr else {
        errors.push(
            span,
            "Conv2d needs a kernel size, e.g. `Conv2d(32, kernel = 3)`",
        );
        return None;
    };
    let kernel = positive_pair(Some(kernel_expr), "kernel", (1, 1), errors, span)?;
    let stride = positive_pair(args.take_named("stride"), "stride", (1, 1), errors, span)?;
    let dilation = positive_pair(
        args.take_named("dilation"),
        "dilation",
        (1, 1),
        errors,
        span,
    )?;
    let padding = match args.take_named("padding") {
        None => PaddingSpec::Valid,
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => match s.value().as_str() {
            "same" => PaddingSpec::Same,
            "valid" => PaddingSpec::Valid,
            other => {
                errors.push(
                    s.span(),
                    format!("padding must be \"same\", \"valid\" or a number, got \"{other}\""),
                );
                return None;
            }
        },
        Some(e) => {
            let (r, c) = pair(e, "padding", errors)?;
            PaddingSpec::Explicit(r, c)
        }
    };
    let activation = match args.take_named("activation") {
        Some(e) => activation(e, errors)?,
        None => builtin_activation("Linear", "linear", span),
    };
    let use_bias = args
        .take_named("use_bias")
        .map(|e| bool_lit(e, errors))
        .unwrap_or(Some(true))?;
    let kernel_init = args
        .take_named("kernel_init")
        .map(|e| initializer(e, errors))
        .unwrap_or_else(|| Some(quote!(::nn::init::Initializer::GlorotUniform)))?;
    let bias_init = args
        .take_named("bias_init")
        .map(|e| initializer(e, errors))
        .unwrap_or_else(|| Some(quote!(::nn::init::Initializer::Zeros)))?;
    args.finish(
        &[
            "filters",
            "kernel",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "activation",
            "use_bias",
            "kernel_init",
            "bias_init",
        ],
        errors,
    )?;

    let [c, h, w] = image(layer, "Conv2d", input, errors)?;
    let pad_total = match padding {
        PaddingSpec::Valid => (0, 0),
        PaddingSpec::Same => (
            same_total(h, kernel.0, stride.0, dilation.0),
            same_total(w, kernel.1, stride.1, dilation.1),
        ),
        PaddingSpec::Explicit(r, cc) => (2 * r, 2 * cc),
    };
    let (oh, ow) = window_out(
        layer,
        "Conv2d",
        (h, w),
        kernel,
        stride,
        dilation,
        pad_total,
        errors,
    )?;
    let params = filters * c * kernel.0 * kernel.1 + if use_bias { filters } else { 0 };
    let kind = Kind::Conv2d {
        filters,
        kernel,
        stride,
        padding,
        dilation,
        activation,
        use_bias,
        kernel_init,
        bias_init,
    };
    Some((kind, vec![filters, oh, ow], Some(params)))
}

pub fn pool(
    layer: &LayerDef,
    name: &str,
    args: Args<'_>,
    input: &[usize],
    errors: &mut Errors,
) -> Option<Resolved> {
    let span = layer.kind.span();
    let kernel_expr = args
        .take_positional_or_named("kernel")
        .or_else(|| args.take_named("pool_size"));
    let Some(kernel_expr) = kernel_expr else {
        errors.push(
            span,
            format!("{name} needs a window size, e.g. `{name}(2)`"),
        );
        return None;
    };
    let kernel = positive_pair(Some(kernel_expr), "kernel", (1, 1), errors, span)?;
    let stride = positive_pair(args.take_named("stride"), "stride", kernel, errors, span)?;
    let padding = args
        .take_named("padding")
        .map(|e| pair(e, "padding", errors))
        .unwrap_or(Some((0, 0)))?;
    args.finish(&["kernel", "pool_size", "stride", "padding"], errors)?;
    let [c, h, w] = image(layer, name, input, errors)?;
    let (oh, ow) = window_out(
        layer,
        name,
        (h, w),
        kernel,
        stride,
        (1, 1),
        (2 * padding.0, 2 * padding.1),
        errors,
    )?;
    Some((
        Kind::Pool {
            max: name == "MaxPool2d",
            kernel,
            stride,
            padding,
        },
        vec![c, oh, ow],
        Some(0),
    ))
}
