//! The tape's own cost: recording an op on a one-element tensor (almost no
//! arithmetic), and one training step of a small MLP (64-64-64-10, batch 16),
//! the workload where per-op overhead dominates; and dropout on a
//! transformer block's activations beside a product of two tensors of that
//! size (drawing the mask is its own cost).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use nn_core::loss::{cross_entropy, Reduction};
use nn_core::{Param, Tape};

fn per_op_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("tape_overhead");
    g.bench_function("new_tape", |b| b.iter(|| black_box(Tape::<f32>::new())));
    g.bench_function("100_adds_on_1_element", |b| {
        b.iter(|| {
            let tape = Tape::<f32>::new();
            let x = tape.var(Array1::from_elem(1, 1.0f32));
            let mut y = x.clone();
            for _ in 0..100 {
                y = &y + &x;
            }
            black_box(y)
        })
    });
    g.bench_function("100_adds_then_backward", |b| {
        b.iter(|| {
            let tape = Tape::<f32>::new();
            let x = tape.var(Array1::from_elem(1, 1.0f32));
            let mut y = x.clone();
            for _ in 0..100 {
                y = &y + &x;
            }
            y.sum().backward();
            black_box(x.grad())
        })
    });
    g.finish();
}

fn glorot(fan_out: usize, fan_in: usize, seed: usize) -> Param<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
    Param::new(Array2::from_shape_fn((fan_out, fan_in), |(i, j)| {
        let h = ((i * 31 + j * 17 + seed * 7) % 97) as f32 / 97.0;
        (2.0 * h - 1.0) * limit
    }))
}

fn small_mlp_step(c: &mut Criterion) {
    let sizes = [(64, 64), (64, 64), (10, 64)];
    let layers: Vec<(Param<f32>, Param<f32>)> = sizes
        .iter()
        .enumerate()
        .map(|(k, &(o, i))| (glorot(o, i, k), Param::new(Array1::zeros(o))))
        .collect();
    let x = Array2::from_shape_fn((16, 64), |(i, j)| ((i * 64 + j) % 13) as f32 / 13.0);
    let labels: Vec<usize> = (0..16).map(|i| i % 10).collect();
    c.bench_function("small_mlp_step_tape_b16", |b| {
        b.iter(|| {
            let tape = Tape::<f32>::new();
            let mut h = tape.constant(x.clone());
            for (k, (w, bias)) in layers.iter().enumerate() {
                h = h.linear(&tape.param(w), Some(&tape.param(bias)));
                if k + 1 < layers.len() {
                    h = h.relu();
                }
            }
            let loss = cross_entropy(&h, &labels, Reduction::Mean);
            loss.backward();
            for (w, bias) in &layers {
                w.zero_grad();
                bias.zero_grad();
            }
            black_box(loss.item())
        })
    });
}

fn dropout(c: &mut Criterion) {
    // Batch 128, 16 positions, 128 features: 262,144 values, copied for
    // each run outside the timing.
    let x = ArrayD::from_shape_fn(IxDyn(&[128, 16, 128]), |i| i[2] as f32 * 0.01);
    let mut g = c.benchmark_group("tape_dropout_128x16x128");
    g.bench_function("dropout_forward_backward", |b| {
        b.iter_batched(
            || x.clone(),
            |x| {
                let tape = Tape::<f32>::with_seed(1);
                let v = tape.var(x);
                v.dropout(0.1, true).sum().backward();
                black_box(v.grad())
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("product_forward_backward", |b| {
        b.iter_batched(
            || (x.clone(), x.clone()),
            |(x, y)| {
                let tape = Tape::<f32>::with_seed(1);
                let (v, m) = (tape.var(x), tape.constant(y));
                (&v * &m).sum().backward();
                black_box(v.grad())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, per_op_overhead, small_mlp_step, dropout);
criterion_main!(benches);
