//! LeNet-5 on MNIST: convolutions, pooling and dense layers declared in a few
//! lines (the layout of `../shared/bench/torch_anchor.py`'s `cnn`).
//!
//! Run: `cargo run --release --example mnist_cnn` (`-- --help` for the flags).

#[path = "common/cli.rs"]
mod cli;

use nn::optim::CosineAnnealing;
use nn::prelude::*;
use nn::train::ScheduleEachEpoch;

const USAGE: &str = "\
Train LeNet-5 on MNIST and report its test accuracy.

Usage: cargo run --release --example mnist_cnn -- [flags]

  --epochs N       passes over the training set (default 8)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 1e-3), cosine-annealed
                   to 0 over the epochs
  --seed N         initialization and shuffling seed (default 0)
MNIST is read from $MNIST_DIR, data/mnist or ../shared/data/mnist.";

sequential! {
    /// LeNet-5 (LeCun et al., 1998) with ReLU and max pooling.
    pub struct LeNet5: input(1, 28, 28) {
        Conv2d(6, kernel = 5, padding = 2, activation = relu),
        MaxPool2d(2),
        Conv2d(16, kernel = 5, activation = relu),
        MaxPool2d(2),
        Flatten,
        Dense(120, activation = relu),
        Dense(84, activation = relu),
        Dense(10, activation = softmax),
    }
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let (train, test) = (
        mnist.train.reshaped(&[1, 28, 28]),
        mnist.test.reshaped(&[1, 28, 28]),
    );
    let seed: u64 = args.get("seed", 0);
    let mut model = LeNet5::with_seed(seed);
    println!("{}\n", model.summary());
    let mut opt = Adam::new(AdamConfig {
        lr: args.get("lr", 1e-3),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let epochs = args.get("epochs", 8);
    // Annealing the rate to 0 settles the last epochs: without it the final
    // accuracy wanders by a few tenths of a percent from epoch to epoch.
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
