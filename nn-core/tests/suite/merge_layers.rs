//! Merge layers (`Add`, `Subtract`, `Multiply`, `Average`, `Maximum`,
//! `Minimum`, `Concatenate`) on both paths, and `Share`: one layer applied at
//! several places of a graph.
//!
//! Where expected values come from:
//! - merge outputs: the closed-form formula beside each case (a sum, a
//!   product, `f64::max` folded, `ndarray::concatenate`);
//! - the static path's values and gradients: the tape path (`forward`, then
//!   backward of `(y * w).sum()`, so `dy = w`), to 1e-12;
//! - the tape's gradients: central finite differences (`gradcheck`), except
//!   at ties, where they come from the tie rule of `Var::maximum` (half to
//!   each operand, PyTorch's `derivatives.yaml`) applied step by step to the
//!   left fold, worked out beside each tied element;
//! - `predict`: the static path's output, exactly;
//! - shared layers: the tape applying one layer twice, PyTorch's running
//!   statistics rule, or the formula beside each assertion.

use crate::panics;
use panics::panic_message;

use crate::common;

use common::assert_close;
use ndarray::{array, concatenate, ArrayD, ArrayViewD, Axis, IxDyn, Zip};
use nn_core::activation::Tanh;
use nn_core::init::Initializer;
use nn_core::layers::{
    Activation, Add, Average, BatchNorm, Concatenate, Conv2d, Dense, Dropout, Embedding, Flatten,
    GlobalAvgPool, Identity, Layer, LayerNorm, Maximum, Merge, Minimum, Multiply, Padding, Pool2d,
    PoolKind, Residual, Share, Subtract, TapeLayer, TapeOnly,
};
use nn_core::{gradcheck, GradcheckOptions, Param, Tape, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-12;

fn rng() -> StdRng {
    StdRng::seed_from_u64(20260311)
}

fn uniform(rng: &mut StdRng, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(-2.0..2.0))
}

/// `n` arrays of `shape` whose elements at each position are at least 0.05
/// apart, so no maximum or minimum is near a tie (finite differences with a
/// step of 1e-6 stay on one side).
fn distinct(rng: &mut StdRng, n: usize, shape: &[usize]) -> Vec<ArrayD<f64>> {
    let mut xs: Vec<ArrayD<f64>> = (0..n).map(|_| uniform(rng, shape)).collect();
    for e in 0..xs[0].len() {
        loop {
            let v: Vec<f64> = xs.iter().map(|x| x.as_slice().unwrap()[e]).collect();
            let apart = (0..n).all(|i| (0..i).all(|j| (v[i] - v[j]).abs() >= 0.05));
            if apart {
                break;
            }
            for x in &mut xs {
                x.as_slice_mut().unwrap()[e] = rng.random_range(-2.0..2.0);
            }
        }
    }
    xs
}

fn views(xs: &[ArrayD<f64>]) -> Vec<ArrayViewD<'_, f64>> {
    xs.iter().map(|x| x.view()).collect()
}

/// The tape path: `y = layer.forward(xs)` and each input's gradient of
/// `(y * w).sum()`, which is `dy = w` taken back through the layer.
fn tape_path<M: Merge<f64>>(
    layer: &M,
    xs: &[ArrayD<f64>],
    w: &ArrayD<f64>,
) -> (ArrayD<f64>, Vec<ArrayD<f64>>) {
    let tape = Tape::new();
    let vars: Vec<Var<f64>> = xs.iter().map(|x| tape.var(x.clone())).collect();
    let refs: Vec<&Var<f64>> = vars.iter().collect();
    let y = layer.forward(&refs);
    (&y * &tape.constant(w.clone())).sum().backward();
    let grads = vars.iter().map(|v| v.grad().expect("a gradient")).collect();
    (y.value(), grads)
}

/// The static path: `forward_train`, then `backward` with `dy = w`.
fn static_path<M: Merge<f64>>(
    layer: &mut M,
    xs: &[ArrayD<f64>],
    w: &ArrayD<f64>,
) -> (ArrayD<f64>, Vec<ArrayD<f64>>) {
    let xv = views(xs);
    let y = layer.forward_train(&xv).to_owned();
    assert_eq!(layer.output(), y.view(), "output() is forward_train's");
    layer.backward(&xv, w.view());
    let grads = (0..xs.len())
        .map(|i| layer.input_grad(i).to_owned())
        .collect();
    (y, grads)
}

/// Checks a merge layer on `xs` against `expected` (its formula): the tape's
/// and the static path's values, the static gradients against the tape's,
/// `predict` against `forward_train`, `output_shape` against the output, a
/// second static step reusing the first one's buffers, and (unless `ties`)
/// the tape's gradients against finite differences.
fn check_merge<M: Merge<f64>>(
    label: &str,
    mut layer: M,
    xs: &[ArrayD<f64>],
    expected: &ArrayD<f64>,
    ties: bool,
) -> Vec<ArrayD<f64>> {
    let mut r = rng();
    let w = uniform(&mut r, expected.shape());
    let (y_tape, g_tape) = tape_path(&layer, xs, &w);
    assert_close(&format!("{label}: tape output"), &y_tape, expected, TOL);
    let (y_static, g_static) = static_path(&mut layer, xs, &w);
    assert_close(&format!("{label}: static output"), &y_static, &y_tape, TOL);
    for (i, (s, t)) in g_static.iter().zip(&g_tape).enumerate() {
        assert_close(&format!("{label}: static gradient {i}"), s, t, TOL);
    }
    assert_eq!(layer.predict(&views(xs)), y_static, "{label}: predict");
    let samples: Vec<&[usize]> = xs.iter().map(|x| &x.shape()[1..]).collect();
    assert_eq!(
        layer.output_shape(&samples).as_deref(),
        Ok(&y_static.shape()[1..]),
        "{label}: output_shape"
    );

    // A second step of the same shapes: new values through the same buffers.
    let (y_ptr, g_ptr) = (layer.output().as_ptr(), layer.input_grad(0).as_ptr());
    let xs2: Vec<ArrayD<f64>> = xs.iter().map(|x| x.mapv(|v| 0.5 - v)).collect();
    let (y2, g2) = static_path(&mut layer, &xs2, &w);
    let (y2_tape, g2_tape) = tape_path(&layer, &xs2, &w);
    assert_close(&format!("{label}: second step"), &y2, &y2_tape, TOL);
    for (i, (s, t)) in g2.iter().zip(&g2_tape).enumerate() {
        assert_close(&format!("{label}: second step gradient {i}"), s, t, TOL);
    }
    assert_eq!(
        layer.output().as_ptr(),
        y_ptr,
        "{label}: output reallocated"
    );
    assert_eq!(
        layer.input_grad(0).as_ptr(),
        g_ptr,
        "{label}: gradient reallocated"
    );

    if !ties {
        let report = gradcheck(
            |v| layer.forward(&v.iter().collect::<Vec<_>>()),
            xs,
            &GradcheckOptions::default(),
        );
        assert!(report.passed, "{label}: {report}");
        assert!(report.checked > 0, "{label}: nothing compared");
    }
    g_static
}

/// `f` folded element-wise over `xs` from the left.
fn fold(xs: &[ArrayD<f64>], f: impl Fn(f64, f64) -> f64) -> ArrayD<f64> {
    let mut y = xs[0].clone();
    for x in &xs[1..] {
        Zip::from(&mut y).and(x).for_each(|y, &x| *y = f(*y, x));
    }
    y
}

#[test]
fn element_wise_merges_agree_on_both_paths_and_with_finite_differences() {
    let mut r = rng();
    for n in [2, 3] {
        let xs = distinct(&mut r, n, &[2, 3, 4]);
        let sum = fold(&xs, |a, b| a + b);
        check_merge(&format!("Add of {n}"), Add::new(), &xs, &sum, false);
        let product = fold(&xs, |a, b| a * b);
        check_merge(
            &format!("Multiply of {n}"),
            Multiply::new(),
            &xs,
            &product,
            false,
        );
        let mean = sum.mapv(|s| s / n as f64);
        check_merge(
            &format!("Average of {n}"),
            Average::new(),
            &xs,
            &mean,
            false,
        );
        let max = fold(&xs, f64::max);
        check_merge(&format!("Maximum of {n}"), Maximum::new(), &xs, &max, false);
        let min = fold(&xs, f64::min);
        check_merge(&format!("Minimum of {n}"), Minimum::new(), &xs, &min, false);
    }
    let xs = distinct(&mut r, 2, &[3, 5]);
    let difference = &xs[0] - &xs[1];
    check_merge("Subtract", Subtract::new(), &xs, &difference, false);
}

#[test]
fn maximum_and_minimum_split_ties_as_the_left_fold_of_the_tape_does() {
    // One batch row per tie pattern of three inputs; in each, the largest
    // value is 1 and the others 0.
    let x0 = array![[1.0], [1.0], [0.0], [1.0], [1.0]].into_dyn();
    let x1 = array![[1.0], [1.0], [1.0], [0.0], [0.0]].into_dyn();
    let x2 = array![[1.0], [0.0], [1.0], [1.0], [0.0]].into_dyn();
    // With g the output's gradient, m = maximum(x0, x1) and y = maximum(m, x2):
    // - all tie: m and x2 get g/2; x0 and x1 half of m's: g/4 each;
    // - x0 = x1 > x2: m gets g, x0 and x1 g/2 each, x2 nothing;
    // - x1 = x2 > x0: m = x1 gets g/2 (all of it to x1), x2 g/2;
    // - x0 = x2 > x1: m = x0 gets g/2 (all of it to x0), x2 g/2;
    // - x0 alone: x0 gets g.
    let share = [
        [0.25, 0.25, 0.5],
        [0.5, 0.5, 0.0],
        [0.0, 0.5, 0.5],
        [0.5, 0.0, 0.5],
        [1.0, 0.0, 0.0],
    ];
    let mut r = rng();
    let w = uniform(&mut r, &[5, 1]);
    let expected: Vec<ArrayD<f64>> = (0..3)
        .map(|i| ArrayD::from_shape_fn(IxDyn(&[5, 1]), |ix| share[ix[0]][i] * w[[ix[0], 0]]))
        .collect();
    let ones = ArrayD::from_elem(IxDyn(&[5, 1]), 1.0);

    let xs = [x0.clone(), x1.clone(), x2.clone()];
    for (label, grads) in [
        ("Maximum", tie_grads(Maximum::new(), &xs, &ones, &w)),
        // The same pattern with the smallest value -1 and the others 0.
        (
            "Minimum",
            tie_grads(Minimum::new(), &xs.clone().map(|x| -x), &-&ones, &w),
        ),
    ] {
        for (i, (tape, stat)) in grads.0.iter().zip(&grads.1).enumerate() {
            assert_close(
                &format!("{label} tape gradient {i}"),
                tape,
                &expected[i],
                TOL,
            );
            assert_close(&format!("{label} static gradient {i}"), stat, tape, TOL);
        }
    }
    // And through `check_merge` (both paths, predict, buffers), without
    // finite differences, which are meaningless at a tie.
    check_merge("Maximum, ties", Maximum::new(), &xs, &ones, true);
}

/// The tape's and the static path's gradients of a tied merge with `dy = w`,
/// checking the output is `expected`.
fn tie_grads<M: Merge<f64>>(
    mut layer: M,
    xs: &[ArrayD<f64>],
    expected: &ArrayD<f64>,
    w: &ArrayD<f64>,
) -> (Vec<ArrayD<f64>>, Vec<ArrayD<f64>>) {
    let (y_tape, g_tape) = tape_path(&layer, xs, w);
    let (y_static, g_static) = static_path(&mut layer, xs, w);
    assert_close("tied output (tape)", &y_tape, expected, 0.0);
    assert_close("tied output (static)", &y_static, expected, 0.0);
    (g_tape, g_static)
}

#[test]
fn concatenate_agrees_on_both_paths_and_with_finite_differences() {
    let mut r = rng();
    // Keras's axis counts the batch axis: on [batch, 3, k], -1 and 2 are the
    // last axis, 1 and -2 the middle one.
    for axis in [-1, 2] {
        let xs: Vec<ArrayD<f64>> = [2, 4, 1]
            .iter()
            .map(|&k| uniform(&mut r, &[2, 3, k]))
            .collect();
        let expected = concatenate(Axis(2), &views(&xs)).unwrap();
        let g = check_merge(
            &format!("Concatenate(axis = {axis})"),
            Concatenate::new(axis),
            &xs,
            &expected,
            false,
        );
        assert_eq!(
            g[1].shape(),
            &[2, 3, 4],
            "each input's gradient has its shape"
        );
    }
    for axis in [1, -2] {
        let xs = vec![uniform(&mut r, &[2, 1, 4]), uniform(&mut r, &[2, 3, 4])];
        let expected = concatenate(Axis(1), &views(&xs)).unwrap();
        check_merge(
            &format!("Concatenate(axis = {axis})"),
            Concatenate::new(axis),
            &xs,
            &expected,
            false,
        );
    }
    assert_eq!(Concatenate::<f64>::default().axis, -1, "Keras's default");
}

#[test]
fn output_shape_accepts_what_keras_accepts() {
    let add = Add::<f64>::new();
    assert_eq!(
        add.output_shape(&[&[3, 4], &[3, 4], &[3, 4]]),
        Ok(vec![3, 4])
    );
    assert_eq!(
        Subtract::<f64>::new().output_shape(&[&[5], &[5]]),
        Ok(vec![5])
    );
    let concat = |axis| Concatenate::<f64>::new(axis);
    assert_eq!(concat(-1).output_shape(&[&[2, 3], &[2, 5]]), Ok(vec![2, 8]));
    assert_eq!(concat(1).output_shape(&[&[2, 3], &[4, 3]]), Ok(vec![6, 3]));
    assert_eq!(concat(-2).output_shape(&[&[2, 3], &[4, 3]]), Ok(vec![6, 3]));
    assert_eq!(concat(-1).output_shape(&[&[7]]), Ok(vec![7]));
}

#[test]
fn output_shape_errors_name_the_layer_and_every_shape() {
    let err = |r: Result<Vec<usize>, String>| r.expect_err("an error");
    let cases = [
        (
            err(Add::<f64>::new().output_shape(&[&[3, 4], &[3, 4], &[3, 5]])),
            &["Add", "one shape", "[3, 4], [3, 4], [3, 5]"][..],
        ),
        (
            err(Maximum::<f64>::new().output_shape(&[&[4], &[1]])),
            &["Maximum", "does not broadcast", "[4], [1]"],
        ),
        (
            err(Multiply::<f64>::new().output_shape(&[&[4]])),
            &["Multiply", "at least 2", "[4]"],
        ),
        (
            err(Subtract::<f64>::new().output_shape(&[&[4], &[4], &[4]])),
            &["Subtract", "exactly 2", "[4], [4], [4]"],
        ),
        (
            err(Concatenate::<f64>::new(0).output_shape(&[&[3], &[4]])),
            &["Concatenate", "batch axis", "[3], [4]"],
        ),
        (
            // -2 with one axis per sample: -2 + 2 = 0, the batch axis.
            err(Concatenate::<f64>::new(-2).output_shape(&[&[3], &[4]])),
            &["Concatenate", "batch axis", "[3], [4]"],
        ),
        (
            err(Concatenate::<f64>::new(2).output_shape(&[&[3], &[4]])),
            &["Concatenate", "axis 2 is out of range", "[3], [4]"],
        ),
        (
            err(Concatenate::<f64>::new(-3).output_shape(&[&[3], &[4]])),
            &["Concatenate", "axis -3 is out of range", "[3], [4]"],
        ),
        (
            err(Concatenate::<f64>::new(-1).output_shape(&[&[2, 3], &[4, 3]])),
            &["Concatenate", "agree on every axis", "[2, 3], [4, 3]"],
        ),
        (
            err(Concatenate::<f64>::new(-1).output_shape(&[&[2, 3], &[2]])),
            &["Concatenate", "one rank", "[2, 3], [2]"],
        ),
        (
            err(Concatenate::<f64>::new(-1).output_shape(&[])),
            &["Concatenate", "at least 1"],
        ),
    ];
    for (message, parts) in cases {
        for part in parts {
            assert!(
                message.contains(part),
                "{message:?} should mention {part:?}"
            );
        }
    }
}

#[test]
fn misuse_panics_name_the_layer_and_the_shapes() {
    let a = ArrayD::<f64>::zeros(IxDyn(&[2, 3]));
    let b = ArrayD::<f64>::zeros(IxDyn(&[2, 4]));
    let m = panic_message(|| {
        Add::new().forward_train(&[a.view(), b.view()]);
    });
    assert!(m.contains("Add") && m.contains("[2, 3], [2, 4]"), "{m}");
    let m = panic_message(|| {
        let tape = Tape::new();
        let (x, y) = (tape.var(a.clone()), tape.var(b.clone()));
        Average::new().forward(&[&x, &y]);
    });
    assert!(m.contains("Average") && m.contains("[2, 3], [2, 4]"), "{m}");
    // Batch sizes must agree too: the batch axis is not joined along.
    let c = ArrayD::<f64>::zeros(IxDyn(&[5, 3]));
    let m = panic_message(|| {
        Concatenate::new(-1).predict(&[a.view(), c.view()]);
    });
    assert!(
        m.contains("Concatenate") && m.contains("[2, 3], [5, 3]"),
        "{m}"
    );
    let m = panic_message(|| Maximum::new().backward(&[a.view(), a.view()], a.view()));
    assert!(m.contains("Maximum") && m.contains("forward_train"), "{m}");
    let m = panic_message(|| {
        let mut layer = Subtract::new();
        layer.forward_train(&[a.view(), a.view()]);
        layer.backward(&[a.view(), a.view()], b.view());
    });
    assert!(m.contains("Subtract") && m.contains("[2, 4]"), "{m}");
    let m = panic_message(|| {
        let mut layer = Multiply::new();
        layer.forward_train(&[a.view(), a.view()]);
        layer.backward(&[a.view(), a.view()], a.view());
        layer.input_grad(2);
    });
    assert!(m.contains("Multiply") && m.contains("input_grad(2)"), "{m}");
}

// ---------------------------------------------------------------- Share --

/// Asserts `b` holds the same parameter and buffer handles as `a`, by name.
fn assert_shares<L: Layer<f64>>(label: &str, a: &L, b: &L) {
    let handles = |l: &L| {
        let mut h: Vec<(String, Param<f64>)> = Vec::new();
        l.visit_params(&mut |n, p| h.push((n.to_string(), p.clone())));
        l.visit_buffers(&mut |n, p| h.push((format!("buffer {n}"), p.clone())));
        h
    };
    let (ha, hb) = (handles(a), handles(b));
    assert_eq!(ha.len(), hb.len(), "{label}: count");
    for ((na, pa), (nb, pb)) in ha.iter().zip(&hb) {
        assert_eq!(na, nb, "{label}: names");
        assert!(pa.same_as(pb), "{label}: {na} is not shared");
    }
}

/// Two shared layers side by side, as a tape layer: `a(x) + b(x)` with `b =
/// a.share()`.
struct Twice {
    a: Dense<f64, 3, 2>,
    b: Dense<f64, 3, 2>,
}

impl nn_core::layers::TapeLayer<f64> for Twice {
    fn output_shape(&self, _input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(vec![2])
    }
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        &self.a.forward(x) + &self.b.forward(x)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        Layer::visit_params(&self.a, &mut |n, p| f(&format!("a.{n}"), p));
        Layer::visit_params(&self.b, &mut |n, p| f(&format!("b.{n}"), p));
    }
}

#[test]
fn a_shared_weight_is_counted_once() {
    // Keras's `count_params()` and PyTorch's `sum(p.numel() for p in
    // m.parameters())` count a shared weight once: 3 · 2 + 2 here, not 16.
    let a: Dense<f64, 3, 2> = Dense::init(&mut rng());
    let b = a.share();
    let layer = nn_core::layers::TapeOnly::new(Twice { a, b });
    assert_eq!(layer.param_count(), 8);
    nn_core::freeze_layer(&layer.inner.a);
    assert_eq!((layer.param_count(), layer.non_trainable_count()), (0, 8));
}

#[test]
fn a_shared_dense_trains_one_weight_like_the_tape_applying_it_twice() {
    let mut r = rng();
    let mut a: Dense<f64, 3, 2, Tanh> = Dense::init(&mut r);
    let mut b = a.share();
    assert_shares("Dense", &a, &b);
    let (x1, x2) = (uniform(&mut r, &[4, 3]), uniform(&mut r, &[5, 3]));
    let (w1, w2) = (uniform(&mut r, &[4, 2]), uniform(&mut r, &[5, 2]));

    // Reference: the tape applies the one layer at two places.
    let tape = Tape::new();
    let (y1, y2) = (
        a.forward(&tape.constant(x1.clone())),
        a.forward(&tape.constant(x2.clone())),
    );
    let loss = (&y1 * &tape.constant(w1.clone())).sum() + (&y2 * &tape.constant(w2.clone())).sum();
    loss.backward();
    let dw = a.weight.grad().clone().unwrap();
    let db = a.bias.as_ref().unwrap().grad().clone().unwrap();
    a.weight.clear_grad();
    a.bias.as_ref().unwrap().clear_grad();

    // Static: both forwards before either backward, so each instance's tanh
    // output must be its own. Backward twice: into fresh gradients, then
    // after zero_grad into the kept buffers, which the first backward
    // overwrites and the second adds to.
    a.forward_train(x1.view());
    b.forward_train(x2.view());
    for buffers in ["fresh", "reused"] {
        if buffers == "reused" {
            a.weight.zero_grad();
            a.bias.as_ref().unwrap().zero_grad();
        }
        a.backward(x1.view(), w1.view(), false);
        b.backward(x2.view(), w2.view(), false);
        let weight = a.weight.grad().clone().unwrap();
        assert_close(
            &format!("weight gradient, {buffers} buffers"),
            &weight,
            &dw,
            TOL,
        );
        let bias = a.bias.as_ref().unwrap().grad().clone().unwrap();
        assert_close(
            &format!("bias gradient, {buffers} buffers"),
            &bias,
            &db,
            TOL,
        );
    }

    // A value written through one is read through the other.
    b.weight.value_mut()[[1, 2]] = 7.0;
    assert_eq!(a.weight.value()[[1, 2]], 7.0);
    assert_eq!(a.predict(x1.view()), b.predict(x1.view()));
}

#[test]
fn a_shared_conv2d_keeps_its_own_scratch() {
    let mut r = rng();
    let mut a: Conv2d<f64, 1, 2, 2, 2, Tanh> = Conv2d::init(Padding::Valid, &mut r);
    let mut b = a.share();
    assert_shares("Conv2d", &a, &b);
    let (x1, x2) = (
        uniform(&mut r, &[2, 1, 4, 4]),
        uniform(&mut r, &[3, 1, 5, 5]),
    );
    let (w1, w2) = (
        uniform(&mut r, &[2, 2, 3, 3]),
        uniform(&mut r, &[3, 2, 4, 4]),
    );

    // Reference: the tape applies the one layer at two places.
    let tape = Tape::new();
    let y1 = a.forward(&tape.constant(x1.clone()));
    let y2 = a.forward(&tape.constant(x2.clone()));
    ((&y1 * &tape.constant(w1.clone())).sum() + (&y2 * &tape.constant(w2.clone())).sum())
        .backward();
    let dw = a.weight.grad().clone().unwrap();
    a.weight.clear_grad();
    a.bias.as_ref().unwrap().clear_grad();

    a.forward_train(x1.view());
    b.forward_train(x2.view());
    b.backward(x2.view(), w2.view(), false);
    a.backward(x1.view(), w1.view(), false);
    assert_close(
        "weight gradient",
        &a.weight.grad().clone().unwrap(),
        &dw,
        TOL,
    );
}

#[test]
fn a_shared_batch_norm_shares_parameters_and_running_statistics() {
    let mut r = rng();
    let mut a = BatchNorm::<f64, 3>::default();
    let mut b = a.share();
    assert_shares("BatchNorm", &a, &b);
    let (x1, x2) = (uniform(&mut r, &[4, 3]), uniform(&mut r, &[6, 3]));
    let dy = uniform(&mut r, &[4, 3]);

    // b's training step updates the statistics a reads, by PyTorch's rule
    // from mean 0 and variance 1: 0.9·running + 0.1·batch (unbiased variance).
    b.forward_train(x1.view());
    let mean = x1.mean_axis(Axis(0)).unwrap();
    let var = x1.var_axis(Axis(0), 1.0);
    assert_close(
        "running mean",
        &a.running_mean.value(),
        &(0.1 * &mean).into_dyn(),
        TOL,
    );
    let expected_var = (0.9 + 0.1 * &var).into_dyn();
    assert_close("running var", &a.running_var.value(), &expected_var, TOL);

    // a's step in between neither disturbs b's cached statistics nor its
    // gradient: b's matches an unshared layer's on x1 alone (the other path).
    a.forward_train(x2.view());
    let dx = b.backward(x1.view(), dy.view(), true).to_owned();
    let mut alone = BatchNorm::<f64, 3>::default();
    alone.forward_train(x1.view());
    let dx_alone = alone.backward(x1.view(), dy.view(), true).to_owned();
    assert_close("input gradient", &dx, &dx_alone, TOL);
    // ∂L/∂β = Σ over the batch of dy, added into the one shared bias.
    let dbeta = dy.sum_axis(Axis(0)).into_dyn();
    assert_close(
        "bias gradient",
        &a.bias.grad().clone().unwrap(),
        &dbeta,
        TOL,
    );

    // Same mode and hyperparameters; a value written through one is read
    // through the other.
    assert_eq!((b.momentum, b.eps), (a.momentum, a.eps));
    a.weight.value_mut()[0] = 2.0;
    assert_eq!(b.weight.value()[0], 2.0);
    a.set_training(false);
    let c = a.share();
    assert_eq!(c.predict(x1.view()), a.predict(x1.view()));
}

#[test]
fn a_shared_embedding_adds_its_rows_gradient_into_the_one_table() {
    let mut r = rng();
    let a = Embedding::<f64, 4, 2>::new(Initializer::Zeros, &mut r);
    let mut b = a.share();
    assert_shares("Embedding", &a, &b);
    let index = array![[1.0, 3.0, 1.0]].into_dyn();
    let dy = array![[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]].into_dyn();
    b.forward_train(index.view());
    b.backward(index.view(), dy.view(), false);
    // Row i's gradient is the sum of dy over the positions holding i.
    let expected = array![[0.0, 0.0], [6.0, 8.0], [0.0, 0.0], [3.0, 4.0]].into_dyn();
    assert_close(
        "table gradient",
        &a.weight.grad().clone().unwrap(),
        &expected,
        0.0,
    );
}

#[test]
fn shared_layers_without_parameters_keep_their_configuration() {
    let mut r = rng();
    let x = uniform(&mut r, &[2, 3, 4, 4]);
    let pool = Pool2d::<f64>::new(PoolKind::Max, (2, 2), (2, 2), (0, 0));
    assert_eq!(pool.share().predict(x.view()), pool.predict(x.view()));
    let gap = GlobalAvgPool::<f64>::new();
    assert_eq!(gap.share().predict(x.view()), gap.predict(x.view()));
    let flat = Flatten::<f64>::new();
    assert_eq!(flat.share().predict(x.view()), flat.predict(x.view()));
    let id = Identity::<f64>::new();
    assert_eq!(id.share().predict(x.view()), x);
    let act = Activation::<f64, Tanh>::new(Tanh);
    assert_eq!(act.share().predict(x.view()), act.predict(x.view()));
    let ln = LayerNorm::<f64, 4>::default();
    assert_shares("LayerNorm", &ln, &ln.share());
    let concat = Concatenate::<f64>::new(1);
    assert_eq!(concat.share().axis, 1);
}

#[test]
fn a_shared_dropout_draws_masks_of_its_own_reproducibly() {
    let x = ArrayD::from_elem(IxDyn(&[50, 40]), 1.0);
    let masks = |seed: u64| {
        let mut a = Dropout::<f64>::new(0.5, &mut StdRng::seed_from_u64(seed));
        let mut b = a.share();
        assert_eq!(b.rate(), 0.5);
        let mb = b.forward_train(x.view()).to_owned();
        let ma = a.forward_train(x.view()).to_owned();
        (ma, mb)
    };
    let (ma, mb) = masks(3);
    assert_ne!(ma, mb, "the two places draw different masks");
    assert_eq!(masks(3), (ma, mb), "and the same ones from the same seed");
    // The training flag is copied: a layer in evaluation shares one that is.
    let mut a = Dropout::<f64>::new(0.5, &mut StdRng::seed_from_u64(3));
    a.set_training(false);
    assert_eq!(a.share().forward_train(x.view()), x.view());
}

/// `x * scale`, one learned scale per feature, written for the tape alone.
#[derive(Clone)]
struct Scale {
    scale: Param<f64>,
}

impl TapeLayer<f64> for Scale {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        x * &x.tape().param(&self.scale)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        f("scale", &self.scale);
    }
}

#[test]
fn a_shared_tape_only_layer_keeps_its_own_recording() {
    let mut a = TapeOnly::new(Scale {
        scale: Param::new(array![2.0, 3.0]),
    });
    let mut b = a.share();
    assert_shares("TapeOnly", &a, &b);
    let (x1, x2) = (
        array![[1.0, 2.0]].into_dyn(),
        array![[-1.0, 4.0]].into_dyn(),
    );
    let (d1, d2) = (
        array![[1.0, 1.0]].into_dyn(),
        array![[10.0, 100.0]].into_dyn(),
    );
    // Both record before either backward: with one id, b's recording would
    // replace a's.
    a.forward_train(x1.view());
    b.forward_train(x2.view());
    let dx1 = a.backward(x1.view(), d1.view(), true).to_owned();
    let dx2 = b.backward(x2.view(), d2.view(), true).to_owned();
    // dx = dy · scale; ∂L/∂scale = Σ dy · x over both applications.
    assert_eq!(dx1, array![[2.0, 3.0]].into_dyn());
    assert_eq!(dx2, array![[20.0, 300.0]].into_dyn());
    // Σ dy·x per feature: 1·1 + 10·(-1) and 1·2 + 100·4.
    let expected = array![-9.0, 402.0].into_dyn();
    assert_eq!(a.inner.scale.grad().clone().unwrap(), expected);
}

#[test]
fn a_shared_residual_shares_its_body_and_shortcut() {
    let mut r = rng();
    let body: Dense<f64, 3, 2, Tanh> = Dense::init(&mut r);
    let shortcut: Dense<f64, 3, 2> = Dense::init(&mut r);
    let a = Residual::with_shortcut(body, shortcut);
    let b = a.share();
    assert_shares("Residual", &a, &b);
    let x = uniform(&mut r, &[2, 3]);
    assert_eq!(b.predict(x.view()), a.predict(x.view()));
    let plain = Residual::new(LayerNorm::<f64, 3>::default());
    let copy = plain.share();
    assert!(copy.shortcut.is_none());
    assert_shares("Residual without shortcut", &plain, &copy);
    // The activation comes along: the copy gives the same outputs.
    let activated =
        Residual::new(LayerNorm::<f64, 3>::default()).with_activation(nn_core::activation::relu);
    let copy = activated.share();
    assert_shares("Residual with an activation", &activated, &copy);
    let x = uniform(&mut r, &[4, 3]);
    let y = activated.predict(x.view());
    assert_eq!(copy.predict(x.view()), y);
    assert!(y.iter().all(|&v| v >= 0.0) && y.iter().any(|&v| v == 0.0));
}
