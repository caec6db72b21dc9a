//! The built-in activations, drawn over [-5, 5] (the figure the Keras
//! documentation shows), with the range each takes there (every name of the
//! activation table, so a new one appears without editing this file); and,
//! with `--train`, what the hidden activation does to a 784-64-64-10 MLP on
//! MNIST: relu, sigmoid, tanh and linear, each trained the same way (Adam
//! 1e-3, batches of 128, the same initialization and shuffling seed),
//! compared in a table and on one chart of validation accuracy.
//!
//! Run: `cargo run --release --example activations`, or for the study
//! `cargo run --release --example activations -- --train --out DIR`, which on
//! 2 cores printed, after each run's epoch lines (5.8 s in all, MNIST's
//! loading included; `seconds` is each run's 10 epochs of training and
//! validation):
//!
//! ```text
//! activation  test accuracy  test loss  train loss  seconds
//! relu               0.9743     0.0851      0.0367      1.2
//! sigmoid            0.9689     0.0983      0.0830      1.8
//! tanh               0.9762     0.0853      0.0369      1.3
//! linear             0.9193     0.2878      0.2592      1.1
//! wrote DIR/activation_study.png
//! ```
//!
//! Without a nonlinearity the MLP is a linear classifier (about 92%); of the
//! other three, sigmoid (whose gradient is at most 1/4) learns the slowest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use nn::activation::{ActivationFn, Builtin, NAMES};
use nn::ndarray::{Array1, ArrayD, IxDyn};
use nn::plot::plotters::prelude::*;
use nn::prelude::*;
use nn::train::{Fit, History};

const USAGE: &str = "\
Draw the built-in activations over [-5, 5] and print their ranges; or, with
--train, train a 784-64-64-10 MLP on MNIST with relu, sigmoid, tanh and linear
hidden layers and compare them.

Usage: cargo run --release --example activations -- [flags]

  --out DIR          where to write activations.png and activations_all.png,
                     or with --train activation_study.png (default .)
  --train            run the activation study instead
  --epochs N         with --train: passes over the training set (default 10)
  --batch-size N     with --train: samples per step (default 128)
  --limit N          with --train: train on the first N images only (default: all 60,000)
  --seed N           with --train: initialization and shuffling seed (default 0)
MNIST is read from $MNIST_DIR, data/mnist or ../shared/data/mnist.";

/// The command line: `--train` stands alone, every other flag takes a value
/// (`--name value` or `--name=value`).
#[derive(Default)]
struct Flags {
    train: bool,
    values: HashMap<String, String>,
}

impl Flags {
    /// Parses `std::env::args()`, accepting only the flags named in `USAGE`;
    /// `--help` prints it and exits.
    fn parse() -> Flags {
        let mut flags = Flags::default();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let name = match arg.as_str() {
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0)
                }
                "--train" => {
                    flags.train = true;
                    continue;
                }
                _ => arg
                    .strip_prefix("--")
                    .unwrap_or_else(|| fail(&format!("unexpected argument `{arg}`"))),
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (
                    name.to_string(),
                    args.next()
                        .unwrap_or_else(|| fail(&format!("--{name} needs a value"))),
                ),
            };
            if !USAGE.contains(&format!("--{name} ")) {
                fail(&format!("unknown flag --{name}"));
            }
            flags.values.insert(name, value);
        }
        flags
    }

    /// The flag's value parsed as `V`, or `default`.
    fn get<V: FromStr>(&self, name: &str, default: V) -> V {
        match self.values.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(&format!("--{name}: cannot parse `{v}`"))),
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}\n\n{USAGE}");
    std::process::exit(2)
}

/// The activation drawn for `name`: Keras's defaults, and for `threshold`
/// (which has none) a threshold of 0 and a default value of -1.
fn builtin(name: &str) -> Builtin {
    Builtin::from_name(name)
        .or_else(|| Builtin::with_args(name, &[("threshold", "0"), ("default_value", "-1")]).ok())
        .expect("a built-in name")
}

fn curve(name: &str, xs: &Array1<f32>) -> Vec<(f32, f32)> {
    let a = builtin(name);
    // The axis-wise ones act on a vector: softmax, log_softmax and sparsemax
    // on [x, 0], glu on [x, x] (so a * sigmoid(b) = x * sigmoid(x)); the
    // first entry is drawn.
    let pair = |x: f32| match name {
        "glu" => vec![x, x],
        _ => vec![x, 0.0],
    };
    let ys: Vec<f32> = if a.spec().args.iter().any(|arg| arg.name == "axis") {
        xs.iter()
            .map(|&x| {
                a.forward(
                    ArrayD::from_shape_vec(IxDyn(&[1, 2]), pair(x))
                        .unwrap()
                        .view(),
                )[[0, 0]]
            })
            .collect()
    } else {
        a.forward(xs.view().into_dyn()).iter().copied().collect()
    };
    xs.iter().copied().zip(ys).collect()
}

fn draw(path: &Path, names: &[&str], cols: usize) -> Result<(), Box<dyn std::error::Error>> {
    let rows = names.len().div_ceil(cols);
    let size = (300 * cols as u32, 240 * rows as u32);
    let xs = Array1::linspace(-5.0f32, 5.0, 401);
    nn::plot::png(path, size, |root| {
        root.fill(&WHITE)?;
        for (area, name) in root.split_evenly((rows, cols)).iter().zip(names) {
            let pts = curve(name, &xs);
            let (lo, hi) = pts
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), p| {
                    (a.min(p.1), b.max(p.1))
                });
            let pad = ((hi - lo) * 0.1).max(0.1);
            let mut chart = ChartBuilder::on(area)
                .caption(*name, ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(36)
                .build_cartesian_2d(-5.0f32..5.0, (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .label_style(("sans-serif", 11))
                .draw()?;
            chart.draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))?;
        }
        root.present()
    })?;
    Ok(())
}

/// The study's MLPs, one struct per hidden activation: a `sequential!`
/// activation is part of the model's type, fixed when the code compiles.
macro_rules! mlp_with {
    ($($name:ident: $activation:ident),* $(,)?) => {$(
        sequential! {
            /// 784-64-64-10 for MNIST; the hidden activation is in the name.
            pub struct $name: input(784) {
                Dense(64, activation = $activation),
                Dense(64, activation = $activation),
                Dense(10, activation = softmax),
            }
        }
    )*};
}

mlp_with!(ReluMlp: relu, SigmoidMlp: sigmoid, TanhMlp: tanh, LinearMlp: linear);

/// How each model of the study trains.
struct Setup {
    epochs: usize,
    batch_size: usize,
    seed: u64,
    train: Dataset<f32>,
    test: Dataset<f32>,
}

/// One activation's run: its history and its final test loss and accuracy.
struct Outcome {
    activation: &'static str,
    history: History,
    test_loss: f64,
    test_accuracy: f64,
    seconds: f64,
}

fn train_one<M: Fit<f32> + Model<f32>>(
    activation: &'static str,
    mut model: M,
    setup: &Setup,
) -> Outcome {
    println!("\n{activation}:");
    let mut opt = Adam::new(AdamConfig {
        lr: 1e-3,
        ..Default::default()
    })
    .expect("a valid learning rate");
    let start = Instant::now();
    let history = fit(
        &mut model,
        &mut opt,
        &setup.train,
        FitOptions {
            epochs: setup.epochs,
            batch_size: setup.batch_size,
            loss: Loss::SparseCategoricalCrossEntropy.into(),
            shuffle_seed: Some(setup.seed),
            validation: Some(&setup.test),
            verbosity: Verbosity::Lines,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let seconds = start.elapsed().as_secs_f64();
    let (test_loss, test_accuracy) = evaluate(
        &mut model,
        &setup.test,
        1000,
        Loss::SparseCategoricalCrossEntropy,
    );
    Outcome {
        activation,
        history,
        test_loss,
        test_accuracy,
        seconds,
    }
}

fn study(flags: &Flags, dir: &Path) {
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let train = mnist.train.reshaped(&[784]);
    let limit = flags.get("limit", train.len()).min(train.len());
    let seed = flags.get("seed", 0);
    let setup = Setup {
        epochs: flags.get("epochs", 10),
        batch_size: flags.get("batch-size", 128),
        seed,
        train: train.slice(0..limit),
        test: mnist.test.reshaped(&[784]),
    };
    let outcomes = [
        train_one("relu", ReluMlp::with_seed(seed), &setup),
        train_one("sigmoid", SigmoidMlp::with_seed(seed), &setup),
        train_one("tanh", TanhMlp::with_seed(seed), &setup),
        train_one("linear", LinearMlp::with_seed(seed), &setup),
    ];

    println!("\nactivation  test accuracy  test loss  train loss  seconds");
    for o in &outcomes {
        let train_loss = o.history.last().map_or(f64::NAN, |e| e.loss);
        println!(
            "{:<10}  {:>13.4}  {:>9.4}  {:>10.4}  {:>7.1}",
            o.activation, o.test_accuracy, o.test_loss, train_loss, o.seconds
        );
    }

    let path = dir.join("activation_study.png");
    let chart = outcomes.iter().fold(
        nn::plot::Comparison::new("val_accuracy")
            .title("MNIST, 784-64-64-10 MLP: validation accuracy by hidden activation"),
        |chart, o| chart.run(o.activation, &o.history),
    );
    if let Err(e) = chart.draw(&path) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    println!("wrote {}", path.display());
}

fn main() {
    let flags = Flags::parse();
    let dir = PathBuf::from(flags.values.get("out").map_or(".", String::as_str));
    if flags.train {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("error: {}: {e}", dir.display());
            std::process::exit(1);
        }
        study(&flags, &dir);
        return;
    }
    let xs = Array1::linspace(-5.0f32, 5.0, 1001);
    println!("{:<14} range on [-5, 5]", "activation");
    for name in NAMES {
        let ys: Vec<f32> = curve(name, &xs).into_iter().map(|p| p.1).collect();
        let (lo, hi) = ys
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        println!("{name:<14} [{lo:.4}, {hi:.4}]");
    }
    let first = dir.join("activations.png");
    let all = dir.join("activations_all.png");
    let others: Vec<&str> = NAMES
        .iter()
        .copied()
        .filter(|n| !["relu", "sigmoid", "tanh"].contains(n))
        .collect();
    for (path, names, cols) in [
        (&first, &["relu", "sigmoid", "tanh"][..], 3),
        (&all, &others[..], 4),
    ] {
        if let Err(e) = draw(path, names, cols) {
            eprintln!("error: {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    println!("wrote {} and {}", first.display(), all.display());
}
