//! Activation functions as the macro reads them, wherever an activation goes
//! (`activation = ..` on a layer, `Activation(..)`):
//!
//! - a built-in by its Keras name, from `nn_spec::ACTIVATIONS`: `relu`,
//!   `"relu"`, `nn::activation::relu`;
//! - a built-in with arguments, always by name: `relu(max_value = 6.0)`,
//!   `threshold(threshold = 0.5, default_value = -1.0)`; the others keep
//!   Keras's defaults;
//! - the user's own: a type implementing `ActivationFn` (`MySwish`) or a
//!   struct literal (`MySwish { beta: 2.0 }`).
//!
//! A built-in resolves to its type in `nn::activation` and a value: the
//! constant holding its defaults, or a struct literal updating that constant
//! (`Relu { max_value: Some(6.0), ..relu }`).

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprAssign, ExprCall, ExprLit, Lit, Path, Token};

use nn_spec::{find_activation, ActivationSpec, ArgSpec, ShapeRule, ACTIVATIONS};

use crate::args::{and_list, list, signed_lit, source};
use crate::errors::{Errors, Mistake};
use crate::validate::{last_segment, shape_text};
use nn_spec::suggest::closest;

/// An activation resolved to a type and a value of that type.
pub(crate) struct Func {
    /// The type, e.g. `::nn::activation::Relu`.
    pub ty: TokenStream,
    /// The value, e.g. `::nn::activation::relu`.
    pub value: TokenStream,
    /// For a built-in: the name as written, its row, and its `axis` if it has one.
    builtin: Option<(String, &'static ActivationSpec, Option<isize>)>,
    /// The activation as written, to span errors about it.
    origin: TokenStream,
}

/// One argument's value, read and checked against its [`ArgSpec`].
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Float(f64),
    Int(i128),
    Bool(bool),
    /// `None` for an `Option` argument.
    Null,
    /// An argument of a type the macro does not read: passed on as written.
    Verbatim(TokenStream),
}

/// The Rust types of activation arguments the macro reads and checks; the
/// table may use others, which are passed on as written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgKind {
    F64,
    Isize,
    Bool,
    Other,
}

/// The kind of `arg` and whether it is an `Option`.
fn arg_kind(arg: &ArgSpec) -> (ArgKind, bool) {
    let ty = arg.ty.replace(' ', "");
    let optional = arg.is_option();
    let inner = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(&ty);
    let kind = match inner {
        "f64" => ArgKind::F64,
        "isize" => ArgKind::Isize,
        "bool" => ArgKind::Bool,
        _ => ArgKind::Other,
    };
    (kind, optional)
}

/// What an argument of this kind accepts, for messages.
fn expected(arg: &ArgSpec) -> String {
    let (kind, optional) = arg_kind(arg);
    let what = match kind {
        ArgKind::F64 => "a number",
        ArgKind::Isize => "an integer",
        ArgKind::Bool => "`true` or `false`",
        ArgKind::Other => "a value",
    };
    if optional {
        format!("{what} or `None`")
    } else {
        what.to_string()
    }
}

/// An example value of `arg`'s kind, for the "write it like this" messages.
fn example(arg: &ArgSpec) -> &'static str {
    match arg_kind(arg).0 {
        ArgKind::F64 => "0.0",
        ArgKind::Isize => "-1",
        ArgKind::Bool => "false",
        ArgKind::Other => "..",
    }
}

/// Every name and alias of the built-ins, for suggestions.
pub(crate) fn all_names() -> impl Iterator<Item = &'static str> {
    ACTIVATIONS.iter().flat_map(|a| a.names())
}

fn is_none(e: &Expr) -> bool {
    match e {
        Expr::Path(p) => p.qself.is_none() && p.path.is_ident("None"),
        Expr::Group(g) => is_none(&g.expr),
        _ => false,
    }
}

/// Reads `e` as the value of `arg` of the activation written `name`.
pub(crate) fn read_value(
    name: &str,
    arg: &'static ArgSpec,
    e: &Expr,
    errors: &mut Errors,
) -> Option<Value> {
    let (kind, optional) = arg_kind(arg);
    if optional && is_none(e) {
        return Some(Value::Null);
    }
    let float = |neg: bool, v: Option<f64>| v.map(|v| Value::Float(if neg { -v } else { v }));
    let value = match (kind, signed_lit(e)) {
        (ArgKind::Other, _) => Some(Value::Verbatim(e.to_token_stream())),
        (ArgKind::F64, Some((neg, Lit::Float(f)))) => float(neg, f.base10_parse::<f64>().ok()),
        (ArgKind::F64, Some((neg, Lit::Int(i)))) => float(neg, i.base10_parse::<f64>().ok()),
        (ArgKind::Isize, Some((neg, Lit::Int(i)))) => i
            .base10_parse::<i128>()
            .ok()
            .map(|v| if neg { -v } else { v })
            .filter(|v| isize::try_from(*v).is_ok())
            .map(Value::Int),
        (ArgKind::Bool, Some((false, Lit::Bool(b)))) => Some(Value::Bool(b.value)),
        _ => None,
    };
    match value {
        Some(Value::Float(v)) if !v.is_finite() => {
            errors.push(
                Mistake::NumberNotFinite,
                e,
                format!("`{}` does not fit in an f64", source(e)),
            );
            None
        }
        Some(v) => Some(v),
        None => {
            errors.push(
                Mistake::ActivationArgumentType,
                e,
                format!(
                    "`{name}({} = ..)` takes {}, found `{}`",
                    arg.name,
                    expected(arg),
                    source(e)
                ),
            );
            None
        }
    }
}

impl Value {
    /// The value as a user would write it, for messages.
    fn text(&self) -> String {
        match self {
            Value::Float(v) => format!("{v:?}"),
            Value::Int(v) => v.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "None".to_string(),
            Value::Verbatim(t) => source(t),
        }
    }

    /// The Rust expression for this value of `arg`, spanned at `span`.
    fn tokens(&self, arg: &ArgSpec, span: Span) -> TokenStream {
        let signed = |negative: bool, mut lit: Literal| {
            lit.set_span(span);
            if negative {
                quote_spanned!(span=> -#lit)
            } else {
                quote_spanned!(span=> #lit)
            }
        };
        let inner = match self {
            Value::Float(v) => signed(v.is_sign_negative(), Literal::f64_suffixed(v.abs())),
            Value::Int(v) => signed(*v < 0, Literal::u128_unsuffixed(v.unsigned_abs())),
            Value::Bool(b) => quote_spanned!(span=> #b),
            Value::Null => return quote_spanned!(span=> ::core::option::Option::None),
            Value::Verbatim(t) => return t.clone(),
        };
        if arg.is_option() {
            quote_spanned!(span=> ::core::option::Option::Some(#inner))
        } else {
            inner
        }
    }
}

/// A layer's `activation = ..` argument (taken from `args`), or the identity
/// (`linear`) when there is none: `Dense`, `Conv2d` and `BatchNorm` read it
/// alike (`Residual` resolves its own, to quote it in its suggestions).
pub(crate) fn named_argument(
    args: &crate::args::Args<'_>,
    span: Span,
    errors: &mut Errors,
) -> Option<Func> {
    match args.take_named("activation") {
        Some(e) => resolve(e, errors),
        None => Some(linear(span)),
    }
}

/// The identity, for layers declared without an activation.
pub(crate) fn linear(span: Span) -> Func {
    Func {
        ty: quote_spanned!(span=> ::nn::activation::Linear),
        value: quote_spanned!(span=> ::nn::activation::linear),
        builtin: None,
        origin: TokenStream::new(),
    }
}

/// The built-in `spec`, written `name`, with the arguments `given` (the others
/// keep their defaults). `origin` is the syntax to blame for a missing argument.
pub(crate) fn builtin(
    spec: &'static ActivationSpec,
    name: &str,
    given: &[(&'static ArgSpec, Value)],
    origin: TokenStream,
    span: Span,
    errors: &mut Errors,
) -> Option<Func> {
    let is_given = |a: &ArgSpec| given.iter().any(|(g, _)| g.name == a.name);
    let missing: Vec<&str> = spec
        .args
        .iter()
        .filter(|a| a.default.is_none() && !is_given(a))
        .map(|a| a.name)
        .collect();
    if !missing.is_empty() {
        let written: Vec<String> = spec
            .args
            .iter()
            .filter(|a| a.default.is_none() || is_given(a))
            .map(|a| {
                let v = given
                    .iter()
                    .find(|(g, _)| g.name == a.name)
                    .map(|(_, v)| v.text())
                    .unwrap_or_else(|| example(a).to_string());
                format!("{} = {v}", a.name)
            })
            .collect();
        errors.push(
            Mistake::MissingActivationArgument,
            &origin,
            format!(
                "activation `{name}` needs {} (Keras gives {} no default); write {}, e.g. `{name}({})`",
                and_list(&missing),
                if missing.len() == 1 { "it" } else { "them" },
                if missing.len() == 1 { "it by name" } else { "them by name" },
                written.join(", ")
            ),
        );
        return None;
    }

    let ty_ident = format_ident!("{}", spec.type_name);
    let constant = format_ident!("{}", spec.name);
    let ty = quote_spanned!(span=> ::nn::activation::#ty_ident);
    let value = if given.is_empty() {
        quote_spanned!(span=> ::nn::activation::#constant)
    } else {
        let mut fields = Vec::new();
        for arg in spec.args {
            let field = format_ident!("{}", arg.name);
            let v = match given.iter().find(|(g, _)| g.name == arg.name) {
                Some((g, v)) => v.tokens(g, span),
                // With a constant to update, the others come from it.
                None if spec.has_defaults() => continue,
                None => match arg.default.map(str::parse::<TokenStream>) {
                    Some(Ok(t)) => t,
                    _ => continue,
                },
            };
            fields.push(quote_spanned!(span=> #field: #v));
        }
        if fields.len() == spec.args.len() {
            quote_spanned!(span=> ::nn::activation::#ty_ident { #(#fields),* })
        } else {
            quote_spanned!(span=> ::nn::activation::#ty_ident { #(#fields,)* ..::nn::activation::#constant })
        }
    };
    let axis = match spec.arg("axis") {
        None => None,
        Some(arg) => match given.iter().find(|(g, _)| g.name == "axis") {
            Some((_, Value::Int(v))) => isize::try_from(*v).ok(),
            Some(_) => None,
            None => arg
                .default
                .and_then(|d| d.replace(' ', "").parse::<isize>().ok()),
        },
    };
    Some(Func {
        ty,
        value,
        builtin: Some((name.to_string(), spec, axis)),
        origin,
    })
}

/// The built-in called `name`, or an error at `at` suggesting the closest.
fn lookup(name: &str, at: &impl ToTokens, errors: &mut Errors) -> Option<&'static ActivationSpec> {
    let found = find_activation(name);
    if found.is_none() {
        let hint = closest(name, all_names())
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        errors.push(
            Mistake::UnknownActivation,
            at,
            format!(
                "unknown activation `{}`{hint} (your own activation: a unit struct implementing `ActivationFn`, e.g. `activation = MySwish`)",
                source(at)
            ),
        );
    }
    found
}

/// The activation layer a one-segment path names (`ReLU`), with its function.
fn layer_named(path: &Path) -> Option<(&'static str, &'static str)> {
    let ident = path.get_ident()?;
    crate::layers::activation::FUNCTION_OF_LAYER
        .into_iter()
        .find(|(layer, _)| ident == layer)
}

fn starts_lowercase(path: &Path) -> bool {
    last_segment(path)
        .chars()
        .next()
        .is_some_and(|c| c.is_lowercase())
}

/// `relu`, `"relu"`, `relu(max_value = 6.0)`, `nn::activation::tanh`,
/// `my::Swish`, `Swish { beta: 2.0 }`.
pub(crate) fn resolve(e: &Expr, errors: &mut Errors) -> Option<Func> {
    let span = e.span();
    match e {
        Expr::Group(g) => resolve(&g.expr, errors),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let name = s.value();
            match find_activation(&name) {
                Some(spec) => builtin(spec, &name, &[], e.to_token_stream(), span, errors),
                None => {
                    let hint = closest(&name, all_names())
                        .map(|c| format!("; did you mean \"{c}\"?"))
                        .unwrap_or_default();
                    errors.push(
                        Mistake::UnknownActivationString,
                        s,
                        format!("unknown activation \"{name}\"{hint}"),
                    );
                    None
                }
            }
        }
        Expr::Path(p) if p.qself.is_none() => {
            let path = &p.path;
            if starts_lowercase(path) {
                let name = last_segment(path);
                let spec = lookup(&name, path, errors)?;
                builtin(spec, &name, &[], e.to_token_stream(), span, errors)
            } else if let Some((layer, function)) = layer_named(path) {
                errors.push(
                    Mistake::LayerAsActivation,
                    e,
                    format!(
                        "`{layer}` is the layer; as an argument the activation is the function, `activation = {function}` (your own activation type named `{layer}`: write its path, `self::{layer}`)"
                    ),
                );
                None
            } else {
                Some(Func {
                    ty: quote_spanned!(span=> #path),
                    value: quote_spanned!(span=> #path),
                    builtin: None,
                    origin: e.to_token_stream(),
                })
            }
        }
        Expr::Call(call) => match &*call.func {
            Expr::Path(p) if p.qself.is_none() && starts_lowercase(&p.path) => {
                let name = last_segment(&p.path);
                let spec = lookup(&name, &p.path, errors)?;
                let given = call_args(spec, &name, call, errors)?;
                builtin(spec, &name, &given, e.to_token_stream(), span, errors)
            }
            Expr::Path(p) if p.qself.is_none() => {
                let ty = source(&p.path);
                errors.push(
                    Mistake::OwnActivationCalled,
                    e,
                    format!(
                        "`{}`: the macro needs your activation's type, so write a unit struct (`{ty}`) or a struct literal (`{ty} {{ .. }}`); built-in activations take arguments by name, e.g. `relu(max_value = 6.0)`",
                        source(e)
                    ),
                );
                None
            }
            _ => not_an_activation(e, errors),
        },
        Expr::Struct(s) => {
            let path = &s.path;
            Some(Func {
                ty: quote_spanned!(span=> #path),
                value: quote_spanned!(span=> #e),
                builtin: None,
                origin: e.to_token_stream(),
            })
        }
        _ => not_an_activation(e, errors),
    }
}

fn not_an_activation(e: &Expr, errors: &mut Errors) -> Option<Func> {
    errors.push(
        Mistake::NotAnActivation,
        e,
        format!(
            "expected an activation: a name (`relu`), a name with arguments (`relu(max_value = 6.0)`), a string (`\"relu\"`), or your own type implementing `ActivationFn`; found `{}`",
            source(e)
        ),
    );
    None
}

/// The arguments of `relu(max_value = 6.0)`, checked against the row.
fn call_args(
    spec: &'static ActivationSpec,
    name: &str,
    call: &ExprCall,
    errors: &mut Errors,
) -> Option<Vec<(&'static ArgSpec, Value)>> {
    if spec.args.is_empty() {
        errors.push(
            Mistake::ActivationTakesNoArguments,
            call,
            format!("activation `{name}` takes no arguments: write `{name}`"),
        );
        return None;
    }
    let mut given: Vec<(&'static ArgSpec, Value)> = Vec::new();
    let mut named: Vec<&str> = Vec::new();
    let mut positional = Vec::new();
    let mut ok = true;
    for a in &call.args {
        let (left, right) = match a {
            Expr::Assign(ExprAssign { left, right, .. }) => match &**left {
                Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                    (&p.path, &**right)
                }
                _ => {
                    positional.push(a);
                    continue;
                }
            },
            _ => {
                positional.push(a);
                continue;
            }
        };
        let arg_name = last_segment(left);
        let Some(arg) = spec.arg(&arg_name) else {
            let names: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
            let hint = match closest(&arg_name, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("it takes {}", list(&names)),
            };
            errors.push(
                Mistake::UnknownActivationArgument,
                left,
                format!("activation `{name}` has no argument `{arg_name}`; {hint}"),
            );
            ok = false;
            continue;
        };
        if named.contains(&arg.name) {
            errors.push(
                Mistake::DuplicateActivationArgument,
                a,
                format!(
                    "activation `{name}`: `{}` is given twice; keep one of them",
                    arg.name
                ),
            );
            ok = false;
            continue;
        }
        named.push(arg.name);
        match read_value(name, arg, right, errors) {
            Some(v) => given.push((arg, v)),
            None => ok = false,
        }
    }
    if !positional.is_empty() {
        // The keyword form, filling the arguments not named in Keras's order.
        let mut free = spec.args.iter().filter(|a| !named.contains(&a.name));
        let mut parts: Vec<String> = Vec::new();
        for a in &call.args {
            if positional.iter().any(|p| std::ptr::eq(*p, a)) {
                if let Some(arg) = free.next() {
                    parts.push(format!("{} = {}", arg.name, source(a)));
                }
            } else {
                parts.push(source(a));
            }
        }
        let args: Punctuated<&Expr, Token![,]> = positional.iter().copied().collect();
        errors.push(
            Mistake::PositionalActivationArgument,
            quote!(#args),
            format!(
                "activation `{name}` takes its arguments by name: write `{name}({})`",
                parts.join(", ")
            ),
        );
        ok = false;
    }
    ok.then_some(given)
}

impl Func {
    /// The output shape of one sample for the input shape `input`, by the
    /// built-in's shape rule; the user's own activations keep the shape as
    /// far as the macro knows (the layer checks at run time).
    pub(crate) fn output(&self, input: &[usize], errors: &mut Errors) -> Option<Vec<usize>> {
        let Some((name, spec, axis)) = &self.builtin else {
            return Some(input.to_vec());
        };
        // The axis counts the batch axis, as at run time: 0 is the batch, -1
        // the last axis of a sample.
        let rank = input.len() as isize + 1;
        let relative = match *axis {
            None => -1,
            Some(a) if a < -rank || a >= rank => {
                errors.push(
                    Mistake::ActivationAxisOutOfRange,
                    &self.origin,
                    format!(
                        "activation `{name}`: axis {a} is out of range for its input {} (axis 0 is the batch, -1 the last axis)",
                        shape_text(input)
                    ),
                );
                return None;
            }
            Some(a) if a < 0 => a,
            Some(a) => a - rank,
        };
        if spec.shape == ShapeRule::Same {
            return Some(input.to_vec());
        }
        if relative == -rank {
            errors.push(
                Mistake::GluOnBatchAxis,
                &self.origin,
                format!(
                    "activation `{name}` would split the batch axis (axis {}); use the axis of a sample, e.g. `axis = -1` (the default)",
                    axis.unwrap_or(0)
                ),
            );
            return None;
        }
        match spec.shape.apply(input, relative) {
            Ok(out) => Some(out),
            Err(why) => {
                errors.push(
                    Mistake::ActivationShape,
                    &self.origin,
                    format!(
                        "activation `{name}` cannot take the input {}: {why}",
                        shape_text(input)
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(src: &str) -> Result<Func, Vec<Mistake>> {
        let e: Expr = syn::parse_str(src).unwrap();
        let mut errors = Errors::default();
        match resolve(&e, &mut errors) {
            Some(f) if errors.seen.is_empty() => Ok(f),
            _ => Err(errors.seen),
        }
    }

    fn value(src: &str) -> String {
        func(src).unwrap().value.to_string().replace(' ', "")
    }

    /// Compared without spaces: `to_string` spaces joint punctuation its own way.
    fn tokens(src: &str) -> String {
        src.parse::<TokenStream>()
            .unwrap()
            .to_string()
            .replace(' ', "")
    }

    #[test]
    fn a_bare_name_is_the_constant() {
        for src in ["relu", "\"relu\"", "nn::activation::relu"] {
            let f = func(src).unwrap();
            assert_eq!(
                f.ty.to_string().replace(' ', ""),
                tokens("::nn::activation::Relu"),
                "{src}"
            );
            assert_eq!(value(src), tokens("::nn::activation::relu"), "{src}");
        }
        // An alias is its row's type, and the row's constant.
        let f = func("swish").unwrap();
        assert_eq!(
            f.ty.to_string().replace(' ', ""),
            tokens("::nn::activation::Silu")
        );
        assert_eq!(value("swish"), tokens("::nn::activation::silu"));
    }

    #[test]
    fn every_builtin_resolves_by_every_name() {
        for spec in ACTIVATIONS {
            for name in spec.names() {
                let r = func(name);
                if spec.has_defaults() {
                    let f = r.unwrap_or_else(|m| panic!("{name}: {m:?}"));
                    assert!(f.ty.to_string().ends_with(spec.type_name), "{name}");
                } else {
                    assert_eq!(
                        r.err(),
                        Some(vec![Mistake::MissingActivationArgument]),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn arguments_update_the_constant() {
        assert_eq!(
            value("relu(max_value = 6.0)"),
            tokens("::nn::activation::Relu { max_value: ::core::option::Option::Some(6f64), ..::nn::activation::relu }")
        );
        assert_eq!(
            value("relu(max_value = None, negative_slope = 1)"),
            tokens("::nn::activation::Relu { negative_slope: 1f64, max_value: ::core::option::Option::None, ..::nn::activation::relu }")
        );
        // Every field given: a plain struct literal.
        assert_eq!(
            value("leaky_relu(negative_slope = 0.1)"),
            tokens("::nn::activation::LeakyRelu { negative_slope: 0.1f64 }")
        );
        assert_eq!(
            value("threshold(threshold = 0.5, default_value = -1.0)"),
            tokens("::nn::activation::Threshold { threshold: 0.5f64, default_value: -1f64 }")
        );
        assert_eq!(
            value("threshold(default_value = 0, threshold = -2)"),
            tokens("::nn::activation::Threshold { threshold: -2f64, default_value: 0f64 }")
        );
        assert_eq!(
            value("gelu(approximate = true)"),
            tokens("::nn::activation::Gelu { approximate: true }")
        );
        assert_eq!(
            value("softmax(axis = -2)"),
            tokens("::nn::activation::Softmax { axis: -2 }")
        );
    }

    #[test]
    fn the_users_own_activation_is_taken_as_written() {
        let f = func("Swish2").unwrap();
        assert_eq!(f.ty.to_string(), tokens("Swish2"));
        assert_eq!(value("Swish2"), tokens("Swish2"));
        let f = func("my::Swish { beta: 2.0 }").unwrap();
        assert_eq!(f.ty.to_string().replace(' ', ""), tokens("my::Swish"));
        assert_eq!(
            value("my::Swish { beta: 2.0 }"),
            tokens("my::Swish { beta: 2.0 }")
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("rleu", Mistake::UnknownActivation),
            ("nn::activation::rleu", Mistake::UnknownActivation),
            ("rleu(max_value = 1.0)", Mistake::UnknownActivation),
            ("\"rleu\"", Mistake::UnknownActivationString),
            ("3", Mistake::NotAnActivation),
            ("MySwish(2.0)", Mistake::OwnActivationCalled),
            ("leaky_relu(0.1)", Mistake::PositionalActivationArgument),
            ("relu(max_val = 6.0)", Mistake::UnknownActivationArgument),
            ("sigmoid(alpha = 1.0)", Mistake::ActivationTakesNoArguments),
            (
                "relu(max_value = 1.0, max_value = 2.0)",
                Mistake::DuplicateActivationArgument,
            ),
            ("gelu(approximate = 1)", Mistake::ActivationArgumentType),
            ("elu(alpha = true)", Mistake::ActivationArgumentType),
            ("softmax(axis = 1.5)", Mistake::ActivationArgumentType),
            ("relu(max_value = \"6\")", Mistake::ActivationArgumentType),
            ("elu(alpha = 1e999)", Mistake::NumberNotFinite),
            ("threshold", Mistake::MissingActivationArgument),
            (
                "threshold(threshold = 0.5)",
                Mistake::MissingActivationArgument,
            ),
        ];
        for (src, mistake) in cases {
            assert_eq!(func(src).err(), Some(vec![mistake]), "{src}");
        }
    }

    fn shape(src: &str, input: &[usize]) -> Result<Vec<usize>, Vec<Mistake>> {
        let f = func(src)?;
        let mut errors = Errors::default();
        f.output(input, &mut errors).ok_or(errors.seen)
    }

    #[test]
    fn glu_halves_an_axis_of_a_sample() {
        assert_eq!(shape("glu", &[8]), Ok(vec![4]));
        assert_eq!(shape("glu", &[4, 6, 6]), Ok(vec![4, 6, 3]));
        // The axis counts the batch axis, as at run time.
        assert_eq!(shape("glu(axis = 1)", &[4, 6, 6]), Ok(vec![2, 6, 6]));
        assert_eq!(shape("glu(axis = -3)", &[4, 6, 6]), Ok(vec![2, 6, 6]));
        assert_eq!(shape("glu", &[7]), Err(vec![Mistake::ActivationShape]));
        assert_eq!(
            shape("glu(axis = 0)", &[8]),
            Err(vec![Mistake::GluOnBatchAxis])
        );
        assert_eq!(
            shape("glu(axis = -2)", &[8]),
            Err(vec![Mistake::GluOnBatchAxis])
        );
        assert_eq!(
            shape("glu(axis = 2)", &[8]),
            Err(vec![Mistake::ActivationAxisOutOfRange])
        );
        assert_eq!(
            shape("softmax(axis = 2)", &[8]),
            Err(vec![Mistake::ActivationAxisOutOfRange])
        );
        assert_eq!(shape("softmax(axis = 1)", &[8]), Ok(vec![8]));
        assert_eq!(shape("relu", &[3, 5]), Ok(vec![3, 5]));
        assert_eq!(shape("Swish2", &[7]), Ok(vec![7]));
    }
}
