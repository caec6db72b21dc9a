//! Regression with `fit`: learn `y = sin(x₁) + x₂² + noise` from 10,000
//! points (inputs uniform in [-2, 2]², noise normal with σ = 0.1, seed 7),
//! with the mean squared error as the loss and MAE as a metric. The best any
//! model can do on the test set is the noise's own variance there; the
//! network gets within a few percent of it.
//!
//! Run: `cargo run --release --example regression`

#[path = "common/cli.rs"]
mod cli;

use nn::data::normalize::Normalizer;
use nn::ndarray::{ArrayD, IxDyn};
use nn::optim::CosineAnnealing;
use nn::prelude::*;
use nn::rand::rngs::StdRng;
use nn::rand::{Rng, SeedableRng};
use nn::train::MeanAbsoluteError;

const USAGE: &str = "\
Fit y = sin(x1) + x2^2 + noise with an MLP and the mean squared error.

Usage: cargo run --release --example regression -- [flags]

  --epochs N   passes over the 8,000 training points (default 60)
  --seed N     data and initialization seed (default 7)
  --checkpoint DIR  save a checkpoint in DIR after every epoch
  --resume DIR      continue the run checkpointed in DIR up to --epochs
                    (none there: start afresh)";

sequential! {
    /// Two inputs, one value out.
    pub struct Regressor: input(2) {
        Dense(64, activation = tanh),
        Dense(64, activation = tanh),
        Dense(1),
    }
}

/// The function without noise.
fn truth(x1: f32, x2: f32) -> f32 {
    x1.sin() + x2 * x2
}

/// `n` points and their noisy targets; also the noise itself.
fn points(n: usize, rng: &mut StdRng) -> (ArrayD<f32>, ArrayD<f32>, Vec<f32>) {
    let mut x = ArrayD::zeros(IxDyn(&[n, 2]));
    let mut y = ArrayD::zeros(IxDyn(&[n, 1]));
    let mut noise = Vec::with_capacity(n);
    for i in 0..n {
        let (x1, x2) = (rng.random_range(-2.0..2.0), rng.random_range(-2.0..2.0));
        // Box–Muller: a standard normal from two uniforms.
        let (u, v): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
        let e = 0.1 * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos();
        x[[i, 0]] = x1;
        x[[i, 1]] = x2;
        y[[i, 0]] = truth(x1, x2) + e;
        noise.push(e);
    }
    (x, y, noise)
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let epochs = args.positive(
        "epochs",
        60,
        "the learning rate is cosine-annealed over the steps",
    );
    let seed: u64 = args.get("seed", 7);

    let mut rng = StdRng::seed_from_u64(seed);
    let (x, y, noise) = points(10_000, &mut rng);
    let data = Dataset::with_values(x, y);
    let (train, test) = data.split(0.2);
    let test_noise = &noise[train.len()..];

    // Standardize the inputs with the training set's statistics.
    let scale = Normalizer::standard(train.inputs()).expect("finite inputs");
    let (train, test) = (scale.apply_to_inputs(&train), scale.apply_to_inputs(&test));

    let mut model = Regressor::with_seed(seed);
    let mut opt = Adam::new(AdamConfig {
        lr: 3e-3,
        ..Default::default()
    })
    .expect("valid settings");
    let batch_size = 32;
    let steps = epochs * train.len().div_ceil(batch_size);
    let history = fit(
        &mut model,
        &mut opt,
        &train,
        FitOptions {
            epochs,
            batch_size,
            loss: Loss::Mse.into(),
            metrics: vec![Box::new(MeanAbsoluteError::default())],
            validation: Some(&test),
            lr_schedule: Some(Box::new(
                CosineAnnealing::new(steps, 1e-5).expect("valid schedule"),
            )),
            verbosity: Verbosity::Lines,
            checkpoint_dir: args.opt("checkpoint").map(std::path::PathBuf::from),
            resume_from: args.opt("resume").map(std::path::PathBuf::from),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let last = history.last().expect("at least one epoch");
    let variance =
        test_noise.iter().map(|e| f64::from(e * e)).sum::<f64>() / test_noise.len() as f64;
    println!("noise variance: {variance:.5}");
    println!("test mse: {:.5}", last.val_loss.expect("validation ran"));
}
