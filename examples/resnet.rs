//! A residual CNN on MNIST, declared with `sequential!`: a convolution stem
//! and two residual blocks of conv-BN pairs with skip connections (the
//! layout of `../shared/bench/torch_anchor.py`'s `resnet`).
//!
//! Run: `cargo run --release --example resnet` (`-- --help` for the flags).

#[path = "common/cli.rs"]
mod cli;

use nn::optim::CosineAnnealing;
use nn::prelude::*;
use nn::train::ScheduleEachEpoch;

const USAGE: &str = "\
Train a small residual CNN on MNIST and report its test accuracy.

Usage: cargo run --release --example resnet -- [flags]

  --epochs N       passes over the training set (default 8)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 3e-3), cosine-annealed
                   to 0 over the epochs
  --seed N         initialization and shuffling seed (default 0)
MNIST is read from $MNIST_DIR, data/mnist or ../shared/data/mnist.";

sequential! {
    /// Two 3×3 convolutions with batch norm, and the skip around them.
    pub struct Block: input(16, 14, 14) {
        Residual {
            Conv2d(16, kernel = 3, padding = 1), BatchNorm, ReLU,
            Conv2d(16, kernel = 3, padding = 1), BatchNorm,
        },
        ReLU,
    }
}

sequential! {
    /// A 16-channel residual network: stem, two blocks, global pooling.
    pub struct ResNet: input(1, 28, 28) {
        Conv2d(16, kernel = 3, padding = 1), BatchNorm, ReLU, MaxPool2d(2),
        block1: Block,
        block2: Block,
        GlobalAvgPool,
        Dense(10),
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
    let mut model = ResNet::with_seed(seed);
    println!("{}\n", model.summary());
    let mut opt = Adam::new(AdamConfig {
        lr: args.get("lr", 3e-3),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let epochs = args.get("epochs", 8);
    let schedule = CosineAnnealing::new(epochs, 0.0).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let options = FitOptions {
        epochs,
        batch_size: args.get("batch-size", 128),
        loss: Loss::CrossEntropy,
        shuffle_seed: Some(seed),
        validation: Some(&test),
        callbacks: vec![Box::new(ScheduleEachEpoch::new(schedule))],
        ..Default::default()
    };
    fit(&mut model, &mut opt, &train, options).expect("no files involved");
    let (_, accuracy) = evaluate(&mut model, &test, 1000, Loss::CrossEntropy);
    println!("test accuracy: {accuracy:.4}");
}
