//! Weight initializers with Keras's names and formulas, drawn from a seeded RNG.
//!
//! `fan_in` and `fan_out` follow Keras: for a dense kernel they are the input
//! and output sizes; for a conv kernel `[out, in, kh, kw]` each is multiplied by
//! the receptive field `kh·kw`. The `*_normal` variants draw from a normal
//! truncated at two standard deviations, with the standard deviation corrected
//! for the truncation (`σ = √(scale / n) / 0.8796…`), as Keras 3 does.

use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Float;

/// How to fill a new parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Initializer {
    /// `U(-l, l)`, `l = √(6 / (fan_in + fan_out))` — Keras's default for kernels.
    GlorotUniform,
    /// Truncated normal, `σ = √(2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// `U(-l, l)`, `l = √(6 / fan_in)`.
    HeUniform,
    /// Truncated normal, `σ = √(2 / fan_in)`.
    HeNormal,
    /// `U(-l, l)`, `l = √(3 / fan_in)`.
    LecunUniform,
    /// Truncated normal, `σ = √(1 / fan_in)`.
    LecunNormal,
    /// `U(-l, l)`, `l = √(1 / fan_in)` — PyTorch's default for `nn.Linear`
    /// and `nn.Conv2d` weights and biases (`kaiming_uniform_` with `a = √5`).
    /// A bias drawn by [`Initializer::init_bias`] takes its layer's kernel's
    /// `fan_in`, as PyTorch does.
    TorchDefault,
    /// All zeros — Keras's default for biases.
    Zeros,
    /// All ones.
    Ones,
    /// Every element the given value.
    Constant(f64),
    /// `U(min, max)`.
    RandomUniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `N(mean, stddev²)`.
    RandomNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
}

/// Every name [`Initializer::from_name`] accepts.
pub const NAMES: &[&str] = &[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "torch_default",
    "zeros",
    "ones",
];

/// Standard deviation of a unit normal truncated to [-2, 2].
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// The initializer with this Keras name (`"glorot_uniform"`, `"zeros"`, …).
    pub fn from_name(name: &str) -> Option<Initializer> {
        Some(match name {
            "glorot_uniform" => Initializer::GlorotUniform,
            "glorot_normal" => Initializer::GlorotNormal,
            "he_uniform" => Initializer::HeUniform,
            "he_normal" => Initializer::HeNormal,
            "lecun_uniform" => Initializer::LecunUniform,
            "lecun_normal" => Initializer::LecunNormal,
            "torch_default" => Initializer::TorchDefault,
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Ones,
            _ => return None,
        })
    }

    /// A new array of `shape` (PyTorch layout: `[out, in, …]`).
    pub fn init<T: Float, R: Rng + ?Sized>(&self, shape: &[usize], rng: &mut R) -> ArrayD<T> {
        let (fan_in, fan_out) = fans(shape);
        let uniform = |rng: &mut R, limit: f64| -> ArrayD<T> {
            ArrayD::from_shape_simple_fn(IxDyn(shape), || T::lit(rng.random_range(-limit..=limit)))
        };
        let truncated = |rng: &mut R, stddev: f64| -> ArrayD<T> {
            ArrayD::from_shape_simple_fn(IxDyn(shape), || {
                T::lit(stddev * truncated_unit_normal(rng))
            })
        };
        match *self {
            Initializer::GlorotUniform => uniform(rng, (6.0 / (fan_in + fan_out)).sqrt()),
            Initializer::GlorotNormal => {
                truncated(rng, (2.0 / (fan_in + fan_out)).sqrt() / TRUNCATED_STD)
            }
            Initializer::HeUniform => uniform(rng, (6.0 / fan_in).sqrt()),
            Initializer::HeNormal => truncated(rng, (2.0 / fan_in).sqrt() / TRUNCATED_STD),
            Initializer::LecunUniform => uniform(rng, (3.0 / fan_in).sqrt()),
            Initializer::LecunNormal => truncated(rng, (1.0 / fan_in).sqrt() / TRUNCATED_STD),
            Initializer::TorchDefault => uniform(rng, (1.0 / fan_in).sqrt()),
            Initializer::Zeros => ArrayD::zeros(IxDyn(shape)),
            Initializer::Ones => ArrayD::ones(IxDyn(shape)),
            Initializer::Constant(c) => ArrayD::from_elem(IxDyn(shape), T::lit(c)),
            Initializer::RandomUniform { min, max } => {
                ArrayD::from_shape_simple_fn(IxDyn(shape), || T::lit(rng.random_range(min..=max)))
            }
            Initializer::RandomNormal { mean, stddev } => {
                ArrayD::from_shape_simple_fn(IxDyn(shape), || {
                    let z: f64 = StandardNormal.sample(rng);
                    T::lit(mean + stddev * z)
                })
            }
        }
    }

    /// A new bias of `len` for a layer whose kernel has `kernel_shape`:
    /// [`Initializer::TorchDefault`] bounds it by the kernel's `fan_in` (as
    /// PyTorch does); every other initializer sees the bias's own shape, as
    /// Keras does.
    pub fn init_bias<T: Float, R: Rng + ?Sized>(
        &self,
        kernel_shape: &[usize],
        len: usize,
        rng: &mut R,
    ) -> ArrayD<T> {
        match *self {
            Initializer::TorchDefault => {
                let limit = (1.0 / fans(kernel_shape).0).sqrt();
                Initializer::RandomUniform {
                    min: -limit,
                    max: limit,
                }
                .init(&[len], rng)
            }
            _ => self.init(&[len], rng),
        }
    }
}

/// Keras's fans for a PyTorch-layout shape `[out, in, receptive…]`; a 1-D shape
/// (a bias) has `fan_in = fan_out = len`.
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [out, inp, rest @ ..] => {
            let field: usize = rest.iter().product();
            ((inp * field) as f64, (out * field) as f64)
        }
    }
}

/// A unit normal sample conditioned on |z| ≤ 2 (rejection sampling).
fn truncated_unit_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    loop {
        let z: f64 = StandardNormal.sample(rng);
        if z.abs() <= 2.0 {
            return z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn glorot_uniform_stays_within_its_limit_and_fills_it() {
        let mut rng = StdRng::seed_from_u64(1);
        let w: ArrayD<f64> = Initializer::GlorotUniform.init(&[128, 784], &mut rng);
        let limit = (6.0f64 / (784.0 + 128.0)).sqrt(); // Keras's formula
        assert!(w.iter().all(|v| v.abs() <= limit));
        // Uniform variance is limit²/3.
        let var = w.mapv(|v| v * v).mean().unwrap();
        assert!(
            (var / (limit * limit / 3.0) - 1.0).abs() < 0.02,
            "variance {var}"
        );
    }

    #[test]
    fn he_normal_has_the_target_standard_deviation() {
        let mut rng = StdRng::seed_from_u64(2);
        let w: ArrayD<f64> = Initializer::HeNormal.init(&[256, 400], &mut rng);
        let target = (2.0f64 / 400.0).sqrt(); // Keras: the truncation is compensated
        let std = w.mapv(|v| v * v).mean().unwrap().sqrt();
        assert!((std / target - 1.0).abs() < 0.02, "std {std} vs {target}");
        assert!(w
            .iter()
            .all(|v| v.abs() <= 2.0 * target / TRUNCATED_STD + 1e-12));
    }

    #[test]
    fn conv_fans_include_the_receptive_field() {
        assert_eq!(fans(&[6, 1, 5, 5]), (25.0, 150.0));
    }

    /// PyTorch's `nn.Conv2d` docs: weight and bias `U(-√k, √k)`, `k = 1 /
    /// (C_in · kh · kw)`; `nn.Linear`'s: `k = 1 / in_features`.
    #[test]
    fn torch_default_bounds_kernel_and_bias_by_the_kernels_fan_in() {
        let mut rng = StdRng::seed_from_u64(3);
        let init = Initializer::TorchDefault;
        for (kernel, len) in [(vec![16, 6, 5, 5], 16), (vec![10, 400], 10)] {
            let limit = 1.0 / (kernel[1..].iter().product::<usize>() as f64).sqrt();
            let w: ArrayD<f64> = init.init(&kernel, &mut rng);
            let var = w.mapv(|v| v * v).mean().unwrap();
            assert!(w.iter().all(|v| v.abs() <= limit));
            // Uniform variance is limit²/3; with 2400 draws the sample's has a
            // relative spread of √(0.8 / 2400) ≈ 1.8 %: 5 % is ~2.7 of them.
            assert!(
                (var / (limit * limit / 3.0) - 1.0).abs() < 0.05,
                "variance {var}"
            );
            // Enough draws that a bound of 1/√len (the bias's own fan) would show.
            let b: ArrayD<f64> = init.init_bias(&kernel, 4000 * len, &mut rng);
            assert!(b.iter().all(|v| v.abs() <= limit));
            assert!(b.iter().any(|v| v.abs() > 0.99 * limit));
        }
        // Every other initializer draws a bias from its own shape, as Keras does.
        let b: ArrayD<f64> = Initializer::Constant(0.5).init_bias(&[3, 7], 3, &mut rng);
        assert_eq!(b.as_slice().unwrap(), &[0.5; 3]);
        assert_eq!(Initializer::from_name("torch_default"), Some(init));
    }
}
