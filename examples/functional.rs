//! Keras's functional API with `functional!`: a two-branch MNIST model, a
//! convolutional branch on the image and a dense branch on four statistics
//! computed by hand from it, concatenated into one classifier; then the three
//! equivalent ways to write an activation, as graphs, giving identical outputs.
//!
//! Run: `cargo run --release --example functional` (`-- --help` for the flags).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/ranks.rs"]
mod ranks;

use nn::ndarray::{Array2, ArrayD, Axis, IxDyn};
use nn::prelude::*;
use nn::train::{evaluate_graph, fit_graph, GraphData, GraphFitOptions, Targets};

const USAGE: &str = "\
Train a two-branch model (image and image statistics) on MNIST and report its
test accuracy; then show three equivalent activation declarations agree.

Usage: cargo run --release --example functional -- [flags]

  --epochs N       passes over the training set (default 3)
  --batch-size N   samples per step (default 64)
  --lr X           Adam's learning rate (default 2e-3)
  --limit N        train on the first N images only (default: all 60,000)
  --seed N         initialization and shuffling seed (default 0)
  --checkpoint DIR save a checkpoint in DIR after every epoch
  --resume DIR     continue the run checkpointed in DIR up to --epochs
                   (none there: start afresh)
  --distributed    one rank of an mpirun launch (build with --features mpi);
                   --batch-size is then shared out over the ranks
  --shard-optimizer  with --distributed: each rank updates its share of the
                   weights, then the ranks exchange them (ZeRO)
MNIST is read from $MNIST_DIR, data/mnist or ../shared/data/mnist.";

functional! {
    /// The image through convolutions, its statistics through a dense
    /// layer, both joined for the classifier.
    pub struct TwoBranch(image: input(1, 28, 28), stats: input(4)) -> (digit) {
        let x = Conv2d(8, kernel = 3, activation = relu)(image);
        let x = MaxPool2d(2)(x);
        let x = Conv2d(16, kernel = 3, activation = relu)(x);
        let x = MaxPool2d(2)(x);
        let x = Flatten(x);
        let s = Dense(16)(stats);
        let s = Activation("relu")(s);
        let h = Concatenate(x, s);
        let digit = Dense(10, activation = softmax)(h);
    }
}

// The three ways Keras writes an activation, as graphs.
functional! {
    /// `Dense(64, activation = relu)`.
    pub struct ByArgument(x: input(784)) -> (y) {
        let y = Dense(64, activation = relu)(x);
    }
}

functional! {
    /// `Dense(64)`, then a separate `Activation("relu")`.
    pub struct ByLayer(x: input(784)) -> (y) {
        let h = Dense(64)(x);
        let y = Activation("relu")(h);
    }
}

functional! {
    /// `Dense(64, activation = nn::activation::relu)`: the function object.
    pub struct ByFunction(x: input(784)) -> (y) {
        let y = Dense(64, activation = nn::activation::relu)(x);
    }
}

/// Four numbers per image (pixels in [0, 1]): mean intensity, the share of
/// inked pixels (> 0.5), and the centre of mass's row and column (scaled to
/// [0, 1]).
fn statistics(images: &ArrayD<f32>) -> ArrayD<f32> {
    let n = images.shape()[0];
    let mut out = Array2::<f32>::zeros((n, 4));
    for (i, img) in images.axis_iter(Axis(0)).enumerate() {
        let (mut sum, mut ink, mut row, mut col) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for (k, &v) in img.iter().enumerate() {
            sum += v;
            ink += f32::from(v > 0.5);
            row += v * (k / 28) as f32;
            col += v * (k % 28) as f32;
        }
        let mass = sum.max(1e-6);
        out[[i, 0]] = sum / 784.0;
        out[[i, 1]] = ink / 784.0;
        out[[i, 2]] = row / mass / 27.0;
        out[[i, 3]] = col / mass / 27.0;
    }
    out.into_dyn()
}

/// The images as `[n, 1, 28, 28]` and their statistics, with their labels.
fn graph_data(set: &Dataset<f32>, limit: usize) -> GraphData<f32> {
    let n = set.len().min(limit);
    let flat = set.slice(0..n);
    let images = flat.inputs().to_owned();
    let stats = statistics(&images);
    let images = images
        .into_shape_with_order(IxDyn(&[n, 1, 28, 28]))
        .expect("MNIST images have 784 pixels");
    GraphData::new(
        vec![images, stats],
        vec![Targets::Labels(flat.labels().to_vec())],
    )
    .expect("every array holds n samples")
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let seed: u64 = args.get("seed", 0);
    let train = graph_data(&mnist.train, args.get("limit", usize::MAX));
    let test = graph_data(&mnist.test, usize::MAX);

    let group = ranks::join(&args);
    let root = group.as_ref().is_none_or(|g| g.is_root());
    let mut model = TwoBranch::with_seed(seed);
    if root {
        println!("{}\n", model.summary());
    }
    let mut opt = Adam::new(AdamConfig {
        lr: args.get("lr", 2e-3),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let losses = vec![Loss::SparseCategoricalCrossEntropy];
    let options = GraphFitOptions {
        epochs: args.get("epochs", 3),
        batch_size: ranks::per_rank(args.get("batch-size", 64), group.as_deref()),
        losses: losses.clone(),
        shuffle_seed: Some(seed),
        validation: Some(&test),
        checkpoint_dir: args.opt("checkpoint").map(std::path::PathBuf::from),
        resume_from: args.opt("resume").map(std::path::PathBuf::from),
        distributed: group.as_deref(),
        shard_optimizer: args.switch("shard-optimizer"),
        ..Default::default()
    };
    fit_graph(&mut model, &mut opt, &train, options).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });

    if !root {
        // Rank 0 reports; every rank holds the same weights.
        return;
    }
    // Three declarations of one layer: the same seed draws the same weights,
    // so the outputs agree exactly.
    let x = mnist
        .test
        .slice(0..256)
        .reshaped(&[784])
        .inputs()
        .to_owned();
    let by_argument = ByArgument::with_seed(seed).predict(x.view());
    let by_layer = ByLayer::with_seed(seed).predict(x.view());
    let by_function = ByFunction::with_seed(seed).predict(x.view());
    let largest = |a: &ArrayD<f32>, b: &ArrayD<f32>| {
        a.iter()
            .zip(b.iter())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max)
    };
    println!(
        "activation = relu vs Activation(\"relu\"): largest difference {}",
        largest(&by_argument, &by_layer)
    );
    println!(
        "activation = relu vs nn::activation::relu: largest difference {}",
        largest(&by_argument, &by_function)
    );
    assert!(by_argument == by_layer && by_argument == by_function);

    let metrics = evaluate_graph(&mut model, &test, 1000, &losses, &[]);
    let accuracy = metrics.accuracies[0].expect("a classifier's output");
    println!("test accuracy: {accuracy:.4}");
}
