//! An LSTM reads each MNIST image as 28 steps of 28 pixels, one row per step;
//! its last output classifies the digit (the layout of
//! `../shared/bench/torch_anchor.py`'s `lstm`).
//!
//! Run: `cargo run --release --example mnist_lstm` (`-- --help` for the flags).

#[path = "common/cli.rs"]
mod cli;

use nn::optim::CosineAnnealing;
use nn::prelude::*;
use nn::train::ScheduleEachEpoch;

const USAGE: &str = "\
Train an LSTM on MNIST read row by row and report its test accuracy.

Usage: cargo run --release --example mnist_lstm -- [flags]

  --epochs N       passes over the training set (default 6)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 2e-3), cosine-annealed
                   to 0 over the epochs
  --seed N         initialization and shuffling seed (default 0)
MNIST is read from $MNIST_DIR, data/mnist or ../shared/data/mnist.";

sequential! {
    /// 28 rows of 28 pixels → an LSTM of 128 units → 10 classes.
    pub struct RowLstm: input(28, 28) {
        lstm: LSTM(128),
        head: Dense(10, activation = softmax),
    }
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    // Each image as a sequence: (time = row, features = the row's pixels).
    let (train, test) = (
        mnist.train.reshaped(&[28, 28]),
        mnist.test.reshaped(&[28, 28]),
    );
    let seed: u64 = args.get("seed", 0);
    let mut model = RowLstm::with_seed(seed);
    println!("{}\n", model.summary());
    let mut opt = Adam::new(AdamConfig {
        lr: args.get("lr", 2e-3),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let epochs = args.get("epochs", 6);
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
