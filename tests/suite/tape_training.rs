//! End to end through the facade: models written on the tape learn, with plain
//! gradient descent on `Param`s.

use nn::ndarray::{array, Array1, Array2};
use nn::prelude::*;

/// Plain gradient descent: `p -= lr * grad`, then zero the gradient.
fn sgd_step(params: &[&Param<f64>], lr: f64) {
    for p in params {
        let g = p.grad().clone().expect("every parameter gets a gradient");
        p.value_mut().scaled_add(-lr, &g);
        p.zero_grad();
    }
}

#[test]
fn linear_regression_recovers_the_generating_coefficients() {
    // y = 3 x0 - 2 x1 + 0.5, noiseless: the least-squares fit is exact.
    let x = Array2::from_shape_fn((32, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
    let y = x.column(0).mapv(|v| 3.0 * v) - x.column(1).mapv(|v| 2.0 * v) + 0.5;
    let y = y.insert_axis(nn::ndarray::Axis(1));
    let w = Param::new(Array2::<f64>::zeros((1, 2)));
    let b = Param::new(Array1::<f64>::zeros(1));
    for _ in 0..2000 {
        let tape = Tape::new();
        let pred = tape
            .constant(x.clone())
            .linear(&tape.param(&w), Some(&tape.param(&b)));
        mse(&pred, &tape.constant(y.clone()), Reduction::Mean).backward();
        sgd_step(&[&w, &b], 0.1);
    }
    let (w, b) = (w.value().clone(), b.value().clone());
    assert!((w[[0, 0]] - 3.0).abs() < 1e-6, "{w}");
    assert!((w[[0, 1]] + 2.0).abs() < 1e-6, "{w}");
    assert!((b[[0]] - 0.5).abs() < 1e-6, "{b}");
}

#[test]
fn a_two_layer_perceptron_learns_xor() {
    let x = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let labels = [0usize, 1, 1, 0];
    // Fixed, asymmetric initial weights so the run is deterministic.
    let w1 = Param::new(array![[0.5, -0.4], [-0.3, 0.6], [0.7, 0.2], [-0.6, -0.5]]);
    let b1 = Param::new(array![0.1, -0.1, 0.05, 0.0]);
    let w2 = Param::new(array![[0.4, -0.7, 0.3, 0.2], [-0.5, 0.6, -0.2, 0.1]]);
    let b2 = Param::new(array![0.0, 0.0]);
    let forward = |tape: &Tape<f64>| {
        let h = tape
            .constant(x.clone())
            .linear(&tape.param(&w1), Some(&tape.param(&b1)))
            .tanh();
        h.linear(&tape.param(&w2), Some(&tape.param(&b2)))
    };
    let mut last = f64::INFINITY;
    for _ in 0..3000 {
        let tape = Tape::new();
        let loss = cross_entropy(&forward(&tape), &labels, Reduction::Mean);
        last = loss.item();
        loss.backward();
        sgd_step(&[&w1, &b1, &w2, &b2], 0.5);
    }
    assert!(last < 0.05, "loss {last}");
    let tape = Tape::new();
    let _no_grad = tape.no_grad();
    let logits = forward(&tape).value();
    for (row, &label) in logits.outer_iter().zip(&labels) {
        let predicted = if row[1] > row[0] { 1 } else { 0 };
        assert_eq!(predicted, label, "logits {row}");
    }
}
