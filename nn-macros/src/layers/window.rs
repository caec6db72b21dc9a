//! What the image layers (`Conv2d`, the pools) share: the image input check,
//! `3`-or-`(3, 5)` arguments, the `padding` argument, and the window's output size, computed by
//! `nn_spec::shapes` as the kernels compute it at run time.

use syn::{Expr, ExprLit, Lit};

use nn_spec::shapes::{same_padding_total, window_output_len};

use super::LayerCx;
use crate::args::{int_lit, signed_lit, source};
use crate::errors::{Errors, Mistake};
use crate::validate::shape_text;

/// The input as `[channels, height, width]`, or an error at the layer.
pub(crate) fn image(cx: &LayerCx<'_>, errors: &mut Errors) -> Option<[usize; 3]> {
    match cx.input {
        &[c, h, w] => Some([c, h, w]),
        _ => {
            // First, the fix is the model's input; after a flat layer, the
            // order of the layers.
            let (what, fix) = match cx.index {
                0 => (
                    "its input is",
                    "declare an image input, e.g. `input(1, 28, 28)`",
                ),
                _ => (
                    "the previous layer outputs",
                    "image layers go before `Flatten` and `Dense`",
                ),
            };
            errors.push(
                Mistake::NotAnImage,
                cx.kind,
                format!(
                    "{} expects an image input (channels, height, width), but {what} {}; {fix}",
                    cx.name,
                    shape_text(cx.input)
                ),
            );
            None
        }
    }
}

/// `3` or `(3, 5)`.
pub(crate) fn pair(e: &Expr, what: &str, errors: &mut Errors) -> Option<(usize, usize)> {
    match e {
        Expr::Tuple(t) if t.elems.len() == 2 => {
            let mut it = t.elems.iter();
            let (a, b) = (it.next()?, it.next()?);
            Some((int_lit(a, errors)?, int_lit(b, errors)?))
        }
        Expr::Paren(p) => pair(&p.expr, what, errors),
        Expr::Group(g) => pair(&g.expr, what, errors),
        _ if signed_lit(e).is_some() => int_lit(e, errors).map(|v| (v, v)),
        _ => {
            errors.push(
                Mistake::NotAPair,
                e,
                format!(
                    "{what} must be a number or a pair `(rows, cols)`, found `{}`",
                    source(e)
                ),
            );
            None
        }
    }
}

/// `what` as written in `e` (a number or a pair), else `default`; both parts
/// must be positive.
pub(crate) fn positive_pair(
    cx: &LayerCx<'_>,
    e: Option<&Expr>,
    what: &str,
    default: (usize, usize),
    errors: &mut Errors,
) -> Option<(usize, usize)> {
    let value = match e {
        Some(e) => pair(e, what, errors)?,
        None => default,
    };
    if value.0 == 0 || value.1 == 0 {
        let name = cx.name;
        match e {
            Some(e) => errors.push(
                Mistake::ZeroWindow,
                e,
                format!("{name}: {what} must be positive, got `{}`", source(e)),
            ),
            // A default taken from another argument (a pool's stride is its kernel).
            None => errors.push(
                Mistake::ZeroWindow,
                cx.kind,
                format!("{name}: {what} must be positive, got {value:?}"),
            ),
        }
        return None;
    }
    Some(value)
}

/// Padding of a window along both axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Padding {
    /// None.
    Valid,
    /// Keras's and PyTorch's `"same"`: the output has `ceil(input / stride)` entries.
    Same,
    /// `(rows, cols)` on each side.
    Explicit(usize, usize),
}

/// A window's geometry, all parts positive.
pub(crate) struct Window {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    pub padding: Padding,
}

/// Total padding along one axis.
fn pad_total(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    explicit: usize,
) -> Option<usize> {
    match padding {
        Padding::Valid => Some(0),
        // `same_padding_total` adds the dilated kernel to the input: keep it
        // in range (a kernel that large fails below anyway).
        Padding::Same => {
            dilation
                .checked_mul(kernel)?
                .checked_add(input)?
                .checked_add(1)?;
            Some(same_padding_total(input, kernel, stride, dilation))
        }
        Padding::Explicit(..) => explicit.checked_mul(2),
    }
}

/// The output `(height, width)` of `window` over `(h, w)`, or an error at the
/// layer when the (dilated) kernel does not fit.
pub(crate) fn output(
    cx: &LayerCx<'_>,
    (h, w): (usize, usize),
    window: &Window,
    errors: &mut Errors,
) -> Option<(usize, usize)> {
    let Window {
        kernel,
        stride,
        dilation,
        padding,
    } = *window;
    let (er, ec) = match padding {
        Padding::Explicit(r, c) => (r, c),
        _ => (0, 0),
    };
    let ph = pad_total(h, kernel.0, stride.0, dilation.0, padding, er);
    let pw = pad_total(w, kernel.1, stride.1, dilation.1, padding, ec);
    let out = ph.zip(pw).and_then(|(ph, pw)| {
        window_output_len(h, kernel.0, stride.0, dilation.0, ph)
            .zip(window_output_len(w, kernel.1, stride.1, dilation.1, pw))
    });
    if out.is_none() {
        errors.push(
            Mistake::WindowLargerThanInput,
            cx.kind,
            format!(
                "{}: the {}x{} kernel is larger than its {}x{} input (padding {}x{}); use a smaller kernel or padding",
                cx.name,
                kernel.0,
                kernel.1,
                h,
                w,
                ph.unwrap_or(usize::MAX),
                pw.unwrap_or(usize::MAX)
            ),
        );
    }
    out
}

/// `"same"`, `"valid"`, `1` or `(1, 2)`.
pub(crate) fn padding(e: &Expr, errors: &mut Errors) -> Option<Padding> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match s.value().as_str() {
            "same" => Some(Padding::Same),
            "valid" => Some(Padding::Valid),
            other => {
                errors.push(
                    Mistake::BadPaddingString,
                    s,
                    format!("padding must be \"same\", \"valid\" or a number, got \"{other}\""),
                );
                None
            }
        },
        Expr::Group(g) => padding(&g.expr, errors),
        _ => {
            let (r, c) = pair(e, "padding", errors)?;
            Some(Padding::Explicit(r, c))
        }
    }
}
