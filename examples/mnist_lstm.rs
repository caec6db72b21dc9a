//! An LSTM reads each MNIST image as 28 steps of 28 pixels, one row per step;
//! its last output classifies the digit (the layout of
//! `../shared/bench/torch_anchor.py`'s `lstm`).
//!
//! Run: `cargo run --release --example mnist_lstm` (`-- --help` for the flags).

#[path = "common/classifier.rs"]
mod classifier;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/ranks.rs"]
mod ranks;

use nn::prelude::*;

const USAGE: &str = "\
Train an LSTM on MNIST read row by row and report its test accuracy.

Usage: cargo run --release --example mnist_lstm -- [flags]

  --epochs N       passes over the training set (default 6)
  --batch-size N   samples per step (default 128)
  --lr X           Adam's initial learning rate (default 2e-3), cosine-annealed
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
    /// 28 rows of 28 pixels → an LSTM of 128 units → 10 classes.
    pub struct RowLstm: input(28, 28) {
        lstm: LSTM(128),
        head: Dense(10, activation = softmax),
    }
}

fn main() {
    classifier::train(
        USAGE,
        classifier::Run {
            epochs: 6,
            lr: 2e-3,
            loss: Loss::SparseCategoricalCrossEntropy,
            // Each image as a sequence: (time = row, features = the row's pixels).
            shape: &[28, 28],
        },
        RowLstm::with_seed,
    );
}
