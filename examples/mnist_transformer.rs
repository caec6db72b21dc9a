//! A small vision transformer on MNIST: each image cut into 16 patches of
//! 7×7 pixels, embedded to 64 features with a learned position embedding, two
//! pre-norm encoder layers of 4 heads, mean-pooled (the layout of
//! `../shared/bench/torch_anchor.py`'s `vit`).
//!
//! Run: `cargo run --release --example mnist_transformer` (`-- --help` for the flags).

#[path = "common/classifier.rs"]
mod classifier;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/ranks.rs"]
mod ranks;

use nn::prelude::*;

const USAGE: &str = "\
Train a small vision transformer on MNIST and report its test accuracy.

Usage: cargo run --release --example mnist_transformer -- [flags]

  --epochs N       passes over the training set (default 8)
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
    classifier::train(
        USAGE,
        classifier::Run {
            epochs: 8,
            lr: 2e-3,
            loss: Loss::SparseCategoricalCrossEntropy,
            shape: &[28, 28],
        },
        TinyVit::with_seed,
    );
}
