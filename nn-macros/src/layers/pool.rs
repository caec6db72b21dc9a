//! `MaxPool2d(kernel, stride = .., padding = ..)` (a number, a pair,
//! `"valid"` or Keras's `"same"`), `AvgPool2d(..)` (the stride defaults to the
//! kernel, as in Keras and PyTorch) and `GlobalAvgPool`, over a `(channels,
//! height, width)` input.

use quote::{quote, quote_spanned};

use super::window::{self, image, positive_pair, Padding, Window};
use super::{LayerCx, Resolved};
use crate::args::Args;
use crate::errors::{Errors, Mistake};

fn pool(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors, max: bool) -> Option<Resolved> {
    let name = cx.name;
    let kernel_expr = args
        .take_positional_or_named("kernel")
        .or_else(|| args.take_named("pool_size"));
    let Some(kernel_expr) = kernel_expr else {
        args.missing(
            &["kernel", "pool_size"],
            (Mistake::PoolWithoutWindow, cx.kind),
            format!("{name} needs a window size, e.g. `{name}(2)`"),
            errors,
        );
        return None;
    };
    let kernel = positive_pair(cx, Some(kernel_expr), "kernel", (1, 1), errors)?;
    let stride = positive_pair(cx, args.take_named("stride"), "stride", kernel, errors)?;
    let padding = match args.take_named("padding") {
        Some(e) => {
            let padding = window::padding(e, errors)?;
            match padding {
                // PyTorch's rule: a window lying in the padding alone would
                // be −∞ (max) or 0 (average), from no input at all.
                Padding::Explicit(ph, pw) if 2 * ph > kernel.0 || 2 * pw > kernel.1 => {
                    errors.push(
                        Mistake::PoolPaddingOverHalfWindow,
                        e,
                        format!(
                            "{name}: padding {:?} is more than half the window {kernel:?}, so some \
                             windows would cover padding alone (PyTorch refuses it too)",
                            (ph, pw)
                        ),
                    );
                    return None;
                }
                // Keras's average leaves the padding out of the divisor;
                // this one counts it (PyTorch's default): refuse rather than
                // differ.
                Padding::Same if !max => {
                    errors.push(
                        Mistake::AvgPoolSamePadding,
                        e,
                        format!(
                            "{name}: padding = \"same\" would count the padding in each mean, where \
                             Keras's AveragePooling2D leaves it out; use \"valid\" or a number \
                             (padding counted, as PyTorch's count_include_pad)"
                        ),
                    );
                    return None;
                }
                other => other,
            }
        }
        None => Padding::Valid,
    };
    let [c, h, w] = image(cx, errors)?;
    let geometry = Window {
        kernel,
        stride,
        dilation: (1, 1),
        padding,
    };
    let (oh, ow) = window::output(cx, (h, w), &geometry, errors)?;

    let span = cx.span;
    let t = cx.dtype;
    let ((kh, kw), (sh, sw)) = (kernel, stride);
    let kind = if max { quote!(Max) } else { quote!(Avg) };
    Some(Resolved {
        output: vec![c, oh, ow],
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::Pool2d<#t>),
        ctor: match padding {
            // Keras's "same" (an odd total's extra row and column at the
            // bottom and right), from the input's size.
            Padding::Same => quote_spanned!(span=>
                ::nn::layers::Pool2d::same(::nn::layers::PoolKind::#kind, (#kh, #kw), (#sh, #sw), (#h, #w))
            ),
            Padding::Valid => quote_spanned!(span=>
                ::nn::layers::Pool2d::new(::nn::layers::PoolKind::#kind, (#kh, #kw), (#sh, #sw), (0, 0))
            ),
            Padding::Explicit(ph, pw) => quote_spanned!(span=>
                ::nn::layers::Pool2d::new(::nn::layers::PoolKind::#kind, (#kh, #kw), (#sh, #sw), (#ph, #pw))
            ),
        },
        check_shape: false,
        parts: None,
    })
}

pub(crate) fn max_pool(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    pool(cx, args, errors, true)
}

pub(crate) fn avg_pool(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    pool(cx, args, errors, false)
}

/// `GlobalAvgPool`: the mean of each channel.
pub(crate) fn global_avg_pool(
    cx: &LayerCx<'_>,
    _args: &Args<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let [c, _, _] = image(cx, errors)?;
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output: vec![c],
        params: Some(0),
        ty: quote_spanned!(span=> ::nn::layers::GlobalAvgPool<#t>),
        ctor: quote_spanned!(span=> ::nn::layers::GlobalAvgPool::new()),
        check_shape: false,
        parts: None,
    })
}
