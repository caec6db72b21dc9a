//! One training step through a `sequential!` model's static path, as `fit`
//! runs it: forward, fused loss gradient, backward, optimizer step, zero_grad.

use criterion::{criterion_group, criterion_main, Criterion};
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use nn::train::Fit;

sequential! {
    /// The MNIST perceptron.
    pub struct Mlp: input(784) {
        Dense(128, activation = relu),
        Dense(10, activation = softmax),
    }
}

sequential! {
    /// torch_anchor's small_batch model.
    pub struct Small: input(64) {
        Dense(64, activation = tanh),
        Dense(64, activation = tanh),
        Dense(10),
    }
}

fn step<M: Model<f32> + Fit<f32>>(
    c: &mut Criterion,
    name: &str,
    mut model: M,
    batch: usize,
    features: usize,
    loss: Loss,
) {
    let x = ArrayD::from_shape_fn(IxDyn(&[batch, features]), |i| {
        ((i[0] * features + i[1]) % 17) as f32 / 17.0
    });
    let y: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut opt = Adam::new(AdamConfig::default()).expect("valid settings");
    c.bench_function(name, |b| {
        b.iter(|| {
            model.train_batch(x.view(), &Target::Labels(&y), &loss.into(), &mut |_| {});
            opt.step(&model);
            opt.zero_grad(&model);
        })
    });
}

fn benches(c: &mut Criterion) {
    step(
        c,
        "static_step_mlp_784_128_10_b128",
        Mlp::with_seed(0),
        128,
        784,
        Loss::SparseCategoricalCrossEntropy,
    );
    step(
        c,
        "static_step_small_64_64_64_10_b16",
        Small::with_seed(0),
        16,
        64,
        Loss::CrossEntropy,
    );
}

criterion_group!(static_step, benches);
criterion_main!(static_step);
