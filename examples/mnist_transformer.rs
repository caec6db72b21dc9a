//! A small vision transformer on MNIST: each image cut into 16 patches of
//! 7×7 pixels, embedded to 64 features with a learned position embedding, two
//! pre-norm encoder layers of 4 heads, mean-pooled (the layout of
//! `../shared/bench/torch_anchor.py`'s `vit`).
//!
//! Run: `cargo run --release --example mnist_transformer` (`-- --help` for the flags).

#[path = "common/cli.rs"]
mod cli;

use nn::optim::CosineAnnealing;
use nn::prelude::*;
use nn::train::ScheduleEachEpoch;

const USAGE: &str = "\
Train a small vision transformer on MNIST and report its test accuracy.

Usage: cargo run --release --example mnist_transformer -- [flags]

  --epochs N       passes over the training set (default 8)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 2e-3), cosine-annealed
                   to 0 over the epochs
  --seed N         initialization and shuffling seed (default 0)
MNIST is read from $MNIST_DIR, data/mnist or ../shared/data/mnist.";

sequential! {
    /// 16 patches of 7×7 → 64 features → two pre-norm encoder layers → the
    /// mean over patches → 10 classes.
    pub struct TinyVit: input(28, 28) {
        Patches(7),
        embed: Dense(64),
        pos: PositionalEmbedding,
        encoder_0: TransformerEncoder(heads = 4, dim_feedforward = 128, dropout = 0.0, activation = gelu, norm_first = true),
        encoder_1: TransformerEncoder(heads = 4, dim_feedforward = 128, dropout = 0.0, activation = gelu, norm_first = true),
        GlobalAvgPool1d,
        norm: LayerNorm,
        head: Dense(10, activation = softmax),
    }
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let (train, test) = (
        mnist.train.reshaped(&[28, 28]),
        mnist.test.reshaped(&[28, 28]),
    );
    let seed: u64 = args.get("seed", 0);
    let mut model = TinyVit::with_seed(seed);
    println!("{}\n", model.summary());
    let mut opt = Adam::new(AdamConfig {
        lr: args.get("lr", 2e-3),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let epochs = args.get("epochs", 8);
    // Transformers train better when the rate settles: cosine-anneal it to 0.
    let schedule = CosineAnnealing::new(epochs, 0.0).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let options = FitOptions {
        epochs,
        batch_size: args.get("batch-size", 128),
        loss: Loss::SparseCategoricalCrossEntropy,
        shuffle_seed: Some(seed),
        validation: Some(&test),
        callbacks: vec![Box::new(ScheduleEachEpoch::new(schedule))],
        ..Default::default()
    };
    fit(&mut model, &mut opt, &train, options).expect("no files involved");
    let (_, accuracy) = evaluate(&mut model, &test, 1000, Loss::SparseCategoricalCrossEntropy);
    println!("test accuracy: {accuracy:.4}");
}
