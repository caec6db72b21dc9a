//! The arguments of a layer as the validator reads them: named or positional
//! values, literals, activations and initializers, each mistake a spanned error.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit};

use crate::builtins::{ACTIVATIONS, INITIALIZERS};
use crate::parse::Arg;
use crate::suggest::closest;
use crate::validate::{last_segment, ActivationSpec};

/// Collects errors so one pass reports all of them.
#[derive(Default)]
pub(crate) struct Errors(pub(crate) Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: Span, msg: impl std::fmt::Display) {
        let e = syn::Error::new(span, msg);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

/// The arguments of one layer, consumed by name or position.
pub(crate) struct Args<'a> {
    layer: String,
    positional: std::cell::RefCell<std::collections::VecDeque<&'a Expr>>,
    named: std::cell::RefCell<Vec<(&'a Ident, &'a Expr)>>,
}

impl<'a> Args<'a> {
    pub(crate) fn new(layer: &str, args: &'a [Arg]) -> Self {
        let mut positional = std::collections::VecDeque::new();
        let mut named = Vec::new();
        for a in args {
            match a {
                Arg::Positional(e) => positional.push_back(e),
                Arg::Named { name, value } => named.push((name, value)),
            }
        }
        Args {
            layer: layer.to_string(),
            positional: positional.into(),
            named: named.into(),
        }
    }

    pub(crate) fn take_named(&self, name: &str) -> Option<&'a Expr> {
        let mut named = self.named.borrow_mut();
        let i = named.iter().position(|(n, _)| *n == name)?;
        Some(named.remove(i).1)
    }

    pub(crate) fn take_positional_or_named(&self, name: &str) -> Option<&'a Expr> {
        self.take_named(name)
            .or_else(|| self.positional.borrow_mut().pop_front())
    }

    /// Reports anything left over as an argument the layer does not take.
    pub(crate) fn finish(self, accepted: &[&str], errors: &mut Errors) -> Option<()> {
        let mut ok = true;
        for e in self.positional.into_inner() {
            errors.push(
                e.span(),
                format!(
                    "{} takes no further positional argument here: `{}`",
                    self.layer,
                    e.to_token_stream()
                ),
            );
            ok = false;
        }
        for (name, _) in self.named.into_inner() {
            let hint = match closest(&name.to_string(), accepted.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None if accepted.is_empty() => String::from("; it takes no arguments"),
                None => format!(
                    "; it takes {}",
                    accepted
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            errors.push(
                name.span(),
                format!("{} does not take an argument `{name}`{hint}", self.layer),
            );
            ok = false;
        }
        ok.then_some(())
    }
}

pub(crate) fn lit(e: &Expr) -> Option<&Lit> {
    match e {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit(&g.expr),
        _ => None,
    }
}

pub(crate) fn int_lit(e: &Expr, errors: &mut Errors) -> Option<usize> {
    match lit(e) {
        Some(Lit::Int(i)) => match i.base10_parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(
                    e.span(),
                    format!(
                        "expected a non-negative integer, found `{}`",
                        e.to_token_stream()
                    ),
                );
                None
            }
        },
        _ => {
            errors.push(
                e.span(),
                format!(
                    "expected an integer literal, found `{}`",
                    e.to_token_stream()
                ),
            );
            None
        }
    }
}

pub(crate) fn float_lit(e: &Expr, errors: &mut Errors) -> Option<f64> {
    let parsed = match lit(e) {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    if parsed.is_none() {
        errors.push(
            e.span(),
            format!("expected a number, found `{}`", e.to_token_stream()),
        );
    }
    parsed
}

pub(crate) fn bool_lit(e: &Expr, errors: &mut Errors) -> Option<bool> {
    match lit(e) {
        Some(Lit::Bool(b)) => Some(b.value),
        _ => {
            errors.push(
                e.span(),
                format!(
                    "expected `true` or `false`, found `{}`",
                    e.to_token_stream()
                ),
            );
            None
        }
    }
}

pub(crate) fn builtin_activation(ty: &str, value: &str, span: Span) -> ActivationSpec {
    let (ty, value) = (format_ident!("{}", ty), format_ident!("{}", value));
    ActivationSpec {
        ty: quote_spanned!(span=> ::nn::activation::#ty),
        value: quote_spanned!(span=> ::nn::activation::#value),
    }
}

fn lookup_activation(name: &str, span: Span) -> Option<ActivationSpec> {
    ACTIVATIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ty, c)| builtin_activation(ty, c, span))
}

/// `relu`, `"relu"`, `nn::activation::tanh`, `my::Swish`, `Swish { beta: 2.0 }`.
pub(crate) fn activation(e: &Expr, errors: &mut Errors) -> Option<ActivationSpec> {
    let names = || ACTIVATIONS.iter().map(|(n, _, _)| *n);
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let name = s.value();
            lookup_activation(&name, s.span()).or_else(|| {
                let hint = closest(&name, names())
                    .map(|c| format!("; did you mean \"{c}\"?"))
                    .unwrap_or_default();
                errors.push(s.span(), format!("unknown activation \"{name}\"{hint}"));
                None
            })
        }
        Expr::Path(p) if p.qself.is_none() => {
            let path = &p.path;
            let last = last_segment(path);
            let lowercase = last.chars().next().is_some_and(|c| c.is_lowercase());
            if lowercase {
                lookup_activation(&last, path.span()).or_else(|| {
                    let hint = closest(&last, names()).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default();
                    errors.push(
                        path.span(),
                        format!(
                            "unknown activation `{}`{hint} (your own activation: a unit struct implementing `Activation`, e.g. `activation = MySwish`)",
                            path.to_token_stream().to_string().replace(' ', "")
                        ),
                    );
                    None
                })
            } else {
                let span = path.span();
                Some(ActivationSpec {
                    ty: quote_spanned!(span=> #path),
                    value: quote_spanned!(span=> #path),
                })
            }
        }
        Expr::Struct(s) => {
            let path = &s.path;
            let span = path.span();
            Some(ActivationSpec {
                ty: quote_spanned!(span=> #path),
                value: quote_spanned!(span=> #e),
            })
        }
        _ => {
            errors.push(
                e.span(),
                format!(
                    "expected an activation: a name (`relu`), a string (`\"relu\"`), or a path to a type implementing `Activation`; found `{}`",
                    e.to_token_stream()
                ),
            );
            None
        }
    }
}

/// `he_normal`, `"zeros"`, or any expression of type `nn::init::Initializer`.
pub(crate) fn initializer(e: &Expr, errors: &mut Errors) -> Option<TokenStream> {
    let name = match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some((s.value(), s.span())),
        Expr::Path(p) if p.path.segments.len() == 1 => Some((last_segment(&p.path), p.span())),
        _ => None,
    };
    match name {
        Some((name, span)) => match INITIALIZERS.iter().find(|(n, _)| *n == name) {
            Some((_, variant)) => {
                let v = format_ident!("{}", variant);
                Some(quote_spanned!(span=> ::nn::init::Initializer::#v))
            }
            None => {
                let hint = closest(&name, INITIALIZERS.iter().map(|(n, _)| *n))
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                errors.push(span, format!("unknown initializer `{name}`{hint}"));
                None
            }
        },
        None => Some(quote!(#e)),
    }
}
