//! The built-in layers, one module each, registered in [`BUILTINS`].
//!
//! A layer's module owns everything the macro knows about it: the arguments it
//! takes and their defaults, its output shape and parameter count, the type of
//! its field and the expression that constructs it (both spanned at the layer,
//! so a type error points at it). Validation (`crate::validate`) walks the
//! model through this table, code generation (`crate::expand`) pastes the
//! tokens; neither names a layer.
//!
//! To add a built-in layer: write `layers/<name>.rs` with a [`Rule`] function
//! and add one line to [`BUILTINS`].
//!
//! A path that is not a built-in is the user's: a call of a layer's
//! constructor, `MyLayer(64)` (`user`), or without parentheses a nested
//! `sequential!` model, `Block` (`nested`).

pub(crate) mod activation;
mod attention;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod nested;
mod norm;
mod patches;
mod pool;
mod recurrent;
mod residual;
mod sequence;
mod tape;
mod user;
mod window;

use std::cell::Cell;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Ident, Path, Visibility};

use crate::args::Args;
use crate::errors::{Errors, Mistake};
use crate::parse::{Body, LayerDef, OutputSpec};
use crate::validate::{last_segment, Params};
use nn_spec::suggest::closest;

/// What a layer's rule gets to know about where it stands.
pub(crate) struct LayerCx<'a> {
    /// The layer's name as written (`Dense`).
    pub name: &'a str,
    /// The layer's path as written, to span errors about the layer.
    pub kind: &'a Path,
    /// The span given to the generated tokens (the path's first token).
    pub span: Span,
    /// One sample's input shape (never empty).
    pub input: &'a [usize],
    /// The element type, `f32` or `f64`.
    pub dtype: &'a Ident,
    /// The layer's position in the model, 0 for the first.
    pub index: usize,
    /// The model the layer is in, and the layer's field.
    pub at: &'a Position<'a>,
    /// `-> (64)`, if written; only a rule that reads it (through
    /// [`LayerCx::declared_output`]) accepts it.
    output: Option<&'a OutputSpec>,
    output_read: Cell<bool>,
    /// `{ layers… }`, if written; only a rule that reads it (through
    /// [`LayerCx::body`]) accepts it.
    body: Option<&'a Body>,
    body_read: Cell<bool>,
}

/// Where a layer is declared: its model and its field.
pub(crate) struct Position<'a> {
    /// The model's struct (a block's hidden chain is named after it).
    pub model: &'a Ident,
    /// How messages name the model.
    pub label: &'a str,
    /// The model's visibility, given to a block's hidden chains.
    pub vis: &'a Visibility,
    /// The layer's field.
    pub field: &'a Ident,
    /// The layer's position in the model, 0 for the first.
    pub index: usize,
}

impl LayerCx<'_> {
    /// The output shape written after the layer (`-> (64)`), if any: the
    /// rules of layers whose shape the macro cannot know read it. `None` inside
    /// means none was written; `None` outside, that it was not a shape
    /// (reported).
    pub(crate) fn declared_output(&self, errors: &mut Errors) -> Option<Option<Vec<usize>>> {
        self.output_read.set(true);
        match self.output {
            Some(spec) => user::declared_shape(spec, errors).map(Some),
            None => Some(None),
        }
    }

    /// The braced body written after the layer, if any.
    pub(crate) fn body(&self) -> Option<&Body> {
        self.body_read.set(true);
        self.body
    }

    /// How messages name this layer: `Net: layer `block` (Block)`.
    pub(crate) fn label(&self, source: &str) -> String {
        format!("{}: layer `{}` ({source})", self.at.label, self.at.field)
    }
}

/// A layer the rule accepted.
pub(crate) struct Resolved {
    /// One sample's output shape.
    pub output: Vec<usize>,
    /// Trainable parameters, when known at expansion time.
    pub params: Option<usize>,
    /// The field's type, e.g. `::nn::layers::Dense<f32, 784, 128, ::nn::activation::Relu>`.
    pub ty: TokenStream,
    /// The expression that builds the layer, with `rng` in scope.
    pub ctor: TokenStream,
    /// Whether the model checks at construction that the layer's own
    /// `output_shape` agrees with the declared one (the user's layers).
    pub check_shape: bool,
    /// A nested model or block: what it adds beside the layer.
    pub parts: Option<Parts>,
}

/// What a nested model or a block adds to the model around it.
#[derive(Clone, Default)]
pub(crate) struct Parts {
    /// Items emitted beside the model: a block's hidden chains, the
    /// compile-time checks of a nested model's shapes.
    pub items: TokenStream,
    /// The rows of the expanded summary under the layer's own: an expression
    /// of `__nn_layer`, a reference to the field.
    pub rows: TokenStream,
    /// Parameters inside beyond the layer's `params` (nested models').
    pub params: Params,
}

/// A built-in layer's rule: reads its arguments from `args` (whatever it does
/// not take is reported afterwards), checks them against the input shape and
/// returns the layer, or `None` after reporting why not.
pub(crate) type Rule = fn(&LayerCx<'_>, &Args<'_>, &mut Errors) -> Option<Resolved>;

/// Every layer the macro implements itself, by its name in `sequential!`.
pub(crate) const BUILTINS: &[(&str, Rule)] = &[
    ("Dense", dense::rule),
    ("Activation", activation::rule),
    ("ReLU", activation::relu),
    ("Softmax", activation::softmax),
    ("LeakyReLU", activation::leaky_relu),
    ("ELU", activation::elu),
    ("Dropout", dropout::rule),
    ("Flatten", flatten::rule),
    ("Conv2d", conv2d::rule),
    ("MaxPool2d", pool::max_pool),
    ("AvgPool2d", pool::avg_pool),
    ("GlobalAvgPool", pool::global_avg_pool),
    ("BatchNorm", norm::batch_norm),
    ("LayerNorm", norm::layer_norm),
    ("Embedding", embedding::rule),
    ("SimpleRNN", recurrent::simple_rnn),
    ("LSTM", recurrent::lstm),
    ("GRU", recurrent::gru),
    ("Bidirectional", recurrent::bidirectional),
    ("MultiHeadAttention", attention::multi_head_attention),
    ("TransformerEncoder", attention::transformer_encoder),
    ("PositionalEmbedding", sequence::positional_embedding),
    ("GlobalAvgPool1d", sequence::global_avg_pool1d),
    ("Patches", patches::rule),
    ("Tape", tape::rule),
    ("Residual", residual::rule),
];

/// Resolves one line of the model: a built-in by its rule, else the user's own
/// layer type.
pub(crate) fn resolve(
    layer: &LayerDef,
    input: &[usize],
    dtype: &Ident,
    at: &Position<'_>,
    errors: &mut Errors,
) -> Option<Resolved> {
    let name = last_segment(&layer.kind);
    let cx = LayerCx {
        name: &name,
        kind: &layer.kind,
        span: layer.kind.span(),
        input,
        dtype,
        index: at.index,
        at,
        output: layer.output.as_ref(),
        output_read: Cell::new(false),
        body: layer.body.as_ref(),
        body_read: Cell::new(false),
    };
    let single = layer.kind.segments.len() == 1 && layer.kind.leading_colon.is_none();
    let rule = BUILTINS
        .iter()
        .find(|(n, _)| single && *n == name)
        .map(|(_, rule)| *rule);
    let Some(rule) = rule else {
        if single {
            if let Some(s) = closest(&name, BUILTINS.iter().map(|(n, _)| *n)) {
                errors.push(
                    Mistake::UnknownLayer,
                    &layer.kind,
                    format!(
                        "unknown layer `{name}`; did you mean `{s}`? (for your own layer type of this name, write its path, e.g. `self::{name}`)"
                    ),
                );
                return None;
            }
        }
        let resolved = if layer.parens {
            user::rule(layer, &cx, errors)
        } else {
            nested::rule(layer, &cx, errors)
        };
        unread_body(&cx, errors);
        return resolved;
    };
    let args = Args::new(&name, &layer.args);
    let resolved = rule(&cx, &args, errors);
    unread_body(&cx, errors);
    let resolved = resolved?;
    if let (Some(out), false) = (&layer.output, cx.output_read.get()) {
        errors.push(
            Mistake::OutputShapeOnBuiltin,
            out,
            format!("`-> (..)` declares the output of your own layers; `{name}` computes its own"),
        );
    }
    // Arguments left over are reported once the rule has read all it takes
    // (after an early failure, unread arguments are not mistakes). The layer
    // still feeds its output to the next layer's checks, so one mistake makes
    // one error.
    args.finish(errors);
    Some(resolved)
}

/// Reports a `{ .. }` body after a layer whose rule takes none.
fn unread_body(cx: &LayerCx<'_>, errors: &mut Errors) {
    if let (Some(body), false) = (cx.body, cx.body_read.get()) {
        errors.push_at(
            Mistake::BodyOnLayer,
            body.span(),
            format!(
                "`{}` takes no `{{ .. }}` body of layers; a block does: `Residual {{ Dense(64), ReLU }}`",
                cx.name
            ),
        );
    }
}

/// `a * b`, saturating: parameter counts and sizes of absurd models must not
/// overflow the macro.
pub(crate) fn product(dims: impl IntoIterator<Item = usize>) -> usize {
    dims.into_iter().fold(1usize, usize::saturating_mul)
}
