//! A layer written for the tape alone (`TapeLayer`) goes into `sequential!`
//! as `Tape(..)`: its static path, derived from the tape, gives the tape
//! path's outputs and gradients, and those agree with finite differences.

use std::collections::BTreeMap;

use nn::layers::TapeLayer;
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

/// `x * sigmoid(x Wᵀ)`: a gate, written as a tape forward and its parameter.
pub struct Gate {
    weight: Param<f64>,
}

impl Gate {
    pub fn new(features: usize) -> Self {
        let w = ArrayD::from_shape_fn(IxDyn(&[features, features]), |i| {
            0.3 * ((i[0] * 3 + i[1] * 5) % 7) as f64 / 7.0 - 0.1
        });
        Gate {
            weight: Param::new(w),
        }
    }
}

impl TapeLayer<f64> for Gate {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        let gate = x.linear(&x.tape().param(&self.weight), None).sigmoid();
        x * &gate
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        f("weight", &self.weight);
    }
}

/// The sum of each adjacent pair of features: changes the shape, no parameters.
#[derive(Default)]
pub struct PairSum;

impl PairSum {
    pub fn new() -> Self {
        PairSum
    }
}

impl TapeLayer<f64> for PairSum {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(vec![input[0] / 2])
    }
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        let n = x.shape()[0];
        x.reshape(&[n, 2, 2]).sum_axis(2, false)
    }
}

sequential! {
    #[dtype(f64)]
    pub struct Gated: input(3) {
        Dense(4, activation = tanh),
        gate: Tape(Gate(4)),
        Tape(PairSum()) -> (2),
        Dense(2),
    }
}

fn input() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64 / 5.0 - 1.0
    })
}

fn cotangent() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[5, 2]), |i| {
        ((i[0] + 2 * i[1]) % 5) as f64 / 4.0 - 0.4
    })
}

fn grads(m: &Gated) -> BTreeMap<String, ArrayD<f64>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        out.insert(n.to_string(), p.grad().clone().expect(n));
    });
    out
}

fn close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: {x:e} vs {y:e}"
        );
    }
}

#[test]
fn static_path_from_the_tape_matches_the_tape() {
    let (x, cot) = (input(), cotangent());
    let taped = Gated::with_seed(3);
    let mut fixed = Gated::with_seed(3);

    let tape = Tape::new();
    let out = taped.forward(&tape.constant(x.clone()));
    out.backward_with(cot.clone());

    let y = fixed.forward_train(x.view()).to_owned();
    fixed.backward(cot.view());

    close("output", &y, &out.value(), 1e-12);
    let (a, b) = (grads(&fixed), grads(&taped));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        [
            "dense.bias",
            "dense.weight",
            "dense_1.bias",
            "dense_1.weight",
            "gate.weight"
        ]
    );
    for (name, g) in &a {
        close(name, g, &b[name], 1e-12);
    }
    close("predict", &fixed.predict(x.view()), &y, 1e-12);
}

#[test]
fn gradients_agree_with_finite_differences() {
    // d/dw of sum(model(x) * cotangent), by central differences on each
    // weight of the gate, against the static path's gradient.
    let (x, cot) = (input(), cotangent());
    let mut model = Gated::with_seed(3);
    model.forward_train(x.view());
    model.backward(cot.view());
    let analytic = grads(&model)["gate.weight"].clone();
    let objective = |m: &Gated| (&m.predict(x.view()) * &cot).sum();
    let eps = 1e-6;
    let w = model.gate.inner.weight.clone();
    for idx in 0..analytic.len() {
        let at = |delta: f64| {
            w.value_mut().as_slice_mut().unwrap()[idx] += delta;
            let v = objective(&model);
            w.value_mut().as_slice_mut().unwrap()[idx] -= delta;
            v
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        let got = analytic.as_slice().unwrap()[idx];
        assert!(
            (got - numeric).abs() < 1e-7,
            "gate.weight[{idx}]: {got} vs {numeric}"
        );
    }
}

#[test]
fn summary_names_the_wrapped_layer() {
    let model = Gated::with_seed(0);
    let table = model.summary().to_string();
    assert!(table.contains("gate (Gate)"), "{table}");
    assert!(table.contains("(None, 2)"), "{table}");
    // 3·4+4 (dense) + 4·4 (gate) + 2·2+2 (dense_1)
    assert_eq!(model.param_count(), 16 + 16 + 6);
}
