//! The math, as plain functions on ndarray views: no tape, no state.
//!
//! Each file holds one op family with its forward and backward side by side.
//! The autograd tape and the models' static backward both call these, so every
//! formula exists once.

pub mod activation;
pub mod arith;
mod array;
pub mod attention;
#[cfg(target_arch = "x86_64")]
mod barrier;
pub mod binary;
pub mod broadcast;
pub mod conv;
pub mod cpu;
pub(crate) mod direct_conv;
pub mod dropout;
pub mod embedding;
pub mod erf;
pub mod gelu;
pub mod gemm;
pub mod glu;
mod lanes;
pub mod loss;
#[cfg(target_arch = "x86_64")]
mod masks;
pub mod math;
pub mod matmul;
pub mod norm;
pub mod owned;
pub mod patches;
pub mod pointwise;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod shape;
mod simd;
pub mod softmax;
pub mod sparsemax;
pub mod tanh;
#[cfg(target_arch = "x86_64")]
mod transpose;
#[cfg(test)]
mod ulps;
