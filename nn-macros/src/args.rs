//! The arguments of a layer as its rule reads them: named or positional
//! values, literals and initializers, each mistake a spanned error over the
//! whole offending expression.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, UnOp};

use crate::builtins::INITIALIZERS;
use crate::errors::{Errors, Mistake};
use crate::parse::Arg;
use nn_spec::suggest::closest;

/// The arguments of one layer, consumed by name or position. Every name a rule
/// asks for is an argument the layer accepts, so [`Args::finish`] can suggest
/// the right one for a typo.
pub(crate) struct Args<'a> {
    layer: String,
    positional: RefCell<VecDeque<&'a Expr>>,
    named: RefCell<Vec<(&'a Ident, &'a Expr)>>,
    accepted: RefCell<Vec<&'static str>>,
}

impl<'a> Args<'a> {
    pub(crate) fn new(layer: &str, args: &'a [Arg]) -> Self {
        let mut positional = VecDeque::new();
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
            accepted: RefCell::new(Vec::new()),
        }
    }

    /// The argument written `name = ..`.
    pub(crate) fn take_named(&self, name: &'static str) -> Option<&'a Expr> {
        self.accepted.borrow_mut().push(name);
        let mut named = self.named.borrow_mut();
        let i = named.iter().position(|(n, _)| *n == name)?;
        Some(named.remove(i).1)
    }

    /// The argument written `name = ..`, else the next positional one.
    pub(crate) fn take_positional_or_named(&self, name: &'static str) -> Option<&'a Expr> {
        self.take_named(name)
            .or_else(|| self.positional.borrow_mut().pop_front())
    }

    /// Reports a required argument missing: `mistake` and `message` at the
    /// layer (`at`), unless a named argument left over misspells one of its
    /// `names` (`kernal = 3`), which is then reported at the misspelling, as
    /// [`Args::finish`] reports an unknown name: the typo is the mistake.
    pub(crate) fn missing(
        &self,
        names: &[&'static str],
        (mistake, at): (Mistake, &impl ToTokens),
        message: impl Display,
        errors: &mut Errors,
    ) {
        let named = self.named.borrow();
        match named
            .iter()
            .find_map(|(n, _)| closest(&n.to_string(), names.iter().copied()).map(|s| (*n, s)))
        {
            Some((name, hint)) => errors.push(
                Mistake::UnknownArgument,
                name,
                format!(
                    "{} does not take an argument `{name}`; did you mean `{hint}`?",
                    self.layer
                ),
            ),
            None => errors.push(mistake, at, message),
        }
    }

    /// Reports anything left over: a positional argument too many, a name given
    /// twice, or a name the layer does not take. `false` if there was any.
    pub(crate) fn finish(self, errors: &mut Errors) -> bool {
        let accepted = self.accepted.into_inner();
        let mut ok = true;
        for e in self.positional.into_inner() {
            errors.push(
                Mistake::ExtraPositionalArgument,
                e,
                format!(
                    "{} takes no further positional argument here: `{}`",
                    self.layer,
                    e.to_token_stream()
                ),
            );
            ok = false;
        }
        for (name, value) in self.named.into_inner() {
            ok = false;
            if accepted.iter().any(|a| *name == *a) {
                errors.push(
                    Mistake::DuplicateArgument,
                    quote!(#name = #value),
                    format!("{}: `{name}` is given twice; keep one of them", self.layer),
                );
                continue;
            }
            let hint = match closest(&name.to_string(), accepted.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None if accepted.is_empty() => String::from("; it takes no arguments"),
                None => format!("; it takes {}", list(&accepted)),
            };
            errors.push(
                Mistake::UnknownArgument,
                name,
                format!("{} does not take an argument `{name}`{hint}", self.layer),
            );
        }
        ok
    }
}

/// `a`, `b`, `c` as a list of code spans, each name once.
pub(crate) fn list(names: &[&str]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for n in names {
        if !seen.contains(n) {
            seen.push(n);
        }
    }
    seen.iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `e` as the user wrote it, for messages: the tokens without the spaces
/// `to_string` puts around punctuation (`(3, 3)`, `relu(0.1)`, `-0.5`,
/// `nn::activation::relu`).
pub(crate) fn source(e: &impl ToTokens) -> String {
    let raw = e.to_token_stream().to_string();
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.get(i + 1).copied();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let drop = matches!(next, Some(',' | ')' | ']' | ':' | '.'))
                || matches!(prev, Some('(' | '[' | '.'))
                || out.ends_with("::")
                || (next == Some('(') && word(prev))
                // A leading minus, or one after `(`, `,` or `=`: a negative number.
                || (prev == Some('-') && {
                    let before = out.trim_end_matches('-').trim_end().chars().last();
                    matches!(before, None | Some('(' | ',' | '=' | '['))
                });
            if drop {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// `a`, `b` and `c`, as code.
pub(crate) fn and_list(names: &[&str]) -> String {
    let items: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The literal in `e`, looking through macro-variable groups.
pub(crate) fn lit(e: &Expr) -> Option<&Lit> {
    match e {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit(&g.expr),
        _ => None,
    }
}

/// `(negative, literal)` for `lit` or `-lit`.
pub(crate) fn signed_lit(e: &Expr) -> Option<(bool, &Lit)> {
    match e {
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => lit(expr).map(|l| (true, l)),
        Expr::Group(g) => signed_lit(&g.expr),
        _ => lit(e).map(|l| (false, l)),
    }
}

/// A `usize` written as an integer literal.
pub(crate) fn int_lit(e: &Expr, errors: &mut Errors) -> Option<usize> {
    match signed_lit(e) {
        Some((false, Lit::Int(i))) => match i.base10_parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(
                    Mistake::IntegerTooLarge,
                    e,
                    format!("`{}` does not fit in a usize", source(e)),
                );
                None
            }
        },
        Some((true, Lit::Int(_))) => {
            errors.push(
                Mistake::NegativeInteger,
                e,
                format!("expected a non-negative integer, found `{}`", source(e)),
            );
            None
        }
        _ => {
            errors.push(
                Mistake::ExpectedInteger,
                e,
                format!("expected an integer literal, found `{}`", source(e)),
            );
            None
        }
    }
}

/// A finite number written as an integer or float literal, maybe negative.
pub(crate) fn signed_float_lit(e: &Expr, errors: &mut Errors) -> Option<f64> {
    let parsed = match signed_lit(e) {
        Some((neg, Lit::Float(f))) => f.base10_parse::<f64>().ok().map(|v| (neg, v)),
        Some((neg, Lit::Int(i))) => i.base10_parse::<f64>().ok().map(|v| (neg, v)),
        _ => None,
    };
    match parsed {
        None => {
            errors.push(
                Mistake::ExpectedNumber,
                e,
                format!("expected a number, found `{}`", source(e)),
            );
            None
        }
        Some((_, v)) if !v.is_finite() => {
            errors.push(
                Mistake::NumberNotFinite,
                e,
                format!("`{}` does not fit in an f64", source(e)),
            );
            None
        }
        Some((neg, v)) => Some(if neg { -v } else { v }),
    }
}

/// A finite, non-negative number.
pub(crate) fn float_lit(e: &Expr, errors: &mut Errors) -> Option<f64> {
    let v = signed_float_lit(e, errors)?;
    if v < 0.0 {
        errors.push(
            Mistake::NegativeNumber,
            e,
            format!("expected a non-negative number, found `{}`", source(e)),
        );
        return None;
    }
    Some(v)
}

pub(crate) fn bool_lit(e: &Expr, errors: &mut Errors) -> Option<bool> {
    match lit(e) {
        Some(Lit::Bool(b)) => Some(b.value),
        _ => {
            errors.push(
                Mistake::ExpectedBool,
                e,
                format!("expected `true` or `false`, found `{}`", source(e)),
            );
            None
        }
    }
}

/// One of `choices`, written as a name (`relu`) or a string (`"relu"`);
/// otherwise reported as `mistake`, naming what `what` takes.
pub(crate) fn choice(
    e: &Expr,
    choices: &[&'static str],
    what: &str,
    mistake: Mistake,
    errors: &mut Errors,
) -> Option<&'static str> {
    let name = match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            Some(crate::validate::last_segment(&p.path))
        }
        Expr::Group(g) => return choice(&g.expr, choices, what, mistake, errors),
        _ => None,
    };
    if let Some(found) = name.and_then(|n| choices.iter().find(|c| **c == n)) {
        return Some(found);
    }
    errors.push(
        mistake,
        e,
        format!("{what} is {}, not `{}`", or_list(choices), source(e)),
    );
    None
}

/// `a`, `b` or `c` as code spans.
fn or_list(names: &[&str]) -> String {
    let spans: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match spans.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// `he_normal`, `"zeros"`, or any expression of type `nn::init::Initializer`.
pub(crate) fn initializer(e: &Expr, errors: &mut Errors) -> Option<TokenStream> {
    let name = match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            Some(crate::validate::last_segment(&p.path))
        }
        _ => None,
    };
    let span = e.span();
    match name {
        Some(name) => match INITIALIZERS.iter().find(|(n, _)| *n == name) {
            Some((_, variant)) => {
                let v = quote::format_ident!("{}", variant);
                Some(quote_spanned!(span=> ::nn::init::Initializer::#v))
            }
            None => {
                let hint = closest(&name, INITIALIZERS.iter().map(|(n, _)| *n))
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                errors.push(
                    Mistake::UnknownInitializer,
                    e,
                    format!("unknown initializer `{name}`{hint}"),
                );
                None
            }
        },
        None => Some(quote!(#e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_reads_like_the_user_wrote_it() {
        let cases = [
            ("(3, 3, 3)", "(3, 3, 3)"),
            ("MySwish(2.0)", "MySwish(2.0)"),
            ("-0.5", "-0.5"),
            ("nn::activation::rleu", "nn::activation::rleu"),
            ("leaky_relu(-0.1, x = -1)", "leaky_relu(-0.1, x = -1)"),
            ("a - b", "a - b"),
            ("\"half\"", "\"half\""),
            ("Swish { beta: 2.0 }", "Swish { beta: 2.0 }"),
        ];
        for (written, shown) in cases {
            let e: Expr = syn::parse_str(written).unwrap();
            assert_eq!(source(&e), shown);
        }
        assert_eq!(and_list(&["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(and_list(&["a"]), "`a`");
    }
}
