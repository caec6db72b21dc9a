//! Resolves layer and activation names, infers every shape from `input(..)`,
//! and turns each mistake into an error spanned at the offending tokens.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Path, Visibility};

use crate::args::{
    activation, bool_lit, builtin_activation, float_lit, initializer, int_lit, Args, Errors,
};
use crate::builtins::{keras_name, LAYERS};
use crate::parse::{Arg, LayerDef, ModelDef};
use crate::suggest::closest;

/// A validated model, ready to expand.
pub struct Plan {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// `f32` or `f64`.
    pub dtype: Ident,
    pub input: Vec<usize>,
    pub layers: Vec<PlannedLayer>,
    /// Known at expansion time unless a user layer is present.
    pub param_count: Option<usize>,
}

pub struct PlannedLayer {
    pub field: Ident,
    pub span: Span,
    pub output: Vec<usize>,
    pub input: Vec<usize>,
    pub kind: Kind,
    /// The declaration as the user wrote it, for docs.
    pub source: String,
}

/// An activation function resolved to a type and a value of that type.
pub struct ActivationSpec {
    pub ty: TokenStream,
    pub value: TokenStream,
}

pub enum Kind {
    Dense {
        units: usize,
        activation: ActivationSpec,
        use_bias: bool,
        kernel_init: TokenStream,
        bias_init: TokenStream,
    },
    Activation(ActivationSpec),
    Dropout(f64),
    Flatten,
    Conv2d {
        filters: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: PaddingSpec,
        dilation: (usize, usize),
        activation: ActivationSpec,
        use_bias: bool,
        kernel_init: TokenStream,
        bias_init: TokenStream,
    },
    Pool {
        max: bool,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    },
    GlobalAvgPool,
    BatchNorm {
        momentum: f64,
        eps: f64,
    },
    LayerNorm {
        eps: f64,
    },
    Embedding {
        vocab: usize,
        dim: usize,
    },
    User {
        path: Path,
        args: Vec<Expr>,
    },
}

/// Padding of a convolution as declared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PaddingSpec {
    Valid,
    Same,
    Explicit(usize, usize),
}

pub fn plan(def: &ModelDef) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let dtype = def
        .dtype
        .clone()
        .unwrap_or_else(|| Ident::new("f32", Span::call_site()));

    let input = match &def.input {
        None => {
            errors.push(
                def.name.span(),
                format!(
                    "missing `input(..)`: declare the input shape, e.g. `struct {}: input(784) {{ .. }}`",
                    def.name
                ),
            );
            vec![1]
        }
        Some(spec) => {
            if spec.dims.is_empty() {
                errors.push(
                    spec.keyword.span(),
                    "`input()` needs at least one dimension, e.g. `input(784)`",
                );
            }
            spec.dims
                .iter()
                .map(|d| match d.base10_parse::<usize>() {
                    Ok(0) | Err(_) => {
                        errors.push(
                            d.span(),
                            format!("input dimension `{d}` must be a positive integer"),
                        );
                        1
                    }
                    Ok(n) => n,
                })
                .collect()
        }
    };
    if def.layers.is_empty() {
        errors.push(
            def.body_span,
            format!(
                "model `{}` has no layers: add at least one, e.g. `Dense(10)`",
                def.name
            ),
        );
    }

    let explicit: HashSet<String> = def
        .layers
        .iter()
        .filter_map(|l| l.field.as_ref().map(|f| f.to_string()))
        .collect();
    let mut seen = HashSet::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut shape = input.clone();
    let mut layers = Vec::new();
    let mut param_count = Some(0usize);
    for layer in &def.layers {
        let span = layer.kind.span();
        let field = match &layer.field {
            Some(f) => {
                if !seen.insert(f.to_string()) {
                    errors.push(
                        f.span(),
                        format!("duplicate layer name `{f}`: each field needs its own name"),
                    );
                }
                f.clone()
            }
            None => {
                let base = keras_name(&last_segment(&layer.kind));
                let name = auto_name(&base, &mut counters, &explicit);
                seen.insert(name.clone());
                Ident::new(&name, span)
            }
        };
        let in_shape = shape.clone();
        let (kind, out, params) = match resolve(layer, &in_shape, &mut errors) {
            Some(r) => r,
            None => continue,
        };
        if matches!(kind, Kind::Embedding { .. }) && !layers.is_empty() {
            errors.push(
                span,
                "Embedding takes token indices, so it must be the model's first layer",
            );
        }
        param_count = match (param_count, params) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        shape = out.clone();
        layers.push(PlannedLayer {
            field,
            span,
            output: out,
            input: in_shape,
            kind,
            source: layer_source(layer),
        });
    }

    match errors.0 {
        Some(e) => Err(e),
        None => Ok(Plan {
            attrs: def.attrs.clone(),
            vis: def.vis.clone(),
            name: def.name.clone(),
            dtype,
            input,
            layers,
            param_count,
        }),
    }
}

pub(crate) fn last_segment(path: &Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

fn layer_source(layer: &LayerDef) -> String {
    let mut s = layer.kind.to_token_stream().to_string().replace(' ', "");
    if !layer.args.is_empty() {
        let args: Vec<String> = layer
            .args
            .iter()
            .map(|a| match a {
                Arg::Positional(e) => e.to_token_stream().to_string(),
                Arg::Named { name, value } => format!("{name} = {}", value.to_token_stream()),
            })
            .collect();
        s.push_str(&format!("({})", args.join(", ")));
    }
    s
}

/// Keras's naming: `dense`, `dense_1`, `dense_2`, … skipping names the user took.
fn auto_name(base: &str, counters: &mut HashMap<String, usize>, taken: &HashSet<String>) -> String {
    loop {
        let n = counters.entry(base.to_string()).or_insert(0);
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        if !taken.contains(&name) {
            return name;
        }
    }
}

pub(crate) fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("(None, {})", dims.join(", "))
}

/// A layer's kind, output shape and parameter count (if known now).
pub(crate) type Resolved = (Kind, Vec<usize>, Option<usize>);

fn resolve(layer: &LayerDef, input: &[usize], errors: &mut Errors) -> Option<Resolved> {
    let name = last_segment(&layer.kind);
    let is_builtin_name = layer.kind.segments.len() == 1 && LAYERS.contains(&name.as_str());
    if !is_builtin_name {
        if layer.kind.segments.len() == 1 {
            if let Some(s) = closest(&name, LAYERS.iter().copied()) {
                errors.push(
                    layer.kind.span(),
                    format!(
                        "unknown layer `{name}`; did you mean `{s}`? (for your own layer type of this name, write its path, e.g. `self::{name}`)"
                    ),
                );
                return None;
            }
        }
        return resolve_user(layer, input, errors);
    }
    if let Some(out) = &layer.output {
        if let Some(first) = out.first() {
            errors.push(
                first.span(),
                format!(
                    "`-> (..)` declares the output of your own layers; `{name}` computes its own"
                ),
            );
        }
    }
    let args = Args::new(&name, &layer.args);
    match name.as_str() {
        "Dense" => resolve_dense(layer, args, input, errors),
        "Activation" => {
            let act = match args.take_positional_or_named("activation") {
                Some(expr) => activation(expr, errors)?,
                None => {
                    errors.push(layer.kind.span(), "Activation needs a function: `Activation(relu)` or `Activation(\"softmax\")`");
                    return None;
                }
            };
            args.finish(&["activation"], errors)?;
            Some((Kind::Activation(act), input.to_vec(), Some(0)))
        }
        "ReLU" | "Softmax" => {
            args.finish(&[], errors)?;
            let (ty, value) = if name == "ReLU" {
                ("Relu", "relu")
            } else {
                ("Softmax", "softmax")
            };
            Some((
                Kind::Activation(builtin_activation(ty, value, layer.kind.span())),
                input.to_vec(),
                Some(0),
            ))
        }
        "LeakyReLU" | "ELU" => {
            let (param, default, ty) = if name == "LeakyReLU" {
                ("negative_slope", 0.3, "LeakyRelu")
            } else {
                ("alpha", 1.0, "Elu")
            };
            let value = match args.take_positional_or_named(param) {
                Some(e) => float_lit(e, errors)?,
                None => default,
            };
            args.finish(&[param], errors)?;
            let ty_ident = format_ident!("{}", ty);
            let field = format_ident!("{}", param);
            let span = layer.kind.span();
            let spec = ActivationSpec {
                ty: quote_spanned!(span=> ::nn::activation::#ty_ident),
                value: quote_spanned!(span=> ::nn::activation::#ty_ident { #field: #value }),
            };
            Some((Kind::Activation(spec), input.to_vec(), Some(0)))
        }
        "Dropout" => {
            let rate = match args.take_positional_or_named("rate") {
                Some(e) => {
                    let r = float_lit(e, errors)?;
                    if !(0.0..1.0).contains(&r) {
                        errors.push(
                            e.span(),
                            format!(
                                "Dropout rate must be in [0, 1), got {}",
                                e.to_token_stream()
                            ),
                        );
                        return None;
                    }
                    r
                }
                None => {
                    errors.push(
                        layer.kind.span(),
                        "Dropout needs a rate, e.g. `Dropout(0.2)`",
                    );
                    return None;
                }
            };
            args.finish(&["rate"], errors)?;
            Some((Kind::Dropout(rate), input.to_vec(), Some(0)))
        }
        "Flatten" => {
            args.finish(&[], errors)?;
            Some((Kind::Flatten, vec![input.iter().product()], Some(0)))
        }
        "Conv2d" => crate::validate_conv::conv2d(layer, args, input, errors),
        "MaxPool2d" | "AvgPool2d" => crate::validate_conv::pool(layer, &name, args, input, errors),
        "GlobalAvgPool" => {
            args.finish(&[], errors)?;
            let [c, _, _] = crate::validate_conv::image(layer, "GlobalAvgPool", input, errors)?;
            Some((Kind::GlobalAvgPool, vec![c], Some(0)))
        }
        "BatchNorm" => {
            let momentum = args
                .take_named("momentum")
                .map(|e| float_lit(e, errors))
                .unwrap_or(Some(0.1))?;
            let eps = args
                .take_named("eps")
                .map(|e| float_lit(e, errors))
                .unwrap_or(Some(1e-5))?;
            args.finish(&["momentum", "eps"], errors)?;
            Some((
                Kind::BatchNorm { momentum, eps },
                input.to_vec(),
                Some(2 * input[0]),
            ))
        }
        "LayerNorm" => {
            let eps = args
                .take_named("eps")
                .map(|e| float_lit(e, errors))
                .unwrap_or(Some(1e-5))?;
            args.finish(&["eps"], errors)?;
            let n = *input.last().expect("shapes are never empty");
            Some((Kind::LayerNorm { eps }, input.to_vec(), Some(2 * n)))
        }
        "Embedding" => {
            let vocab = args
                .take_positional_or_named("input_dim")
                .map(|e| int_lit(e, errors));
            let dim = args
                .take_positional_or_named("output_dim")
                .map(|e| int_lit(e, errors));
            let (Some(Some(vocab)), Some(Some(dim))) = (vocab, dim) else {
                errors.push(
                    layer.kind.span(),
                    "Embedding needs a vocabulary size and a dimension, e.g. `Embedding(1000, 64)`",
                );
                return None;
            };
            args.finish(&["input_dim", "output_dim"], errors)?;
            let mut out = input.to_vec();
            out.push(dim);
            Some((Kind::Embedding { vocab, dim }, out, Some(vocab * dim)))
        }
        _ => unreachable!("every name in LAYERS is handled"),
    }
}

fn resolve_dense(
    layer: &LayerDef,
    args: Args<'_>,
    input: &[usize],
    errors: &mut Errors,
) -> Option<Resolved> {
    let span = layer.kind.span();
    let units_expr = match args.take_positional_or_named("units") {
        Some(e) => e,
        None => {
            errors.push(span, "Dense needs a number of units, e.g. `Dense(128)`");
            return None;
        }
    };
    let units = int_lit(units_expr, errors)?;
    if units == 0 {
        errors.push(units_expr.span(), "Dense needs at least 1 unit, got `0`");
        return None;
    }
    let activation = match args.take_named("activation") {
        Some(e) => activation(e, errors)?,
        None => builtin_activation("Linear", "linear", span),
    };
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
    if let Some(e) = args.take_named("input") {
        let declared = int_lit(e, errors)?;
        if input != [declared] {
            errors.push(
                e.span(),
                format!(
                    "`input = {declared}` does not match the previous layer's output {}",
                    shape_text(input)
                ),
            );
        }
    }
    args.finish(
        &[
            "units",
            "activation",
            "use_bias",
            "kernel_init",
            "bias_init",
            "input",
        ],
        errors,
    )?;
    if input.len() != 1 {
        errors.push(
            span,
            format!(
                "Dense expects a flat input, but the previous layer outputs {}; add `Flatten` before it",
                shape_text(input)
            ),
        );
    }
    // After a shape error the layer's own output is still known: later layers
    // are checked against it, so one mistake reports one error.
    let params = input.iter().product::<usize>() * units + if use_bias { units } else { 0 };
    Some((
        Kind::Dense {
            units,
            activation,
            use_bias,
            kernel_init,
            bias_init,
        },
        vec![units],
        Some(params),
    ))
}

fn resolve_user(layer: &LayerDef, input: &[usize], errors: &mut Errors) -> Option<Resolved> {
    let mut args = Vec::new();
    for a in &layer.args {
        match a {
            Arg::Positional(e) => args.push(e.clone()),
            Arg::Named { name, .. } => {
                errors.push(
                    name.span(),
                    format!(
                        "your own layer `{}` takes its constructor's arguments in order; named argument `{name}` is not supported",
                        last_segment(&layer.kind)
                    ),
                );
                return None;
            }
        }
    }
    let out = match &layer.output {
        Some(dims) => {
            let mut out = Vec::new();
            for d in dims {
                match d.base10_parse::<usize>() {
                    Ok(n) if n > 0 => out.push(n),
                    _ => {
                        errors.push(d.span(), "output dimensions must be positive integers");
                        return None;
                    }
                }
            }
            out
        }
        None => input.to_vec(),
    };
    Some((
        Kind::User {
            path: layer.kind.clone(),
            args,
        },
        out,
        None,
    ))
}
