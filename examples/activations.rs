//! The built-in activations, drawn over [-5, 5] (the figure the Keras
//! documentation shows), with the range each takes there (every name of the
//! activation table, so a new one appears without editing this file).
//!
//! Run: `cargo run --release --example activations`

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};

use nn::activation::{ActivationFn, Builtin, NAMES};
use nn::ndarray::{Array1, ArrayD, IxDyn};
use plotters::prelude::*;

const USAGE: &str = "\
Draw the built-in activations over [-5, 5] and print their ranges.

Usage: cargo run --release --example activations -- [flags]

  --out DIR   where to write activations.png and activations_all.png (default .)";

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
    nn::plot::ensure_font();
    let rows = names.len().div_ceil(cols);
    let root = BitMapBackend::new(path, (300 * cols as u32, 240 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = Array1::linspace(-5.0f32, 5.0, 401);
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
    root.present()?;
    Ok(())
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let dir = PathBuf::from(args.opt("out").unwrap_or("."));
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
