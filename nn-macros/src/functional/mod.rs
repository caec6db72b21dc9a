//! `functional!`: Keras's functional API. A graph of layers over named
//! inputs — branches, merges, a layer applied at several places, several
//! outputs — declared with `let` statements, its shapes checked when the
//! code compiles, expanded into a typed struct with both execution paths.
//!
//! `parse` reads the declaration, `graph` resolves names and shapes (each
//! single-input layer through the same rules as `sequential!`'s,
//! `crate::layers`), `expand` generates the code.

mod expand;
pub(crate) mod graph;
pub(crate) mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

pub fn functional(input: TokenStream) -> TokenStream {
    let def = match syn::parse2::<parse::GraphDef>(input) {
        Ok(def) => def,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
    let graph = graph::check(&def, &mut errors);
    match errors.finish(graph) {
        Ok(graph) => expand::graph(&graph),
        // The struct and its constructors anyway, so users see this one
        // error, not one more at each use of the model.
        Err(e) => {
            let mut out = e.to_compile_error();
            let parse::GraphDef {
                attrs, vis, name, ..
            } = &def;
            out.extend(quote! {
                #(#attrs)*
                #vis struct #name;

                #[allow(missing_docs, dead_code)]
                impl #name {
                    pub fn new<__R: ::nn::rand::Rng + ?::core::marker::Sized>(_rng: &mut __R) -> Self { #name }
                    pub fn with_seed(_seed: u64) -> Self { #name }
                }
            });
            out
        }
    }
}
