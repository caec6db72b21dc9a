//! The facts both halves of the framework need, declared once.
//!
//! `nn-core` (the runtime) and `nn-macros` (the `sequential!` macro) both
//! depend on this crate, so the names the macro accepts and suggests, the
//! activation types and their defaults, and the shape arithmetic of windows
//! (convolution, pooling) cannot drift apart:
//!
//! - [`activation_table!`] lists every built-in activation once: its Keras
//!   name and aliases, its type, its arguments with their defaults, how it
//!   changes a shape, its `Var` method and its documentation. `nn-core`
//!   generates its types, constants, runtime lookup and tape methods from it;
//!   [`ACTIVATIONS`] is the same table as data, for the macro.
//! - [`shapes`] holds the output-size formulas of sliding windows;
//! - [`suggest`] finds the name a typo meant, for "did you mean" messages
//!   at compile time and at run time alike.
//!
//! It has no dependencies, so a proc-macro crate can use it at no cost.

mod activations;
pub mod shapes;
pub mod suggest;

pub use activations::{
    find_activation, halved_axis, ActivationSpec, ArgSpec, ShapeRule, ACTIVATIONS,
};
