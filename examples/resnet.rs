//! A residual CNN on MNIST, declared with `sequential!`: a convolution stem
//! and two residual blocks of conv-BN pairs with skip connections (the
//! layout of `../shared/bench/torch_anchor.py`'s `resnet`).
//!
//! Run: `cargo run --release --example resnet` (`-- --help` for the flags).

#[path = "common/classifier.rs"]
mod classifier;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/ranks.rs"]
mod ranks;

use nn::prelude::*;

const USAGE: &str = "\
Train a small residual CNN on MNIST and report its test accuracy.

Usage: cargo run --release --example resnet -- [flags]

  --epochs N       passes over the training set (default 8)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 3e-3), cosine-annealed
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
    /// Two 3×3 convolutions with batch norm, and the skip around them
    /// (`BatchNorm(activation = relu)` is `BatchNorm, ReLU` in one pass, and
    /// `Residual(activation = relu)` the block followed by `ReLU`).
    pub struct Block: input(16, 14, 14) {
        Residual(activation = relu) {
            Conv2d(16, kernel = 3, padding = 1), BatchNorm(activation = relu),
            Conv2d(16, kernel = 3, padding = 1), BatchNorm,
        },
    }
}

sequential! {
    /// A 16-channel residual network: stem, two blocks, global pooling.
    pub struct ResNet: input(1, 28, 28) {
        Conv2d(16, kernel = 3, padding = 1), BatchNorm(activation = relu), MaxPool2d(2),
        block1: Block,
        block2: Block,
        GlobalAvgPool,
        Dense(10),
    }
}

fn main() {
    classifier::train(
        USAGE,
        classifier::Run {
            epochs: 8,
            lr: 3e-3,
            loss: Loss::CrossEntropy,
            shape: &[1, 28, 28],
        },
        ResNet::with_seed,
    );
}
