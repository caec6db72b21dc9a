//! The check that a model's two execution paths agree, shared by the tests
//! of `sequential!` models: the static forward/backward (reused buffers, no
//! tape) against the tape, whose gradients nn-core checks against PyTorch and
//! finite differences.

use std::collections::BTreeMap;

use nn::ndarray::{ArrayD, Dimension, IxDyn};
use nn::prelude::*;

/// A deterministic input in [-1, 1) of `shape`, varied along every axis.
pub fn input<T: Float>(shape: &[usize]) -> ArrayD<T> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let k = i
            .slice()
            .iter()
            .enumerate()
            .map(|(a, &b)| (a + 1) * (b + 3))
            .sum::<usize>();
        T::lit(((k * 37) % 17) as f64 / 8.0 - 1.0)
    })
}

/// Every parameter's gradient by name; a parameter without one fails.
pub fn grads<T: Float, M: Model<T>>(m: &M) -> BTreeMap<String, ArrayD<T>> {
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

/// `a` and `b` agree to `tol`, relative to `b` beyond magnitude 1.
pub fn close<T: Float>(what: &str, a: &ArrayD<T>, b: &ArrayD<T>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (x, y) in a.iter().zip(b.iter()) {
        let (x, y) = (x.as_f64(), y.as_f64());
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: {x:e} vs {y:e}"
        );
    }
}

/// Both paths on two models from one seed (so dropout draws the same masks):
/// outputs, every parameter's gradient and, through the model's `Layer` impl,
/// the input's gradient; the same parameter gradients when the input's is
/// not asked for; then `predict` against both paths in eval mode.
pub fn paths_agree<T: Float, M: Model<T> + Layer<T>>(
    make: impl Fn() -> M,
    in_shape: &[usize],
    tol: f64,
) {
    let x = input::<T>(in_shape);
    let (mut tape_model, mut static_model) = (make(), make());
    Model::train(&mut tape_model);
    Model::train(&mut static_model);

    let tape = Tape::<T>::new();
    let xv = tape.var(x.clone());
    let out = Model::forward(&tape_model, &xv);
    let cot = input::<T>(&out.shape()).mapv(|v| v + T::lit(0.3));
    out.backward_with(cot.clone());

    let y = Layer::forward_train(&mut static_model, x.view()).to_owned();
    let dx = Layer::backward(&mut static_model, x.view(), cot.view(), true).to_owned();

    close("output", &y, &out.value(), tol);
    close(
        "input gradient",
        &dx,
        &xv.grad().expect("x has a gradient"),
        tol,
    );
    let (a, b) = (grads(&static_model), grads(&tape_model));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, g) in &a {
        close(name, g, &b[name], tol);
    }

    // Without the input's gradient: the same parameter gradients, and an
    // empty view back.
    let mut again = make();
    Model::train(&mut again);
    Layer::forward_train(&mut again, x.view());
    assert!(Layer::backward(&mut again, x.view(), cot.view(), false).is_empty());
    for (name, g) in grads(&again) {
        close(&name, &g, &a[&name], tol);
    }

    // Inference gives the training output when nothing is random: in eval
    // mode (dropout off, running statistics) `predict`, the static forward
    // and the tape agree.
    Model::eval(&mut static_model);
    Model::eval(&mut tape_model);
    let trained = Model::forward_train(&mut static_model, x.view()).to_owned();
    let predicted = Model::predict(&static_model, x.view());
    close(
        "predict vs static forward (eval)",
        &predicted,
        &trained,
        tol,
    );
    let taped = Model::forward(&tape_model, &Tape::<T>::new().constant(x.clone())).value();
    close("predict vs tape forward (eval)", &predicted, &taped, tol);
}

/// `to`'s parameters set to `from`'s, in order (the names may differ by the
/// layers' positions; the running statistics start alike).
pub fn copy_state<T: Float, A: Model<T>, B: Model<T>>(from: &A, to: &B) {
    let (src, dst) = (from.named_params(), to.named_params());
    assert_eq!(src.len(), dst.len());
    for ((_, s), (_, d)) in src.iter().zip(&dst) {
        d.value_mut().assign(&*s.value());
    }
}

/// A model with a fused layer and the same model written with separate
/// layers (`split`), its parameters copied in: training and evaluation steps
/// on one batch of `in_shape` give equal outputs, input gradients, parameter
/// gradients and running statistics, and `predict` the same bits.
pub fn same_bits<T: Float, A: Model<T> + Layer<T>, B: Model<T> + Layer<T>>(
    mut fused: A,
    mut split: B,
    in_shape: &[usize],
) {
    copy_state(&split, &fused);
    let x = input::<T>(in_shape);
    for training in [true, false] {
        if !training {
            Model::eval(&mut fused);
            Model::eval(&mut split);
        }
        let y = Layer::forward_train(&mut fused, x.view()).to_owned();
        let want = Layer::forward_train(&mut split, x.view()).to_owned();
        assert_eq!(y, want, "output (training: {training})");
        let cot = input::<T>(y.shape()).mapv(|v| v + T::lit(0.3));
        let dx = Layer::backward(&mut fused, x.view(), cot.view(), true).to_owned();
        let want_dx = Layer::backward(&mut split, x.view(), cot.view(), true).to_owned();
        assert_eq!(dx, want_dx, "input gradient (training: {training})");
        let (a, b) = (grads(&fused), grads(&split));
        for (ga, gb) in a.values().zip(b.values()) {
            assert_eq!(ga, gb, "parameter gradients (training: {training})");
        }
        let buffers = |m: Vec<(String, Param<T>)>| -> Vec<ArrayD<T>> {
            m.iter().map(|(_, p)| p.value().clone()).collect()
        };
        assert_eq!(
            buffers(fused.named_buffers()),
            buffers(split.named_buffers()),
            "running statistics"
        );
        fused.zero_grad();
        split.zero_grad();
    }
    assert_eq!(
        Model::predict(&fused, x.view()),
        Model::predict(&split, x.view())
    );
}
