//! The declaration as written: no name resolution, no shapes.
//!
//! ```text
//! #[attrs] vis struct Name: input(d1, d2, …) {
//!     [field:] Layer[(args)] [{ layers… }] [-> (d1, …)],
//!     …
//! }
//! ```
//!
//! A braced body follows a block of layers (`Residual { Conv2d(..), .. }`);
//! a named argument may be one too (`shortcut = { Conv2d(..), BatchNorm }`),
//! kept as its tokens for the rule that reads it.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::token::{Brace, Paren};
use syn::{braced, parenthesized, Attribute, Expr, Ident, LitInt, Path, Token, Visibility};

/// A whole `sequential!` invocation.
pub struct ModelDef {
    /// Outer attributes other than `#[dtype(..)]` (doc comments, derives).
    pub attrs: Vec<Attribute>,
    /// The element type from `#[dtype(f64)]`, if given (checked by `validate`).
    pub dtype: Option<Ident>,
    pub vis: Visibility,
    pub name: Ident,
    /// `input(…)`, or `None` when the user left it out.
    pub input: Option<InputSpec>,
    pub layers: Vec<LayerDef>,
    /// The span of the `{ … }` block.
    pub body_span: Span,
}

/// `input(784)` or `input(1, 28, 28)` (the keyword is checked by `validate`).
pub struct InputSpec {
    pub keyword: Ident,
    pub paren: Paren,
    pub dims: Punctuated<LitInt, Token![,]>,
}

/// `-> (64)` after a user layer.
#[derive(Clone)]
pub struct OutputSpec {
    pub arrow: Token![->],
    pub paren: Paren,
    pub dims: Punctuated<LitInt, Token![,]>,
}

/// `keyword(dims)` or `-> (dims)` as tokens, so an error spans all of it.
fn dims_tokens(
    head: TokenStream,
    paren: &Paren,
    dims: &Punctuated<LitInt, Token![,]>,
) -> TokenStream {
    let mut out = head;
    paren.surround(&mut out, |t| dims.to_tokens(t));
    out
}

impl ToTokens for InputSpec {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(dims_tokens(
            self.keyword.to_token_stream(),
            &self.paren,
            &self.dims,
        ));
    }
}

impl ToTokens for OutputSpec {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(dims_tokens(
            self.arrow.to_token_stream(),
            &self.paren,
            &self.dims,
        ));
    }
}

/// One line of the body.
#[derive(Clone)]
pub struct LayerDef {
    pub field: Option<Ident>,
    /// `Dense`, `my::Block`, `Scale<f32>`.
    pub kind: Path,
    pub args: Vec<Arg>,
    /// Whether `(..)` was written, even empty: `Block` is a nested model,
    /// `MyLayer()` a call of `MyLayer::new()`.
    pub parens: bool,
    /// `{ layers… }` after the layer (a `Residual` block's body).
    pub body: Option<Body>,
    /// `-> (64)`: the output shape a user layer declares.
    pub output: Option<OutputSpec>,
}

/// `{ layers… }`: the layers of a block, in order.
#[derive(Clone)]
pub struct Body {
    pub brace: Brace,
    pub layers: Vec<LayerDef>,
}

impl Body {
    /// The span of the braces and all inside.
    pub fn span(&self) -> Span {
        self.brace.span.join()
    }
}

/// The layers of a `{ .. }` group, as in a model's body.
pub fn layer_list(input: ParseStream) -> syn::Result<Vec<LayerDef>> {
    let layers = Punctuated::<LayerDef, Token![,]>::parse_terminated(input)?;
    Ok(layers.into_iter().collect())
}

/// A layer's path, `Dense`, `my::Block`, or with generic arguments as a type
/// writes them, `Scale<f32>`.
pub fn layer_path(input: ParseStream) -> syn::Result<Path> {
    let mut path = Path::parse_mod_style(input).or_else(|_| input.parse::<Path>())?;
    if input.peek(Token![<]) {
        // `Scale<f32>`: re-parse with generic arguments.
        let generics: syn::AngleBracketedGenericArguments = input.parse()?;
        if let Some(last) = path.segments.last_mut() {
            last.arguments = syn::PathArguments::AngleBracketed(generics);
        }
    }
    Ok(path)
}

/// `(d1, d2, …)`: the parentheses and the dimensions in them.
pub fn dims(input: ParseStream) -> syn::Result<(Paren, Punctuated<LitInt, Token![,]>)> {
    let content;
    let paren = parenthesized!(content in input);
    Ok((paren, Punctuated::parse_terminated(&content)?))
}

/// `-> (64)` if it comes next.
pub fn output_spec(input: ParseStream) -> syn::Result<Option<OutputSpec>> {
    if !input.peek(Token![->]) {
        return Ok(None);
    }
    let arrow = input.parse::<Token![->]>()?;
    let (paren, dims) = dims(input)?;
    Ok(Some(OutputSpec { arrow, paren, dims }))
}

/// One argument inside a layer's parentheses.
#[derive(Clone)]
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
                dtype = Some(attr.parse_args::<Ident>()?);
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
            let (paren, dims) = dims(input)?;
            Some(InputSpec {
                keyword,
                paren,
                dims,
            })
        } else {
            None
        };
        let content;
        let brace = braced!(content in input);
        let layers = layer_list(&content)?;
        Ok(ModelDef {
            attrs,
            dtype,
            vis,
            name,
            input: input_spec,
            layers,
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
        let kind = layer_path(input)?;
        let mut args = Vec::new();
        let parens = input.peek(Paren);
        if parens {
            let content;
            parenthesized!(content in input);
            let parsed = Punctuated::<Arg, Token![,]>::parse_terminated(&content)?;
            args = parsed.into_iter().collect();
        }
        let body = if input.peek(Brace) {
            let content;
            let brace = braced!(content in input);
            Some(Body {
                brace,
                layers: layer_list(&content)?,
            })
        } else {
            None
        };
        let output = output_spec(input)?;
        Ok(LayerDef {
            field,
            kind,
            args,
            parens,
            body,
            output,
        })
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            // `shortcut = { Conv2d(..), BatchNorm }`: layers, not an expression.
            let value = if input.peek(Brace) {
                Expr::Verbatim(TokenStream::from(input.parse::<proc_macro2::TokenTree>()?))
            } else {
                input.parse()?
            };
            Ok(Arg::Named { name, value })
        } else {
            Ok(Arg::Positional(input.parse()?))
        }
    }
}
