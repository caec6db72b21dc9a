#![allow(dead_code)]
//! The run the MNIST classifier examples share: read the flags, load MNIST
//! shaped as the model's input, print the model's summary, train it with
//! Adam (the rate cosine-annealed to 0 over the epochs: without it the final
//! accuracy wanders by a few tenths of a percent from epoch to epoch),
//! validating on the test set, and end with `test accuracy: 0.9xxx`.

use nn::optim::CosineAnnealing;
use nn::prelude::*;
use nn::train::{Fit, ScheduleEachEpoch};

use crate::cli::Args;
use crate::ranks;

/// What an example sets: its default epochs and Adam rate (each overridden
/// by `--epochs`, `--lr`), the loss, and one sample's shape.
pub struct Run<'a> {
    pub epochs: usize,
    pub lr: f64,
    pub loss: Loss,
    pub shape: &'a [usize],
}

/// Runs the example: `make(seed)` builds the model.
pub fn train<M: Fit<f32> + Model<f32>>(usage: &str, run: Run<'_>, make: impl FnOnce(u64) -> M) {
    let args = Args::parse(usage);
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let (train, test) = (
        mnist.train.reshaped(run.shape),
        mnist.test.reshaped(run.shape),
    );
    let group = ranks::join(&args);
    let root = group.as_ref().is_none_or(|g| g.is_root());
    let seed: u64 = args.get("seed", 0);
    let mut model = make(seed);
    if root {
        println!("{}\n", model.summary());
    }
    let mut opt = Adam::new(AdamConfig {
        lr: args.get("lr", run.lr),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let epochs = args.positive(
        "epochs",
        run.epochs,
        "the learning rate is cosine-annealed over the epochs",
    );
    let schedule = CosineAnnealing::new(epochs, 0.0).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let options = FitOptions {
        epochs,
        batch_size: ranks::per_rank(args.get("batch-size", 128), group.as_deref()),
        loss: run.loss.into(),
        shuffle_seed: Some(seed),
        validation: Some(&test),
        callbacks: vec![Box::new(ScheduleEachEpoch::new(schedule))],
        checkpoint_dir: args.opt("checkpoint").map(std::path::PathBuf::from),
        resume_from: args.opt("resume").map(std::path::PathBuf::from),
        distributed: group.as_deref(),
        shard_optimizer: args.switch("shard-optimizer"),
        ..Default::default()
    };
    fit(&mut model, &mut opt, &train, options).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let (_, accuracy) = evaluate(&mut model, &test, 1000, run.loss);
    if root {
        println!("test accuracy: {accuracy:.4}");
    }
}
