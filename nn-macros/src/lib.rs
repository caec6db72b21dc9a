//! The `sequential!` macro: Keras-style model declarations expanded into typed
//! Rust structs with forward and backward passes.
//!
//! Not implemented yet: models are written directly on the tape of `nn-core`
//! for now.
