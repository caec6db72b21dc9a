//! Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) with PyTorch's exact update
//! rules, learning-rate schedules and gradient clipping.
//!
//! Not implemented yet: until then, update [`nn_core::Param`]s by hand from
//! their gradients.

pub use nn_core::Param;
