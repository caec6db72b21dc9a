//! The ops a [`Var`](super::Var) records, one file per family. Each op is a
//! small struct implementing [`Op`](super::Op) by calling into
//! [`crate::kernels`]; registering a new one is a `Tape::record` call.

mod arith;
mod attention;
pub mod binary;
mod conv;
mod conv1d;
mod dropout;
mod matmul;
mod norm;
mod pointwise;
mod recurrent;
mod reduce;
mod shape;
mod vision;

pub use conv1d::Window1d;
pub use pointwise::ActivationOp;
