//! Every Keras 3 activation reproduced: output and gradient, in f64 to 1e-9
//! and in f32 to 1e-4, on the tape and on the static path.
//!
//! Expected numbers come from `../shared/testdata/keras/keras_activations.json`
//! (Keras 3.15 itself on its torch backend, float64): `y =
//! keras.activations.NAME(x, **args)` and `grad = d/dx sum(y * cotangent)`.

use crate::common;

use std::collections::BTreeSet;

use common::{assert_close, load_keras_json, tensor};
use ndarray::ArrayD;
use nn_core::activation::{ActivationFn, Builtin, NAMES};
use nn_core::{Float, Tape};
use serde_json::Value;

/// The case's activation, built by name with the case's arguments, as a user
/// would at run time.
fn activation(case: &Value) -> Builtin {
    let name = case["name"].as_str().expect("name");
    let args: Vec<(String, String)> = case["args"]
        .as_object()
        .expect("args")
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Builtin::with_args(name, &args).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Known imprecision in the reference itself, as a factor on its gradient:
/// PyTorch's CPU `hardsigmoid_backward`, which Keras calls, multiplies by a
/// float32 1/6 even in float64, so its gradient exceeds the exact `dy / 6` by
/// `(1/6)_f32 / (1/6) = 1 + 2.98e-8` (the README beside the file says so). We
/// compute the exact derivative and scale the reference back.
fn reference_correction(name: &str) -> f64 {
    match name {
        "hard_sigmoid" => (1.0 / 6.0) / ((1.0f32 / 6.0f32) as f64),
        _ => 1.0,
    }
}

fn check_case<T: Float>(case: &Value, tol: f64) {
    let name = case["name"].as_str().unwrap();
    let a = activation(case);
    let x: ArrayD<T> = tensor(&case["x"]);
    let cot: ArrayD<T> = tensor(&case["cotangent"]);
    let y_ref: ArrayD<f64> = tensor(&case["y"]);
    let grad_ref: ArrayD<f64> = tensor::<f64>(&case["grad"]) * reference_correction(name);
    let dtype = std::any::type_name::<T>();

    // Static path: the kernels the models call.
    let y = a.forward(x.view());
    assert_close(&format!("{name} ({dtype}) y"), &y, &y_ref, tol);
    let mut dx = ArrayD::zeros(x.raw_dim());
    a.backward_into(x.view(), y.view(), cot.view(), dx.view_mut());
    assert_close(
        &format!("{name} ({dtype}) static grad"),
        &dx,
        &grad_ref,
        tol,
    );

    // Tape path: `sum(y * cotangent)` differentiated by the tape.
    let tape = Tape::<T>::new();
    let xv = tape.var(x);
    (&a.apply(&xv) * &tape.constant(cot)).sum().backward();
    let g = xv.grad().expect("gradient of x");
    assert_close(&format!("{name} ({dtype}) tape grad"), &g, &grad_ref, tol);
}

fn cases() -> Vec<Value> {
    load_keras_json("keras_activations.json")["cases"]
        .as_array()
        .expect("cases")
        .clone()
}

#[test]
fn keras_activations_f64() {
    for case in cases() {
        check_case::<f64>(&case, 1e-9);
    }
}

#[test]
fn keras_activations_f32() {
    for case in cases() {
        check_case::<f32>(&case, 1e-4);
    }
}

#[test]
fn every_keras_case_is_one_of_ours() {
    // The generator beside the JSON computes every name of
    // `keras.activations` (32 in Keras 3.15); each must be a name of ours, so
    // the two tests above run all of them. Names of ours that Keras lacks
    // (none today) are covered by `gradcheck_activations.rs`.
    let ours: BTreeSet<&str> = NAMES.iter().copied().collect();
    let cases = cases();
    let theirs: BTreeSet<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(theirs.len(), cases.len(), "one case per name");
    assert_eq!(theirs.len(), 32, "Keras 3 has 32 activation names");
    let missing: Vec<&&str> = theirs.difference(&ours).collect();
    assert!(missing.is_empty(), "Keras activations we lack: {missing:?}");
}
