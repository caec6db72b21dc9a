//! The declaration as written: no name resolution, no shapes.
//!
//! ```text
//! #[attrs] vis struct Name: input(d1, d2, …) {
//!     [field:] Layer[(args)] [-> (d1, …)],
//!     …
//! }
//! ```

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, parenthesized, Attribute, Expr, Ident, LitInt, Path, Token, Visibility};

/// A whole `sequential!` invocation.
pub struct ModelDef {
    /// Outer attributes other than `#[dtype(..)]` (doc comments, derives).
    pub attrs: Vec<Attribute>,
    /// The element type from `#[dtype(f64)]`, if given.
    pub dtype: Option<Ident>,
    pub vis: Visibility,
    pub name: Ident,
    /// `input(…)`, or `None` when the user left it out.
    pub input: Option<InputSpec>,
    pub layers: Vec<LayerDef>,
    /// The span of the `{ … }` block.
    pub body_span: Span,
}

/// `input(784)` or `input(1, 28, 28)`.
pub struct InputSpec {
    pub keyword: Ident,
    pub dims: Vec<LitInt>,
}

/// One line of the body.
pub struct LayerDef {
    pub field: Option<Ident>,
    /// `Dense`, `my::Block`, `Scale<f32>`.
    pub kind: Path,
    pub args: Vec<Arg>,
    /// `-> (64)`: the output shape a user layer declares.
    pub output: Option<Vec<LitInt>>,
}

/// One argument inside a layer's parentheses.
pub enum Arg {
    Positional(Expr),
    Named { name: Ident, value: Expr },
}

impl Parse for ModelDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let all_attrs = input.call(Attribute::parse_outer)?;
        let mut attrs = Vec::new();
        let mut dtype = None;
        for attr in all_attrs {
            if attr.path().is_ident("dtype") {
                let ty: Ident = attr.parse_args()?;
                if ty != "f32" && ty != "f64" {
                    return Err(syn::Error::new(
                        ty.span(),
                        format!("#[dtype({ty})]: the element type must be f32 or f64"),
                    ));
                }
                dtype = Some(ty);
            } else {
                attrs.push(attr);
            }
        }
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        let input_spec = if input.peek(Token![:]) {
            input.parse::<Token![:]>()?;
            let keyword: Ident = input.parse()?;
            if keyword != "input" {
                return Err(syn::Error::new(
                    keyword.span(),
                    format!("expected `input(..)` after `{name}:`, found `{keyword}`"),
                ));
            }
            let content;
            parenthesized!(content in input);
            let dims = Punctuated::<LitInt, Token![,]>::parse_terminated(&content)?;
            Some(InputSpec {
                keyword,
                dims: dims.into_iter().collect(),
            })
        } else {
            None
        };
        let content;
        let brace = braced!(content in input);
        let layers = Punctuated::<LayerDef, Token![,]>::parse_terminated(&content)?;
        Ok(ModelDef {
            attrs,
            dtype,
            vis,
            name,
            input: input_spec,
            layers: layers.into_iter().collect(),
            body_span: brace.span.join(),
        })
    }
}

impl Parse for LayerDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let field = if input.peek(Ident) && input.peek2(Token![:]) && !input.peek2(Token![::]) {
            let f: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            Some(f)
        } else {
            None
        };
        let kind = Path::parse_mod_style(input).or_else(|_| input.parse::<Path>())?;
        let kind = if input.peek(Token![<]) {
            // `Scale<f32>`: re-parse with generic arguments.
            let generics: syn::AngleBracketedGenericArguments = input.parse()?;
            let mut kind = kind;
            let last = kind.segments.last_mut().expect("a path has a segment");
            last.arguments = syn::PathArguments::AngleBracketed(generics);
            kind
        } else {
            kind
        };
        let mut args = Vec::new();
        if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            let parsed = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?;
            args = parsed.into_iter().collect();
        }
        let output = if input.peek(Token![->]) {
            input.parse::<Token![->]>()?;
            let content;
            parenthesized!(content in input);
            let dims = Punctuated::<LitInt, Token![,]>::parse_terminated(&content)?;
            Some(dims.into_iter().collect())
        } else {
            None
        };
        Ok(LayerDef {
            field,
            kind,
            args,
            output,
        })
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: Expr = input.parse()?;
            Ok(Arg::Named { name, value })
        } else {
            Ok(Arg::Positional(input.parse()?))
        }
    }
}
