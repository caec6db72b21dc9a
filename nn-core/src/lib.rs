//! The core of `nn`: tensors on [`ndarray`], a reverse-mode autograd [`tape`],
//! the [`kernels`] both execution paths share, Keras's [`activation`]s, the
//! [`loss`] functions, and [`gradcheck()`] to verify gradients yourself.
//!
//! Everything is generic over the element type ([`Float`]: `f32` by default,
//! `f64` for gradient checks).

#![warn(missing_docs)]

/// Implements [`tape::Op`] for an op with one differentiable input whose
/// gradient is one expression: `unary_op!(Type, |op| name, |x, y, dy| grad)`,
/// with `op` the op itself, `x` its input, `y` its output, `dy` the output's gradient.
macro_rules! unary_op {
    ($ty:ty, |$op:ident| $name:expr, |$x:ident, $y:ident, $dy:ident| $grad:expr) => {
        impl<T: $crate::Float> $crate::tape::Op<T> for $ty {
            #[allow(unused_variables)]
            fn name(&self) -> &'static str {
                let $op = self;
                $name
            }
            #[allow(unused_variables)]
            fn backward(
                &self,
                x: &[&ndarray::ArrayD<T>],
                y: &ndarray::ArrayD<T>,
                dy: &ndarray::ArrayD<T>,
                _need: &[bool],
            ) -> Vec<Option<ndarray::ArrayD<T>>> {
                let ($op, $x, $y, $dy) = (self, x[0], y, dy);
                vec![Some($grad)]
            }
        }
    };
}

pub mod activation;
pub mod data;
mod float;
mod freeze;
pub mod gradcheck;
pub mod graph;
pub mod init;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod model;
pub mod module;
pub mod parallel;
pub mod summary;
pub mod tape;

pub use float::Float;
pub use freeze::{freeze, freeze_layer, unfreeze, unfreeze_layer};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport};
pub use graph::GraphModel;
pub use model::{Model, Parameters};
pub use tape::{Param, Tape, Var};

/// Re-exported for seeding models (`Model::new(&mut rng)`).
pub use rand;

/// Threads the large kernels (matrix products) use: `$NN_NUM_THREADS` if set,
/// else every core, at most 8. Read once and cached.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("NN_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .clamp(1, 8)
    })
}

/// Re-exported so users name the same `ndarray` this crate uses.
pub use ndarray;
