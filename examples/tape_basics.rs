//! Research code on the tape: fit y = sin(x) with a small MLP using plain
//! gradient descent, then gradcheck a function of your own.
//!
//! Run: `cargo run --release --example tape_basics`

#[path = "common/cli.rs"]
mod cli;

use nn::ndarray::{Array1, Array2};
use nn::prelude::*;

const USAGE: &str = "\
Fit y = sin(x) with a small MLP on the tape by plain gradient descent, then
gradcheck a function of your own. Takes no flags.

Usage: cargo run --release --example tape_basics";

fn param(rows: usize, cols: usize, seed: u64) -> Param<f32> {
    // Glorot-uniform from a tiny LCG, so the example needs no extra crates.
    let limit = (6.0 / (rows + cols) as f32).sqrt();
    let mut s = seed;
    Param::new(Array2::from_shape_fn((rows, cols), |_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * limit
    }))
}

fn main() {
    cli::Args::parse(USAGE);
    let n = 64;
    let x = Array2::from_shape_fn((n, 1), |(i, _)| -3.0 + 6.0 * i as f32 / (n - 1) as f32);
    let y = x.mapv(f32::sin);

    let layers = [
        (param(32, 1, 1), Param::new(Array1::zeros(32))),
        (param(32, 32, 2), Param::new(Array1::zeros(32))),
        (param(1, 32, 3), Param::new(Array1::zeros(1))),
    ];
    let lr = 0.02;
    for step in 0..=3000 {
        let tape = Tape::new();
        let mut h = tape.constant(x.clone());
        for (i, (w, b)) in layers.iter().enumerate() {
            h = h.linear(&tape.param(w), Some(&tape.param(b)));
            if i + 1 < layers.len() {
                h = h.tanh();
            }
        }
        let loss = mse(&h, &tape.constant(y.clone()), Reduction::Mean);
        loss.backward();
        for (w, b) in &layers {
            for p in [w, b] {
                let g = p.grad().clone().expect("gradient");
                p.value_mut().scaled_add(-lr, &g);
                p.zero_grad();
            }
        }
        if step % 500 == 0 {
            println!("step {step:>4}  mse {:.6}", loss.item());
        }
    }

    // Your own function, checked against finite differences in f64.
    let report = gradcheck(
        |v| {
            (&v[0].matmul(&v[1]).gelu() * &v[0].sum_axis(1, true))
                .log_softmax(-1)
                .sum()
        },
        &[
            Array2::from_shape_fn((3, 4), |(i, j)| (i as f64 - j as f64) / 4.0).into_dyn(),
            Array2::from_shape_fn((4, 2), |(i, j)| (i * 2 + j) as f64 / 8.0 - 0.4).into_dyn(),
        ],
        &GradcheckOptions::default(),
    );
    println!("{report}");
}
