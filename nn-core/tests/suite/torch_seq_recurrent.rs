//! Every recurrent case (`RNN`, `LSTM`, `GRU`) of PyTorch's reference vectors
//! `seq.json` reproduced by the layers: the output and the gradient of every
//! input and every parameter, on the tape in f64 to 1e-9 and in f32 to 1e-4,
//! and on the static path in f64 to 1e-9.
//!
//! Expected numbers come from `../shared/testdata/torch/seq.json` (written by
//! `make_torch_seq_vectors.py` beside it: PyTorch, float64, batch_first).
//! Each gradient is `d/d input of sum(output * cotangent)`. Tolerances are
//! relative-or-absolute (`common::assert_close`): `|got - want| <= tol ·
//! max(1, |want|)`.

use crate::common;

use std::collections::BTreeSet;

use common::{assert_close, load_json, tensor};
use nn_core::layers::{Cell, GruCell, Layer, LstmCell, Recurrent, RecurrentConfig, RnnCell};
use nn_core::rand::{rngs::StdRng, SeedableRng};
use nn_core::{Float, Tape, Var};
use serde_json::Value;

/// The modules of `seq.json` these layers reproduce.
const MODULES: [&str; 3] = ["RNN", "LSTM", "GRU"];

fn recurrent_cases() -> Vec<Value> {
    let data = load_json("seq.json");
    data["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| MODULES.contains(&c["module"].as_str().unwrap_or("")))
        .cloned()
        .collect()
}

fn name(case: &Value) -> &str {
    case["name"].as_str().expect("name")
}

/// The layer a case describes (PyTorch's defaults where its attrs are
/// silent: one layer, one direction), its parameters set by name from
/// `params`, every one of which it must have.
fn layer<T: Float, C: Cell>(case: &Value, cell: C) -> Recurrent<T, C> {
    let attrs = &case["attrs"];
    let size = |k: &str| {
        attrs[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: attr {k}", name(case)))
    };
    let config = RecurrentConfig::new(size("input_size") as usize, size("hidden_size") as usize)
        .num_layers(attrs["num_layers"].as_u64().unwrap_or(1) as usize)
        .bidirectional(attrs["bidirectional"].as_bool().unwrap_or(false));
    let layer = Recurrent::new(cell, config, &mut StdRng::seed_from_u64(0));
    let params = case["params"].as_object().expect("params");
    let mut set = BTreeSet::new();
    layer.visit_params(&mut |n, p| {
        let value = tensor::<T>(&params[n]);
        assert_eq!(p.shape(), value.shape(), "{}: {n} shape", name(case));
        *p.value_mut() = value;
        set.insert(n.to_string());
    });
    let want: BTreeSet<String> = params.keys().cloned().collect();
    assert_eq!(
        set,
        want,
        "{}: the layer's parameters are PyTorch's",
        name(case)
    );
    layer
}

/// What a case's `output` is, from the layer's `(output, (h_n, c_n))`; an
/// error for a case this suite does not know.
fn output_of<T: Float>(
    case: &Value,
    out: nn_core::layers::RecurrentOutput<T>,
) -> Result<Var<T>, String> {
    match name(case) {
        "rnn_tanh" | "rnn_relu_h0" | "lstm" | "lstm_2layer_bidirectional" | "gru" | "gru_h0" => {
            Ok(out.output)
        }
        "lstm_h0_c0_last_state" => {
            let c_n = out.c_n.ok_or("an LSTM has c_n")?;
            Ok(Var::concat(&[&out.h_n, &c_n], 2))
        }
        other => Err(format!(
            "seq.json case {other} has no test: add it to output_of()"
        )),
    }
}

/// The tape path against one case: output, and the gradients of `x`, `h0`,
/// `c0` and every parameter.
fn check_tape<T: Float, C: Cell>(case: &Value, cell: C, tol: f64) -> Result<(), String> {
    let (n, dtype) = (name(case), std::any::type_name::<T>());
    let layer = layer::<T, C>(case, cell);
    let tape = Tape::<T>::new();
    let inputs = case["inputs"].as_object().expect("inputs");
    for k in inputs.keys() {
        if !["x", "h0", "c0"].contains(&k.as_str()) {
            return Err(format!("{n}: unknown input {k}"));
        }
    }
    let var = |k: &str| inputs.get(k).map(|v| tape.var(tensor::<T>(v)));
    let (x, h0, c0) = (var("x").ok_or("no x")?, var("h0"), var("c0"));
    let y = output_of(case, layer.forward_with_state(&x, h0.as_ref(), c0.as_ref()))?;
    assert_close(
        &format!("{n} ({dtype}) output"),
        &y.value(),
        &tensor(&case["output"]),
        tol,
    );
    (&y * &tape.constant(tensor::<T>(&case["cotangent"])))
        .sum()
        .backward();
    let grads = &case["grads"];
    for (k, v) in [("x", Some(&x)), ("h0", h0.as_ref()), ("c0", c0.as_ref())] {
        if let Some(v) = v {
            let g = v.grad().ok_or(format!("{n}: no gradient for {k}"))?;
            assert_close(
                &format!("{n} ({dtype}) d/d{k}"),
                &g,
                &tensor(&grads[k]),
                tol,
            );
        }
    }
    check_param_grads(case, &layer, tol);
    Ok(())
}

fn check_param_grads<T: Float, C: Cell>(case: &Value, layer: &Recurrent<T, C>, tol: f64) {
    let (n, dtype) = (name(case), std::any::type_name::<T>());
    layer.visit_params(&mut |k, p| {
        let g = p
            .grad()
            .clone()
            .unwrap_or_else(|| panic!("{n}: no gradient for {k}"));
        assert_close(
            &format!("{n} ({dtype}) d/d{k}"),
            &g,
            &tensor(&case["grads"][k]),
            tol,
        );
    });
}

/// The RNN cell of the case's `nonlinearity` (PyTorch's default `tanh`).
fn rnn_cell(case: &Value) -> Result<RnnCell, String> {
    match case["attrs"]["nonlinearity"].as_str().unwrap_or("tanh") {
        "tanh" => Ok(RnnCell::Tanh),
        "relu" => Ok(RnnCell::Relu),
        other => Err(format!("{}: unknown nonlinearity {other}", name(case))),
    }
}

/// [`check_tape`] with the cell the case's module and attrs name.
fn check_case<T: Float>(case: &Value, tol: f64) -> Result<(), String> {
    match case["module"].as_str() {
        Some("RNN") => check_tape::<T, _>(case, rnn_cell(case)?, tol),
        Some("LSTM") => check_tape::<T, _>(case, LstmCell, tol),
        Some("GRU") => check_tape::<T, _>(case, GruCell, tol),
        other => Err(format!("{}: unknown module {other:?}", name(case))),
    }
}

fn check_all<T: Float>(tol: f64) {
    let cases = recurrent_cases();
    let mut covered = BTreeSet::new();
    for case in &cases {
        if let Err(e) = check_case::<T>(case, tol) {
            panic!("{e}");
        }
        covered.insert(name(case).to_string());
    }
    assert_eq!(
        covered.len(),
        7,
        "seq.json (make_torch_seq_vectors.py) has 7 recurrent cases, every one tested: {covered:?}"
    );
}

#[test]
fn recurrent_layers_match_pytorch_f64() {
    check_all::<f64>(1e-9);
}

#[test]
fn recurrent_layers_match_pytorch_f32() {
    check_all::<f32>(1e-4);
}

#[test]
fn an_unknown_recurrent_case_fails_rather_than_being_skipped() {
    let mut case = recurrent_cases()
        .into_iter()
        .find(|c| name(c) == "lstm")
        .expect("seq.json has the lstm case");
    case["name"] = Value::from("lstm_peephole");
    let err = check_case::<f64>(&case, 1e-9).expect_err("an unknown case must fail");
    assert!(err.contains("lstm_peephole has no test"), "{err}");
    case["module"] = Value::from("RNNCell");
    assert!(check_case::<f64>(&case, 1e-9).is_err());
}

/// The static path (`forward_train`, then `backward` with `dy = cotangent`)
/// on the cases it can express: zero initial states, every step's output.
fn check_static<C: Cell>(case: &Value, cell: C) {
    let n = name(case);
    let mut layer = layer::<f64, C>(case, cell);
    let x = tensor::<f64>(&case["inputs"]["x"]);
    let y = layer.forward_train(x.view()).to_owned();
    assert_close(
        &format!("{n} static output"),
        &y,
        &tensor(&case["output"]),
        1e-9,
    );
    let dy = tensor::<f64>(&case["cotangent"]);
    let dx = layer.backward(x.view(), dy.view(), true).to_owned();
    assert_close(
        &format!("{n} static d/dx"),
        &dx,
        &tensor(&case["grads"]["x"]),
        1e-9,
    );
    check_param_grads(case, &layer, 1e-9);
}

#[test]
fn static_path_matches_pytorch_f64() {
    let mut covered = BTreeSet::new();
    for case in recurrent_cases() {
        let zero_state = case["inputs"].as_object().expect("inputs").len() == 1;
        if !zero_state || case["attrs"].get("output").is_some() {
            continue;
        }
        match case["module"].as_str().expect("module") {
            "RNN" => check_static(&case, rnn_cell(&case).unwrap()),
            "LSTM" => check_static(&case, LstmCell),
            _ => check_static(&case, GruCell),
        }
        covered.insert(name(&case).to_string());
    }
    let want = ["gru", "lstm", "lstm_2layer_bidirectional", "rnn_tanh"];
    assert_eq!(
        covered,
        want.map(String::from).into(),
        "zero-state sequence cases"
    );
}
