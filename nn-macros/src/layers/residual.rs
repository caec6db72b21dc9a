//! `Residual { layers… }`: a skip connection, `y = x + f(x)` with `f` the
//! body's chain; `Residual(shortcut = Conv2d(32, kernel = 1, stride = 2)) { .. }`
//! (one layer) or `Residual(shortcut = { Conv2d(..), BatchNorm }) { .. }`
//! (a chain) projects the input where the body changes its shape:
//! `y = shortcut(x) + f(x)`. `activation = relu` applies a function to the
//! sum, `y = relu(x + f(x))`, as torchvision's `BasicBlock` ends.
//!
//! The body and the shortcut are chains like a model's, validated by the
//! same rules; each becomes a hidden `sequential!`-style struct (named after
//! the model and the field, `Net__res`, `Net__res__shortcut`) inside an
//! `nn::layers::Residual`. Parameter names: the body's layers directly under
//! the block (`res.conv2d.weight`), the shortcut's under `shortcut.`
//! (`res.shortcut.conv2d.weight`), as torchvision's `BasicBlock` keeps its
//! convolutions as attributes and its projection as `downsample`.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::{Expr, Ident};

use super::{LayerCx, Parts, Resolved};
use crate::activation_fn;
use crate::args::{source, Args};
use crate::errors::{Errors, Mistake};
use crate::parse::{layer_list, LayerDef};
use crate::validate::{chain, shape_text, ChainCx, Params, Plan, PlannedLayer};

/// Why a body layer cannot be called `shortcut`.
const RESERVED: &[(&str, &str)] = &[(
    "shortcut",
    "the parameters of a Residual's shortcut are named `shortcut.*`",
)];

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let shortcut = args.take_named("shortcut");
    // Checked before the body so that both mistakes are reported at once.
    let activation_arg = args.take_named("activation");
    let activation = match activation_arg {
        Some(e) => activation_fn::resolve(e, errors),
        None => Some(activation_fn::linear(cx.span)),
    };
    // The suggestions below keep the activation written.
    let then = activation_arg
        .map(|e| format!(", activation = {}", source(e)))
        .unwrap_or_default();
    let body = match cx.body() {
        Some(b) if !b.layers.is_empty() => b,
        other => {
            let head = match activation_arg {
                Some(e) => format!("Residual(activation = {})", source(e)),
                None => String::from("Residual"),
            };
            let msg = format!("`Residual` needs a body of layers, `{head} {{ Dense(64, activation = relu), Dense(64) }}`: it computes `y = x + f(x)`, `f` its body");
            match other {
                Some(b) => errors.push_at(Mistake::ResidualWithoutBody, b.span(), msg),
                None => errors.push(Mistake::ResidualWithoutBody, cx.kind, msg),
            }
            return None;
        }
    };
    let (t, span) = (cx.dtype, cx.span);
    let label = cx.label("Residual");
    let body_name = Ident::new(&format!("{}__{}", cx.at.model, cx.at.field), span);
    let body = sub_chain(
        cx,
        &body_name,
        label.clone(),
        &body.layers,
        RESERVED,
        errors,
    )?;
    let output = body.output().to_vec();

    let shortcut = match shortcut {
        Some(e) => {
            let layers = shortcut_layers(e, errors)?;
            let name = Ident::new(&format!("{body_name}__shortcut"), span);
            let s = sub_chain(cx, &name, format!("{label} shortcut"), &layers, &[], errors)?;
            if s.output() != output {
                errors.push(
                    Mistake::ShortcutShapeMismatch,
                    e,
                    format!(
                        "the shortcut `{}` outputs {} but the body {}: `y = shortcut(x) + f(x)` adds them, so their shapes must agree",
                        source(e),
                        shape_text(s.output()),
                        shape_text(&output)
                    ),
                );
                return None;
            }
            Some(s)
        }
        None => {
            if output != cx.input {
                errors.push(
                    Mistake::ResidualShapeChange,
                    cx.kind,
                    format!(
                        "`Residual` adds its input {} to its body's output {}, but their shapes differ; project the input with a shortcut: `Residual(shortcut = {}{then}) {{ .. }}`",
                        shape_text(cx.input),
                        shape_text(&output),
                        projection(cx.input, &output)
                    ),
                );
                return None;
            }
            None
        }
    };

    let activation = activation?;
    let mut params = body.params.clone();
    let mut items = expand(cx, &body);
    let rows_out = quote!(&[#(#output),*]);
    let (act, act_value) = (&activation.ty, &activation.value);
    let (ty, ctor, shortcut_rows) = match &shortcut {
        Some(s) => {
            params.add(s.params.clone());
            items.extend(expand(cx, s));
            let name = &s.name;
            (
                quote_spanned!(span=> ::nn::layers::Residual<#t, #body_name, #name, #act>),
                quote_spanned!(span=> ::nn::layers::Residual::with_shortcut(#body_name::new(rng), #name::new(rng)).with_activation(#act_value)),
                quote! {
                    if let ::core::option::Option::Some(s) = &__nn_layer.shortcut {
                        rows.push(::nn::summary::SummaryRow {
                            name: ::std::string::String::from("shortcut"),
                            type_name: ::std::string::String::from(::nn::layers::Layer::<#t>::type_name(s)),
                            output_shape: ::std::vec::Vec::from(#rows_out as &[usize]),
                            params: ::nn::layers::Layer::<#t>::param_count(s)
                                + ::nn::layers::Layer::<#t>::non_trainable_count(s),
                            children: <#name as ::nn::layers::Sublayer<#t>>::summary_rows(s),
                            connected_to: ::std::vec::Vec::new(),
                        });
                    }
                },
            )
        }
        None => (
            quote_spanned!(span=> ::nn::layers::Residual<#t, #body_name, ::nn::layers::Identity<#t>, #act>),
            quote_spanned!(span=> ::nn::layers::Residual::new(#body_name::new(rng)).with_activation(#act_value)),
            TokenStream::new(),
        ),
    };
    let rows = quote! {{
        let mut rows = <#body_name as ::nn::layers::Sublayer<#t>>::summary_rows(&__nn_layer.body);
        #shortcut_rows
        rows
    }};
    let own = (!params.unknown).then_some(params.known);
    let output = activation.output(&output, errors)?;
    Some(Resolved {
        output,
        params: own,
        ty,
        ctor,
        check_shape: false,
        parts: Some(Parts {
            items,
            rows,
            params: Params {
                known: 0,
                nested: params.nested,
                unknown: false,
            },
        }),
    })
}

/// A block's chain, validated from the block's input.
struct SubChain {
    name: Ident,
    label: String,
    layers: Vec<PlannedLayer>,
    params: Params,
}

impl SubChain {
    fn output(&self) -> &[usize] {
        self.layers.last().map_or(&[][..], |l| &l.output[..])
    }
}

/// Validates `defs` as the chain `name` from the block's input; `None` if a
/// layer was rejected (reported), since the chain's output is then unknown.
fn sub_chain(
    cx: &LayerCx<'_>,
    name: &Ident,
    label: String,
    defs: &[LayerDef],
    reserved: &[(&str, &str)],
    errors: &mut Errors,
) -> Option<SubChain> {
    let chain_cx = ChainCx {
        model: name,
        label: label.clone(),
        vis: cx.at.vis,
        dtype: cx.dtype,
        base_index: cx.index,
        reserved,
    };
    let (layers, params) = chain(&chain_cx, defs, cx.input, errors);
    (layers.len() == defs.len() && !layers.is_empty()).then(|| SubChain {
        name: name.clone(),
        label,
        layers,
        params,
    })
}

/// The hidden struct of a block's chain.
fn expand(cx: &LayerCx<'_>, chain: &SubChain) -> TokenStream {
    crate::expand::model(&Plan {
        attrs: Vec::new(),
        vis: cx.at.vis.clone(),
        name: chain.name.clone(),
        label: chain.label.clone(),
        hidden: true,
        dtype: cx.dtype.clone(),
        input: cx.input.to_vec(),
        layers: chain.layers.clone(),
        params: chain.params.clone(),
    })
}

/// The layers of `shortcut = ..`: one layer, or a braced chain of them.
fn shortcut_layers(e: &Expr, errors: &mut Errors) -> Option<Vec<LayerDef>> {
    let parsed = match e {
        Expr::Verbatim(tokens) => match tokens.clone().into_iter().next() {
            Some(TokenTree::Group(g)) => layer_list.parse2(g.stream()),
            _ => syn::parse2::<LayerDef>(tokens.clone()).map(|l| vec![l]),
        },
        _ => syn::parse2::<LayerDef>(e.to_token_stream()).map(|l| vec![l]),
    };
    match parsed {
        Ok(layers) if !layers.is_empty() => Some(layers),
        other => {
            let why = match other {
                Err(err) => format!(" ({err})"),
                Ok(_) => String::new(),
            };
            errors.push(
                Mistake::ShortcutNotALayer,
                e,
                format!(
                    "`shortcut = {}` is not a layer{why}: write one, `shortcut = Conv2d(64, kernel = 1, stride = 2)`, or several in braces, `shortcut = {{ Conv2d(64, kernel = 1), BatchNorm }}`",
                    source(e)
                ),
            );
            None
        }
    }
}

/// A projection from `input` to `output` to suggest: for images the
/// smallest unpadded convolution (kernel 1 to 3, one stride for both axes)
/// that gives the output's size, for features `Dense`.
fn projection(input: &[usize], output: &[usize]) -> String {
    match (input, output) {
        ([_, h, w], [c, oh, ow]) => {
            // An unpadded convolution's size: `(in − k) / s + 1`, rounded down.
            let fits = |k: usize, s: usize, i: usize, o: usize| i >= k && (i - k) / s + 1 == o;
            let found = (1..=3).find_map(|k| {
                (1..=(*h).max(*w))
                    .find_map(|s| (fits(k, s, *h, *oh) && fits(k, s, *w, *ow)).then_some((k, s)))
            });
            match found {
                Some((k, 1)) => format!("Conv2d({c}, kernel = {k})"),
                Some((k, s)) => format!("Conv2d({c}, kernel = {k}, stride = {s})"),
                None => format!(
                    "<a layer from {} to {}>",
                    shape_text(input),
                    shape_text(output)
                ),
            }
        }
        (_, [n]) => format!("Dense({n})"),
        _ => format!(
            "<a layer from {} to {}>",
            shape_text(input),
            shape_text(output)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::projection;

    /// Each suggestion gives the output's size (`(in − k) / s + 1`).
    #[test]
    fn suggested_projections_fit_the_shapes() {
        assert_eq!(
            projection(&[16, 8, 8], &[32, 4, 4]),
            "Conv2d(32, kernel = 1, stride = 2)"
        );
        assert_eq!(
            projection(&[16, 8, 8], &[32, 8, 8]),
            "Conv2d(32, kernel = 1)"
        );
        // 7 → 4: (7 − 1) / 2 + 1, where 7 / 4 is no whole factor.
        assert_eq!(
            projection(&[32, 7, 7], &[64, 4, 4]),
            "Conv2d(64, kernel = 1, stride = 2)"
        );
        // 15 → 7: no stride of a 1 × 1 kernel gives 7 ((15 − 1) / 2 + 1 =
        // 8); a 2 × 2 one does, (15 − 2) / 2 + 1.
        assert_eq!(
            projection(&[8, 15, 15], &[8, 7, 7]),
            "Conv2d(8, kernel = 2, stride = 2)"
        );
        // 14 × 7 → 7 × 3: stride 2 both ways, (14 − 1) / 2 + 1 = 7 and
        // (7 − 2) / 2 + 1 = 3 need a kernel of 2 (1 gives 4 columns).
        assert_eq!(
            projection(&[8, 14, 7], &[8, 7, 3]),
            "Conv2d(8, kernel = 2, stride = 2)"
        );
        // Growing: no convolution.
        assert_eq!(
            projection(&[8, 4, 4], &[8, 8, 8]),
            "<a layer from (None, 8, 4, 4) to (None, 8, 8, 8)>"
        );
        assert_eq!(projection(&[64], &[32]), "Dense(32)");
    }
}
