//! LeNet-5 on MNIST: convolutions, pooling and dense layers declared in a few
//! lines (the layout of `../shared/bench/torch_anchor.py`'s `cnn`).
//!
//! Run: `cargo run --release --example mnist_cnn` (`-- --help` for the flags).

#[path = "common/classifier.rs"]
mod classifier;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/ranks.rs"]
mod ranks;

use nn::prelude::*;

const USAGE: &str = "\
Train LeNet-5 on MNIST and report its test accuracy.

Usage: cargo run --release --example mnist_cnn -- [flags]

  --epochs N       passes over the training set (default 8)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 1e-3), cosine-annealed
                   to 0 over the epochs
  --seed N         initialization and shuffling seed (default 0)
  --checkpoint DIR save a checkpoint in DIR after every epoch
  --resume DIR     continue the run checkpointed in DIR up to --epochs (none there: start afresh)
  --distributed    one rank of an mpirun launch (build with --features mpi);
                   --batch-size is then shared out over the ranks
  --shard-optimizer  with --distributed: each rank updates its share of the
                   weights, then the ranks exchange them (ZeRO)
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
    classifier::train(
        USAGE,
        classifier::Run {
            epochs: 8,
            lr: 1e-3,
            loss: Loss::SparseCategoricalCrossEntropy,
            shape: &[1, 28, 28],
        },
        LeNet5::with_seed,
    );
}
