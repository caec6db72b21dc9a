//! The `sequential!` macro: Keras-style model declarations expanded into typed
//! Rust structs with both execution paths (tape and static), a summary, and
//! save/load. Use it through the `nn` crate, which documents the syntax.
//!
//! Parsing, validation and code generation are separate steps, each on `syn`
//! and `proc_macro2` types: `parse` reads the declaration as written,
//! `validate` checks the model and walks its layers through their rules in
//! `layers` (one module per built-in layer, registered in
//! `layers::BUILTINS`), inferring shapes and reporting every mistake as a
//! spanned error (`errors`), and `expand` generates the code. Activations come
//! from the table shared with the runtime, `nn_spec::ACTIVATIONS`
//! (`activation_fn`).
//!
//! The macro never panics: every failure is a spanned `syn::Error`, and each
//! kind of mistake has a compile-fail case under `tests/ui/` (both checked by
//! the tests in `tests.rs`).

mod activation_fn;
mod args;
mod builtins;
mod errors;
mod expand;
mod layers;
mod parse;
mod validate;

#[cfg(test)]
mod tests;

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
