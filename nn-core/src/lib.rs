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
pub mod distributed;
mod float;
mod freeze;
pub mod gradcheck;
pub mod graph;
pub mod init;
#[doc(hidden)]
pub mod instances;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod memory;
pub mod model;
pub mod module;
pub mod parallel;
mod prefetch;
pub mod summary;
pub mod tape;

pub use float::Float;
pub use freeze::{freeze, freeze_layer, unfreeze, unfreeze_layer};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport};
pub use graph::GraphModel;
pub use model::{visit_distinct_params, Model, Parameters};
pub use tape::{Param, Tape, Var};

/// Re-exported for seeding models (`Model::new(&mut rng)`).
pub use rand;

/// Threads the large kernels (matrix products) use: `$NN_NUM_THREADS` if set,
/// else every core, at most 8. Read once and cached.
///
/// # Panics
/// If `$NN_NUM_THREADS` is set to anything but a positive whole number: a
/// setting that was asked for and cannot be honoured is not ignored.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        env_number("NN_NUM_THREADS", 1)
            .map(|n| n as usize)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
            .clamp(1, parallel::MAX_THREADS)
    })
}

/// The whole number in environment variable `name`, if set; at least `min`.
///
/// # Panics
/// If it is set but is not such a number, naming the variable and the value.
pub(crate) fn env_number(name: &str, min: u64) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Some(n),
        _ => {
            panic!("{name}={value:?} is not a whole number ≥ {min}; unset it or set e.g. {name}=2")
        }
    }
}

/// Re-exported so users name the same `ndarray` this crate uses.
pub use ndarray;

#[cfg(test)]
mod env_tests {
    use super::env_number;

    #[test]
    fn environment_settings_that_are_not_numbers_are_errors_not_ignored() {
        let name = "NN_TEST_ENV_NUMBER_SETTING";
        std::env::remove_var(name);
        assert_eq!(env_number(name, 1), None);
        std::env::set_var(name, " 3 ");
        assert_eq!(env_number(name, 1), Some(3));
        for bad in ["abc", "0", "-2", "1.5"] {
            std::env::set_var(name, bad);
            let err = std::panic::catch_unwind(|| env_number(name, 1)).expect_err(bad);
            let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(
                msg.contains(&format!("{name}={bad:?} is not a whole number ≥ 1")),
                "{msg}"
            );
        }
        std::env::remove_var(name);
    }
}
