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
use crate::layers;
use crate::parse::{Arg, LayerDef, ModelDef};

/// A validated model, ready to expand.
pub struct Plan {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    /// `f32` or `f64`.
    pub dtype: Ident,
    pub input: Vec<usize>,
    /// At least one.
    pub layers: Vec<PlannedLayer>,
    /// Known at expansion time unless a user layer is present.
    pub param_count: Option<usize>,
}

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

    let explicit: HashSet<String> = def
        .layers
        .iter()
        .filter_map(|l| l.field.as_ref().map(|f| f.to_string()))
        .collect();
    let mut seen = HashSet::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut shape = input.clone();
    let mut planned = Vec::new();
    let mut param_count = Some(0usize);
    for (index, layer) in def.layers.iter().enumerate() {
        let span = layer.kind.span();
        let field = match &layer.field {
            Some(f) => {
                if !seen.insert(f.to_string()) {
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
        let Some(r) = layers::resolve(layer, &shape, &dtype, index, errors) else {
            continue;
        };
        param_count = param_count.zip(r.params).map(|(a, b)| a.saturating_add(b));
        let in_shape = std::mem::replace(&mut shape, r.output.clone());
        planned.push(PlannedLayer {
            field,
            span,
            output: r.output,
            input: in_shape,
            ty: r.ty,
            ctor: r.ctor,
            check_shape: r.check_shape,
            source: layer_source(layer),
        });
    }

    Plan {
        attrs: def.attrs.clone(),
        vis: def.vis.clone(),
        name: def.name.clone(),
        dtype,
        input,
        layers: planned,
        param_count,
    }
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
    if spec.keyword != "input" {
        errors.push(
            Mistake::InputKeyword,
            &spec.keyword,
            format!(
                "expected `input(..)` after `{}:`, found `{}`",
                def.name, spec.keyword
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

/// `(None, 1, 28, 28)`, as Keras prints a shape with its batch axis.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("(None, {})", dims.join(", "))
}
