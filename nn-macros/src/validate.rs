//! Checks the model as a whole (element type, input shape, field names) and
//! walks its layers through their rules (`crate::layers`), inferring every
//! shape from `input(..)`; each mistake becomes an error spanned at the
//! offending syntax.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Path, Visibility};

use crate::builtins::keras_name;
use crate::errors::{Errors, Mistake};
use crate::layers::{self, Parts};
use crate::parse::{Arg, InputSpec, LayerDef, ModelDef};

/// A validated model, ready to expand.
pub struct Plan {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// What runtime messages call the model: its name, or for a block's
    /// hidden chain the outer layer it belongs to.
    pub label: String,
    /// A block's hidden chain (a `Residual`'s body or shortcut): a `Layer`
    /// and a `Sublayer`, without the `Model` API.
    pub hidden: bool,
    /// `f32` or `f64`.
    pub dtype: Ident,
    pub input: Vec<usize>,
    /// At least one.
    pub layers: Vec<PlannedLayer>,
    pub params: Params,
}

/// What is known of a model's parameter count when it is declared.
#[derive(Clone, Default)]
pub struct Params {
    /// The built-in layers' parameters.
    pub known: usize,
    /// Nested models, whose `Sublayer::PARAM_COUNT` adds to `known`.
    pub nested: Vec<TokenStream>,
    /// Whether a layer of the user's own is present (counted at run time).
    pub unknown: bool,
}

impl Params {
    pub(crate) fn add(&mut self, other: Params) {
        self.known = self.known.saturating_add(other.known);
        self.nested.extend(other.nested);
        self.unknown |= other.unknown;
    }
}

#[derive(Clone)]
pub struct PlannedLayer {
    pub field: Ident,
    pub span: Span,
    pub output: Vec<usize>,
    pub input: Vec<usize>,
    /// The field's type.
    pub ty: TokenStream,
    /// The expression that builds the layer, with `rng` in scope.
    pub ctor: TokenStream,
    /// Whether to check the layer's own `output_shape` when the model is built.
    pub check_shape: bool,
    /// A nested model or block: items beside the model and summary rows.
    pub parts: Option<Parts>,
    /// The declaration as the user wrote it, for docs.
    pub source: String,
}

/// The element type: `#[dtype(..)]` if it is `f32` or `f64`, else `f32`.
pub fn dtype(def: &ModelDef) -> Ident {
    match &def.dtype {
        Some(t) if t == "f32" || t == "f64" => t.clone(),
        _ => Ident::new("f32", Span::call_site()),
    }
}

pub fn plan(def: &ModelDef) -> syn::Result<Plan> {
    let mut errors = Errors::default();
    let plan = check(def, &mut errors);
    errors.finish(plan)
}

/// The plan, with every mistake in `errors` (the plan is meaningless if any).
pub(crate) fn check(def: &ModelDef, errors: &mut Errors) -> Plan {
    if let Some(t) = &def.dtype {
        if t != "f32" && t != "f64" {
            errors.push(
                Mistake::DtypeNotFloat,
                t,
                format!("#[dtype({t})]: the element type must be f32 or f64"),
            );
        }
    }
    let dtype = dtype(def);
    let input = input_shape(def, errors);
    if def.layers.is_empty() {
        errors.push_at(
            Mistake::EmptyModel,
            def.body_span,
            format!(
                "model `{}` has no layers: add at least one, e.g. `Dense(10)`",
                def.name
            ),
        );
    }
    let cx = ChainCx {
        model: &def.name,
        label: def.name.to_string(),
        vis: &def.vis,
        dtype: &dtype,
        base_index: 0,
        reserved: &[],
    };
    let (layers, params) = chain(&cx, &def.layers, &input, errors);
    Plan {
        attrs: def.attrs.clone(),
        vis: def.vis.clone(),
        name: def.name.clone(),
        label: def.name.to_string(),
        hidden: false,
        dtype,
        input,
        layers,
        params,
    }
}

/// Where a chain of layers stands: a model's, or a block's inside one.
pub(crate) struct ChainCx<'a> {
    /// The struct the chain becomes (named after it: a block's hidden chains).
    pub model: &'a Ident,
    /// How runtime and compile-time messages name the chain's model.
    pub label: String,
    pub vis: &'a Visibility,
    pub dtype: &'a Ident,
    /// The position of the chain's first layer in the model (a block's body
    /// takes the block's input).
    pub base_index: usize,
    /// Field names the chain cannot use, with why (`shortcut` in a
    /// `Residual`'s body).
    pub reserved: &'a [(&'a str, &'a str)],
}

/// Walks `defs` from `input`, naming each layer and resolving it through its
/// rule; every mistake goes to `errors`.
pub(crate) fn chain(
    cx: &ChainCx<'_>,
    defs: &[LayerDef],
    input: &[usize],
    errors: &mut Errors,
) -> (Vec<PlannedLayer>, Params) {
    let mut explicit: HashSet<String> = defs
        .iter()
        .filter_map(|l| l.field.as_ref().map(|f| f.unraw().to_string()))
        .collect();
    explicit.extend(cx.reserved.iter().map(|(n, _)| n.to_string()));
    let mut seen = HashSet::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut shape = input.to_vec();
    let mut planned = Vec::new();
    let mut params = Params::default();
    for (index, layer) in defs.iter().enumerate() {
        let span = layer.kind.span();
        let field = match &layer.field {
            Some(f) => {
                let name = f.unraw().to_string();
                if let Some((_, why)) = cx.reserved.iter().find(|(n, _)| *n == name) {
                    errors.push(
                        Mistake::ReservedLayerName,
                        f,
                        format!("layer name `{f}` is taken: {why}; choose another"),
                    );
                } else if !seen.insert(name) {
                    errors.push(
                        Mistake::DuplicateField,
                        f,
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
        let at = layers::Position {
            model: cx.model,
            label: &cx.label,
            vis: cx.vis,
            field: &field,
            index: cx.base_index + index,
        };
        let Some(r) = layers::resolve(layer, &shape, cx.dtype, &at, errors) else {
            continue;
        };
        match r.params {
            Some(n) => params.known = params.known.saturating_add(n),
            None => params.unknown = true,
        }
        if let Some(p) = &r.parts {
            params.add(p.params.clone());
        }
        let in_shape = std::mem::replace(&mut shape, r.output.clone());
        planned.push(PlannedLayer {
            field,
            span,
            output: r.output,
            input: in_shape,
            ty: r.ty,
            ctor: r.ctor,
            check_shape: r.check_shape,
            parts: r.parts,
            source: layer_source(layer),
        });
    }
    (planned, params)
}

/// One sample's input shape; after a mistake, a stand-in so the layers can
/// still be checked.
fn input_shape(def: &ModelDef, errors: &mut Errors) -> Vec<usize> {
    let Some(spec) = &def.input else {
        errors.push(
            Mistake::MissingInput,
            &def.name,
            format!(
                "missing `input(..)`: declare the input shape, e.g. `struct {}: input(784) {{ .. }}`",
                def.name
            ),
        );
        return vec![1];
    };
    spec_dims(spec, &format!("{}:", def.name), errors)
}

/// The shape an `input(..)` declares; after a mistake, a stand-in so the
/// layers can still be checked. `after` is what precedes it (`Mlp:`), for
/// messages.
pub(crate) fn spec_dims(spec: &InputSpec, after: &str, errors: &mut Errors) -> Vec<usize> {
    if spec.keyword != "input" {
        errors.push(
            Mistake::InputKeyword,
            &spec.keyword,
            format!(
                "expected `input(..)` after `{after}`, found `{}`",
                spec.keyword
            ),
        );
    }
    if spec.dims.is_empty() {
        errors.push(
            Mistake::EmptyInputShape,
            spec,
            "`input()` needs at least one dimension, e.g. `input(784)`",
        );
        return vec![1];
    }
    spec.dims
        .iter()
        .map(|d| match d.base10_parse::<usize>() {
            Ok(0) | Err(_) => {
                errors.push(
                    Mistake::ZeroInputDimension,
                    d,
                    format!("input dimension `{d}` must be a positive integer"),
                );
                1
            }
            Ok(n) => n,
        })
        .collect()
}

/// The last segment of a path as a plain name (`r#type` → `type`).
pub(crate) fn last_segment(path: &Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.unraw().to_string())
        .unwrap_or_default()
}

pub(crate) fn layer_source(layer: &LayerDef) -> String {
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
    if layer.body.is_some() {
        s.push_str(" { .. }");
    }
    s
}

/// Keras's naming: `dense`, `dense_1`, `dense_2`, … skipping names the user took.
pub(crate) fn auto_name(
    base: &str,
    counters: &mut HashMap<String, usize>,
    taken: &HashSet<String>,
) -> String {
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

/// `(None, 1, 28, 28)`, as Keras prints a shape with its batch axis.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("(None, {})", dims.join(", "))
}
