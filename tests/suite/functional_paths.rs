//! `functional!` graphs: a branch, every merge, a shared layer and two
//! outputs agree between the static path and the tape (f64, 1e-12: outputs,
//! every parameter's gradient), the tape passes `gradcheck` (central finite
//! differences), and the same graph written by hand on the tape with the
//! same weights gives identical outputs and gradients. A graph of one input
//! and one output is a `Layer` and a `Model`: it nests in `sequential!`
//! models, nests them, and trains with `fit`.
//!
//! Expected values are the tape's (checked against PyTorch and finite
//! differences in nn-core's tests), the hand-written tape graph's, and
//! finite differences.

use std::collections::BTreeMap;

use nn::ndarray::{ArrayD, Dimension, IxDyn};
use nn::prelude::*;

functional! {
    /// Every merge, a layer shared by both inputs, and two outputs.
    #[dtype(f64)]
    pub struct Every(a: input(4), b: input(4)) -> (out, aux) {
        let shared = Dense(6, activation = tanh);
        let ha = shared(a);
        let hb = shared(b);
        let s = Add(ha, hb);
        let d = Subtract(ha, hb);
        let m = Multiply(s, d);
        let avg = Average(s, d, m);
        let mx = Maximum(s, d);
        let mn = Minimum(mx, m);
        let c = Concatenate(avg, mn);
        let out = Dense(3)(c);
        let aux = Dense(2, activation = sigmoid)(ha);
    }
}

sequential! {
    /// A tower used inside a graph.
    #[dtype(f64)]
    pub struct Tower: input(4) {
        Dense(5, activation = elu),
        LayerNorm,
    }
}

functional! {
    /// One input, one output: a nested model on one branch, a skip on the
    /// other, a softmax head.
    #[dtype(f64)]
    pub struct Skip(x: input(4)) -> (y) {
        let h = Tower(x) -> (5);
        let g = Dense(5)(x);
        let s = Add(h, g);
        let y = Dense(3, activation = softmax)(s);
    }
}

sequential! {
    /// A graph inside a sequential model.
    #[dtype(f64)]
    pub struct Outer: input(4) {
        Dense(4, activation = tanh),
        skip: Skip -> (3),
        Dense(2),
    }
}

fn input(shape: &[usize], salt: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let k = i
            .slice()
            .iter()
            .enumerate()
            .map(|(a, &b)| (a + 1 + salt) * (b + 3))
            .sum::<usize>();
        ((k * 37 + salt) % 17) as f64 / 8.0 - 1.0
    })
}

fn grads<P: Parameters<f64>>(m: &P) -> BTreeMap<String, ArrayD<f64>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        let g = p.grad().clone();
        out.insert(
            n.to_string(),
            g.unwrap_or_else(|| panic!("{n}: no gradient")),
        );
    });
    out
}

fn close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (x, y) in a.iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: {x:e} vs {y:e}"
        );
    }
}

#[test]
fn a_graph_of_every_merge_agrees_between_paths() {
    let (a, b) = (input(&[5, 4], 0), input(&[5, 4], 1));
    let (tape_model, mut static_model) = (Every::with_seed(3), Every::with_seed(3));

    let tape = Tape::<f64>::new();
    let [out, aux] = tape_model.forward([&tape.constant(a.clone()), &tape.constant(b.clone())]);
    let (w_out, w_aux) = (input(&out.shape(), 2), input(&aux.shape(), 3));
    let loss =
        (&out * &tape.constant(w_out.clone())).sum() + (&aux * &tape.constant(w_aux.clone())).sum();
    loss.backward();

    let [y_out, y_aux] = static_model.forward_train([a.view(), b.view()]);
    let (y_out, y_aux) = (y_out.to_owned(), y_aux.to_owned());
    static_model.backward([w_out.view(), w_aux.view()]);

    close("out", &y_out, &out.value(), 1e-12);
    close("aux", &y_aux, &aux.value(), 1e-12);
    let (s, t) = (grads(&static_model), grads(&tape_model));
    assert_eq!(
        s.keys().collect::<Vec<_>>(),
        [
            "dense.bias",
            "dense.weight",
            "dense_1.bias",
            "dense_1.weight",
            "shared.bias",
            "shared.weight"
        ]
    );
    for (name, g) in &s {
        close(name, g, &t[name], 1e-12);
    }

    // Inference: every output, the same values.
    let [p_out, p_aux] = static_model.predict([a.view(), b.view()]);
    close("predict out", &p_out, &y_out, 1e-12);
    close("predict aux", &p_aux, &y_aux, 1e-12);

    // A second step: gradients add, buffers are reused.
    static_model.forward_train([a.view(), b.view()]);
    static_model.backward([w_out.view(), w_aux.view()]);
    for (name, g) in grads(&static_model) {
        close(&name, &g, &(&s[&name] * 2.0), 1e-12);
    }
}

#[test]
fn the_graph_written_by_hand_on_the_tape_is_the_same() {
    let (a, b) = (input(&[3, 4], 4), input(&[3, 4], 5));
    let model = Every::with_seed(11);
    let tape = Tape::<f64>::new();
    let (va, vb) = (tape.constant(a), tape.constant(b));
    let [out, aux] = model.forward([&va, &vb]);
    (out.sum() + aux.sum()).backward();
    let by_macro = grads(&model);
    model.visit_params(&mut |_, p| p.zero_grad());

    // The same graph, by hand, on the same weights.
    let p = |name: &str| {
        let mut found = None;
        model.visit_params(&mut |n, q| {
            if n == name {
                found = Some(tape.param(q));
            }
        });
        found.unwrap_or_else(|| panic!("no parameter {name}"))
    };
    let dense = |x: &Var<f64>, layer: &str| {
        x.linear(
            &p(&format!("{layer}.weight")),
            Some(&p(&format!("{layer}.bias"))),
        )
    };
    let (ha, hb) = (dense(&va, "shared").tanh(), dense(&vb, "shared").tanh());
    let s = &ha + &hb;
    let d = &ha - &hb;
    let m = &s * &d;
    let avg = (&(&s + &d) + &m) * (1.0 / 3.0);
    let mx = s.maximum(&d);
    let mn = mx.minimum(&m);
    let c = Var::concat(&[&avg, &mn], 1);
    let hand_out = dense(&c, "dense");
    let hand_aux = dense(&ha, "dense_1").sigmoid();
    (hand_out.sum() + hand_aux.sum()).backward();

    close("out", &out.value(), &hand_out.value(), 0.0);
    close("aux", &aux.value(), &hand_aux.value(), 0.0);
    for (name, g) in grads(&model) {
        close(&name, &by_macro[&name], &g, 0.0);
    }
}

#[test]
fn the_tape_passes_gradcheck() {
    let model = Every::with_seed(5);
    let report = gradcheck(
        |v| {
            let [out, aux] = model.forward([&v[0], &v[1]]);
            out.tanh().sum() + aux.sum()
        },
        &[input(&[2, 4], 6), input(&[2, 4], 7)],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "Every: {report}");
    let skip = Skip::with_seed(5);
    let report = gradcheck(
        |v| Layer::forward(&skip, &v[0]),
        &[input(&[3, 4], 8)],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "Skip: {report}");
}

#[test]
fn a_one_input_graph_is_a_layer_and_nests_both_ways() {
    // The graph alone, both paths, with the input's gradient.
    let x = input(&[4, 4], 9);
    let (tape_model, mut static_model) = (Skip::with_seed(2), Skip::with_seed(2));
    let tape = Tape::<f64>::new();
    let xv = tape.var(x.clone());
    let y = Layer::forward(&tape_model, &xv);
    let cot = input(&y.shape(), 10);
    y.backward_with(cot.clone());
    let ys = Layer::forward_train(&mut static_model, x.view()).to_owned();
    let dx = Layer::backward(&mut static_model, x.view(), cot.view(), true).to_owned();
    close("output", &ys, &y.value(), 1e-12);
    close(
        "input gradient",
        &dx,
        &xv.grad().expect("x has a gradient"),
        1e-12,
    );
    for (name, g) in grads(&static_model) {
        close(&name, &g, &grads(&tape_model)[&name], 1e-12);
    }
    assert!(Layer::softmax_output(&static_model));

    // Inside a sequential model: names under the field, both paths agree.
    let (tape_outer, mut static_outer) = (Outer::with_seed(4), Outer::with_seed(4));
    let tape = Tape::<f64>::new();
    let out = Model::forward(&tape_outer, &tape.constant(x.clone()));
    let cot = input(&out.shape(), 11);
    out.backward_with(cot.clone());
    let y = Model::forward_train(&mut static_outer, x.view()).to_owned();
    Model::backward(&mut static_outer, cot.view());
    close("outer output", &y, &out.value(), 1e-12);
    let (s, t) = (grads(&static_outer), grads(&tape_outer));
    assert!(s.contains_key("skip.tower.dense.weight"), "{:?}", s.keys());
    for (name, g) in &s {
        close(name, g, &t[name], 1e-12);
    }
}

/// The tape path checks each declared input, as the static path does, and
/// names it (an input of the wrong shape otherwise fails inside a layer).
#[test]
#[should_panic(expected = "skip: input `x`: expected input of shape [batch, 4], got [2, 3]")]
fn the_tape_path_checks_the_declared_inputs() {
    let tape = nn::Tape::new();
    let x = tape.var(ArrayD::<f64>::zeros(IxDyn(&[2, 3])));
    let _ = Skip::with_seed(0).forward(&x);
}
