//! A `functional!` declaration as written: no name resolution, no shapes.
//!
//! ```text
//! #[attrs] vis struct Name(image: input(1, 28, 28), meta: input(4)) -> (out, aux) {
//!     let x = Conv2d(16, kernel = 3, activation = relu)(image);   // a layer applied
//!     let x = GlobalAvgPool(x);                                   // no arguments: applied
//!     let shared = Dense(16);                                     // a layer to share
//!     let m = shared(meta);                                       // … applied
//!     let h = Concatenate(x, m);                                  // a merge
//!     let out = Dense(10, activation = softmax)(h);
//!     …
//! }
//! ```
//!
//! Whether `Callee(..)` with one group of parentheses applies a layer or
//! declares one depends on the names in it, which `graph` decides.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::token::{Brace, Bracket, Paren};
use syn::{braced, bracketed, parenthesized, Attribute, Ident, Path, Token, Visibility};

use crate::parse::{dims, layer_list, layer_path, output_spec, Arg, Body, InputSpec, OutputSpec};

/// A whole `functional!` invocation.
pub struct GraphDef {
    pub attrs: Vec<Attribute>,
    pub dtype: Option<Ident>,
    pub vis: Visibility,
    pub name: Ident,
    /// The span of `(inputs…)`.
    pub inputs_span: Span,
    pub inputs: Vec<InputDef>,
    /// The span of `-> (outputs…)`, or of the name when it is missing.
    pub outputs_span: Span,
    pub outputs: Vec<Ident>,
    pub stmts: Vec<Stmt>,
    /// The span of the `{ … }` block.
    pub body_span: Span,
}

/// `image: input(1, 28, 28)`.
pub struct InputDef {
    pub name: Ident,
    pub spec: InputSpec,
}

/// `let name = Callee[(group)][(group)][{ layers… }][-> (dims)];`
pub struct Stmt {
    pub name: Ident,
    /// `Dense`, `shared`, `my::Block`, `Scale<f32>`.
    pub callee: Path,
    /// The parentheses right after the callee: a layer's arguments, or the
    /// inputs of a layer applied without arguments.
    pub first: Option<Group>,
    /// A second pair: the inputs of the layer the first pair built.
    pub second: Option<Group>,
    /// `{ layers… }` after the arguments (a `Residual` block's body).
    pub body: Option<Body>,
    /// `-> (64)`: the output shape of a layer of the user's own.
    pub output: Option<OutputSpec>,
}

/// The contents of one pair of parentheses, kept as tokens: arguments or
/// tensor names, which `graph` reads once it knows which.
pub struct Group {
    pub span: Span,
    pub tokens: TokenStream,
}

impl Group {
    /// The group as a layer's arguments.
    pub fn args(&self) -> syn::Result<Vec<Arg>> {
        let parsed = syn::parse::Parser::parse2(
            Punctuated::<Arg, Token![,]>::parse_terminated,
            self.tokens.clone(),
        )?;
        Ok(parsed.into_iter().collect())
    }

    /// The group as tensor names, `(a, b)` or Keras's list `([a, b])`;
    /// `None` if it is not a list of plain names.
    pub fn names(&self) -> Option<Vec<Ident>> {
        let list = |input: ParseStream| -> syn::Result<Vec<Ident>> {
            if input.peek(Bracket) {
                let content;
                bracketed!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                if !input.is_empty() {
                    return Err(input.error("expected one list of tensors"));
                }
                return Ok(names.into_iter().collect());
            }
            let names = Punctuated::<Ident, Token![,]>::parse_terminated(input)?;
            Ok(names.into_iter().collect())
        };
        syn::parse::Parser::parse2(list, self.tokens.clone()).ok()
    }
}

fn group(input: ParseStream) -> syn::Result<Group> {
    let content;
    let paren: Paren = parenthesized!(content in input);
    Ok(Group {
        span: paren.span.join(),
        tokens: content.parse()?,
    })
}

impl Parse for GraphDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut attrs = Vec::new();
        let mut dtype = None;
        for attr in input.call(Attribute::parse_outer)? {
            if attr.path().is_ident("dtype") {
                dtype = Some(attr.parse_args::<Ident>()?);
            } else {
                attrs.push(attr);
            }
        }
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        let content;
        let paren = parenthesized!(content in input);
        let mut inputs = Vec::new();
        while !content.is_empty() {
            let name: Ident = content.parse()?;
            content.parse::<Token![:]>()?;
            let keyword: Ident = content.parse()?;
            let (paren, dims) = dims(&content)?;
            inputs.push(InputDef {
                name,
                spec: InputSpec {
                    keyword,
                    paren,
                    dims,
                },
            });
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        let (outputs_span, outputs) = if input.peek(Token![->]) {
            let arrow = input.parse::<Token![->]>()?;
            if input.peek(Paren) {
                let content;
                let paren = parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                let span = arrow.spans[0]
                    .join(paren.span.join())
                    .unwrap_or(arrow.spans[0]);
                (span, names.into_iter().collect())
            } else {
                let out: Ident = input.parse()?;
                (out.span(), vec![out])
            }
        } else {
            (name.span(), Vec::new())
        };
        let content;
        let brace: Brace = braced!(content in input);
        let mut stmts = Vec::new();
        while !content.is_empty() {
            stmts.push(content.parse()?);
        }
        Ok(GraphDef {
            attrs,
            dtype,
            vis,
            name,
            inputs_span: paren.span.join(),
            inputs,
            outputs_span,
            outputs,
            stmts,
            body_span: brace.span.join(),
        })
    }
}

impl Parse for Stmt {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input.parse::<Token![let]>()?;
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let callee = layer_path(input)?;
        let first = if input.peek(Paren) {
            Some(group(input)?)
        } else {
            None
        };
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
        let second = if input.peek(Paren) {
            Some(group(input)?)
        } else {
            None
        };
        let output = output_spec(input)?;
        input.parse::<Token![;]>()?;
        Ok(Stmt {
            name,
            callee,
            first,
            second,
            body,
            output,
        })
    }
}
