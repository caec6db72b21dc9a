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
//! kind of mistake has a compile-fail case under `nn-checks/tests/ui/` (both checked by
//! the tests in `tests.rs`).
//!
//! # Composition
//!
//! Every model is a `nn::layers::Layer` (both paths, parameters, buffers,
//! train/eval) and a `nn::layers::Sublayer`, so one goes inside another:
//!
//! ```text
//! sequential! {
//!     pub struct Block: input(64) {
//!         Dense(64, activation = relu),
//!         Residual { Dense(64, activation = relu), Dense(64) },
//!     }
//! }
//! sequential! {
//!     pub struct Net: input(784) {
//!         Dense(64, activation = relu),
//!         block: Block,                    // a nested model: its name, no `(..)`
//!         Block,                           // another one, `block_1`
//!         down: Residual(shortcut = Dense(32)) { Dense(32, activation = relu) },
//!         Dense(10),
//!     }
//! }
//! ```
//!
//! - **A nested model** is written by its name without parentheses (with
//!   them, `MyLayer(..)` calls your layer's constructor, `MyLayer::new(..)`)
//!   and built by `Sublayer::build` from the outer model's RNG. The macro
//!   cannot read another invocation's shapes: as for your own layers, write
//!   `-> (..)` after it when it changes the shape. Both shapes are checked
//!   when the code compiles (`nn::layers::check_nested`, a `const` item per
//!   nested layer): a mismatch is a compile error naming the layer and both
//!   shapes. A nested model named like a built-in layer is written as a path
//!   (`self::Tape`). Its parameters are named under its field,
//!   `block.dense.weight`, as PyTorch names a sub-module's.
//! - **`Residual { .. }`** computes `y = x + f(x)` with `f` its body, a chain
//!   of layers checked like a model's; a body that changes the shape is a
//!   compile error suggesting a projection. `Residual(shortcut = Conv2d(..))`
//!   (one layer) or `Residual(shortcut = { Conv2d(..), BatchNorm })` (a chain)
//!   computes `y = shortcut(x) + f(x)`; `activation = relu` (any activation)
//!   applies it to the sum, `y = relu(x + f(x))`. Each chain becomes a hidden struct
//!   (`Net__down`, `Net__down__shortcut`) inside `nn::layers::Residual`. The
//!   body's parameters are named directly under the block (`down.dense.weight`,
//!   as torchvision's `BasicBlock` holds `conv1`, `bn1`), the shortcut's under
//!   `shortcut.` (`down.shortcut.dense.weight`); a body layer cannot be called
//!   `shortcut`.
//! - **`summary()`** shows a nested model or a block as one row with its
//!   parameter count, as Keras does; `summary().expanded()` lists their layers
//!   under it, indented.
//! - **`PARAM_COUNT`** adds the nested models' `Sublayer::PARAM_COUNT` when
//!   the code compiles (a compile error where it is used if one of them holds
//!   layers of your own, counted at run time).
//! - The methods `Model` and `Layer` share (`forward`, `forward_train`,
//!   `backward`, `predict`, `set_training`, `visit_params`, `visit_buffers`,
//!   `param_count`) are also inherent methods of the model with `Model`'s
//!   meaning, so `model.forward(&x)` needs no disambiguation; the `Layer`
//!   versions (`Layer::backward(&mut m, x, dy, true)` returns the input's
//!   gradient) are called as `Layer::…`.

mod activation_fn;
mod args;
mod builtins;
mod errors;
mod expand;
mod functional;
mod layers;
mod module;
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

/// Declares a graph of layers, Keras's functional API. See the `nn` crate's
/// documentation.
#[proc_macro]
pub fn functional(input: TokenStream) -> TokenStream {
    functional::functional(input.into()).into()
}

/// Derives `nn::module::Module` (named parameters and buffers, train/eval)
/// for a struct of parts, and `nn::train::TapeModel` through the struct's
/// own `forward`, so it trains with `fit`. See the `nn` crate's documentation.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input).and_then(|d| module::derive(&d)) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
