//! The `sequential!` macro: Keras-style model declarations expanded into typed
//! Rust structs with both execution paths (tape and static), a summary, and
//! save/load. Use it through the `nn` crate, which documents the syntax.
//!
//! Parsing, validation and code generation are separate steps, each on `syn`
//! and `proc_macro2` types: `parse` reads the declaration as written,
//! `validate` resolves names, infers shapes and reports every mistake as a
//! spanned error, and `expand` generates the code.

mod args;
mod builtins;
mod expand;
mod parse;
mod suggest;
mod validate;
mod validate_conv;

use proc_macro::TokenStream;

/// Declares a sequential model. See the `nn` crate's documentation.
#[proc_macro]
pub fn sequential(input: TokenStream) -> TokenStream {
    let def = match syn::parse::<parse::ModelDef>(input) {
        Ok(def) => def,
        Err(e) => return e.to_compile_error().into(),
    };
    match validate::plan(&def) {
        Ok(plan) => expand::model(&plan).into(),
        // Emit the struct anyway so users see this one error, not twenty more.
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(expand::fallback(&def));
            out.into()
        }
    }
}
