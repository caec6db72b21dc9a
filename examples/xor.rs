//! Why non-linearity matters: a stack of `Dense` layers without activation is
//! one affine map, which cannot separate XOR; one `relu` is enough.
//!
//! Run: `cargo run --release --example xor`

#[path = "common/cli.rs"]
mod cli;

use nn::prelude::*;

const USAGE: &str = "\
Train two models on XOR: Dense layers only, and the same with relu.

Usage: cargo run --release --example xor -- [flags]

  --epochs N   passes over the four points (default 500)
  --seed N     initialization seed (default 1)";

sequential! {
    /// Only affine maps: their composition is affine, a single straight cut.
    pub struct LinearOnly: input(2) {
        Dense(8),
        Dense(8),
        Dense(2, activation = softmax),
    }
}

sequential! {
    /// The same depth with a relu.
    pub struct WithRelu: input(2) {
        Dense(8, activation = relu),
        Dense(8),
        Dense(2, activation = softmax),
    }
}

fn train<M: Model<f32> + nn::train::Fit<f32>>(
    name: &str,
    model: &mut M,
    data: &Dataset<f32>,
    epochs: usize,
) {
    let mut opt = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    })
    .expect("valid settings");
    let options = FitOptions {
        epochs,
        batch_size: 4,
        verbosity: Verbosity::Silent,
        ..Default::default()
    };
    let history = fit(model, &mut opt, data, options).expect("no files involved");
    let (loss, accuracy) = evaluate(model, data, 4, Loss::SparseCategoricalCrossEntropy);
    let probs = model.predict(data.inputs());
    let predicted: Vec<usize> = probs
        .outer_iter()
        .map(|p| usize::from(p[1] > p[0]))
        .collect();
    println!(
        "{name:<12} accuracy {accuracy:.2}  loss {loss:.4}  predictions {predicted:?} (want [0, 1, 1, 0]) after {} epochs",
        history.epochs.len()
    );
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let (epochs, seed) = (args.get("epochs", 500), args.get("seed", 1));
    let x = nn::ndarray::array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]].into_dyn();
    let data = Dataset::new(x, vec![0, 1, 1, 0]);
    train(
        "linear only",
        &mut LinearOnly::with_seed(seed),
        &data,
        epochs,
    );
    train("with relu", &mut WithRelu::with_seed(seed), &data, epochs);
}
