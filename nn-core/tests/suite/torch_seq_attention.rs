//! Every `MultiheadAttention` and `TransformerEncoderLayer` case of PyTorch's
//! reference vectors (`seq.json`) reproduced: the output and the gradient of
//! every input and every parameter, on the tape (f64 to 1e-9, f32 to 1e-4)
//! and, for the self-attention cases, on the static path (f64 to 1e-9).
//!
//! Expected numbers come from `../shared/testdata/torch/seq.json` (PyTorch
//! 2.15, float64, written by `make_torch_seq_vectors.py`): each gradient is
//! `d/d input of sum(output * cotangent)`. Tolerances go through
//! `assert_close`: `|ours - torch| <= tol * max(1, |torch|)`, relative for
//! values of magnitude at least 1 and absolute below.

use crate::common;

use std::collections::BTreeSet;

use common::{assert_close, load_json, tensor};
use ndarray::{ArrayD, IxDyn};
use nn_core::layers::{
    AttentionMask, FeedForwardActivation, Layer, MultiheadAttention, TransformerConfig,
    TransformerEncoderLayer,
};
use nn_core::rand::{rngs::StdRng, SeedableRng};
use nn_core::{Float, Param, Tape, Var};
use serde_json::Value;

/// The cases this file covers: every one of these modules in `seq.json`.
const MODULES: [&str; 2] = ["MultiheadAttention", "TransformerEncoderLayer"];

/// The case names the generator writes (whatever the seed).
const KNOWN: [&str; 7] = [
    "mha_self",
    "mha_cross",
    "mha_causal",
    "mha_key_padding",
    "mha_weights_averaged",
    "transformer_encoder_layer_postnorm",
    "transformer_encoder_layer_prenorm",
];

fn attention_cases() -> Vec<Value> {
    load_json("seq.json")["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| MODULES.contains(&c["module"].as_str().unwrap_or("")))
        .cloned()
        .collect()
}

fn attr(case: &Value, key: &str) -> usize {
    case["attrs"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: attrs.{key}", case["name"])) as usize
}

fn bool_tensor(v: &Value) -> ArrayD<bool> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap());
    ArrayD::from_shape_vec(IxDyn(&shape), data.collect()).expect("shape matches data")
}

/// The generator's `src_mask`/`attn_mask`: `torch.triu(ones(T, T), 1)`, true
/// above the diagonal.
fn causal_attn_mask(t: usize) -> AttentionMask {
    AttentionMask {
        attn_mask: Some(ArrayD::from_shape_fn(IxDyn(&[t, t]), |i| i[1] > i[0])),
        ..Default::default()
    }
}

/// The module a case describes, with the case's parameters set by name.
enum Module<T: Float> {
    Mha(Box<MultiheadAttention<T>>),
    Encoder(Box<TransformerEncoderLayer<T>>),
}

impl<T: Float> Module<T> {
    fn layer(&self) -> &dyn LayerParams<T> {
        match self {
            Module::Mha(m) => &**m,
            Module::Encoder(e) => &**e,
        }
    }
}

/// `visit_params` of either module, object-safe.
trait LayerParams<T: Float> {
    fn params(&self) -> Vec<(String, Param<T>)>;
}

impl<T: Float, L: Layer<T>> LayerParams<T> for L {
    fn params(&self) -> Vec<(String, Param<T>)> {
        let mut out = Vec::new();
        self.visit_params(&mut |name, p| out.push((name.to_string(), p.clone())));
        out
    }
}

/// Builds the case's module (seeded init, then every parameter overwritten
/// from `params`); `causal` makes the self-attention of the static path
/// causal. `None` for a case this file does not know.
fn module<T: Float>(case: &Value, causal: bool) -> Option<Module<T>> {
    let name = case["name"].as_str().unwrap();
    let rng = &mut StdRng::seed_from_u64(0);
    let m = match case["module"].as_str().unwrap() {
        "MultiheadAttention" if KNOWN.contains(&name) => {
            let mha =
                MultiheadAttention::new(attr(case, "embed_dim"), attr(case, "num_heads"), rng);
            Module::Mha(Box::new(mha.causal(causal)))
        }
        "TransformerEncoderLayer" if KNOWN.contains(&name) => {
            let activation = match case["attrs"]["activation"].as_str().unwrap() {
                "relu" => FeedForwardActivation::Relu,
                "gelu" => FeedForwardActivation::Gelu,
                other => panic!("{name}: activation {other}"),
            };
            let config = TransformerConfig::new(attr(case, "d_model"), attr(case, "nhead"))
                .dim_feedforward(attr(case, "dim_feedforward"))
                .dropout(0.0)
                .activation(activation)
                .norm_first(case["attrs"]["norm_first"].as_bool().unwrap())
                .layer_norm_eps(case["attrs"]["layer_norm_eps"].as_f64().unwrap())
                .causal(causal);
            Module::Encoder(Box::new(TransformerEncoderLayer::new(config, rng)))
        }
        _ => return None,
    };
    let params = case["params"].as_object().unwrap();
    let ours = m.layer().params();
    let names: Vec<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    let theirs: Vec<&str> = params.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        BTreeSet::from_iter(names.iter()),
        BTreeSet::from_iter(theirs.iter()),
        "{name}: parameter names"
    );
    for (n, p) in &ours {
        let value = tensor::<T>(&params[n.as_str()]);
        assert_eq!(p.shape(), value.shape(), "{name}: {n} shape");
        *p.value_mut() = value;
    }
    Some(m)
}

/// Records the case's forward pass; `None` for a case this file does not know.
fn build<T: Float>(case: &Value, m: &Module<T>, x: &[(String, Var<T>)]) -> Option<Var<T>> {
    let input = |k: &str| {
        x.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{}: input {k}", case["name"]))
    };
    Some(match (case["name"].as_str().unwrap(), m) {
        ("mha_self", Module::Mha(m)) => {
            let x = input("x");
            m.attend(&x, &x, &x, &AttentionMask::default())
        }
        ("mha_cross", Module::Mha(m)) => {
            let (q, kv) = (input("q"), input("kv"));
            m.attend(&q, &kv, &kv, &AttentionMask::default())
        }
        ("mha_causal", Module::Mha(m)) => {
            let x = input("x");
            m.attend(&x, &x, &x, &causal_attn_mask(x.shape()[1]))
        }
        ("mha_key_padding", Module::Mha(m)) => {
            let (q, kv) = (input("q"), input("kv"));
            let mask = AttentionMask {
                key_padding_mask: Some(bool_tensor(&case["bool_inputs"]["key_padding_mask"])),
                ..Default::default()
            };
            m.attend(&q, &kv, &kv, &mask)
        }
        ("mha_weights_averaged", Module::Mha(m)) => {
            let x = input("x");
            m.attend_with_weights(&x, &x, &x, &AttentionMask::default())
                .1
        }
        (n, Module::Encoder(e)) if n.starts_with("transformer_encoder_layer_") => {
            let x = input("x");
            e.forward_masked(&x, &causal_attn_mask(x.shape()[1]))
        }
        _ => return None,
    })
}

fn check_params<T: Float>(what: &str, m: &Module<T>, case: &Value, tol: f64) {
    for (n, p) in m.layer().params() {
        // Only out_proj under `mha_weights_averaged` is outside the output's
        // graph and gets no gradient (zero, as the generator writes it); any
        // other missing gradient fails.
        let unused = case["name"] == "mha_weights_averaged" && n.starts_with("out_proj.");
        let grad = match p.grad().clone() {
            Some(g) => g,
            None if unused => ArrayD::zeros(IxDyn(&p.shape())),
            None => panic!("{what}: {n} got no gradient"),
        };
        let expected = tensor::<f64>(&case["grads"][n.as_str()]);
        assert_close(&format!("{what} d/d{n}"), &grad, &expected, tol);
    }
}

/// Checks one case on the tape.
///
/// # Panics
/// On a mismatch, and for a case this file does not recognise.
fn check_tape<T: Float>(case: &Value, tol: f64) {
    let name = case["name"].as_str().unwrap();
    let what = format!("{name} ({}, tape)", std::any::type_name::<T>());
    let Some(m) = module::<T>(case, false) else {
        panic!("unrecognised attention case {name}: add it to module() and build()");
    };
    let tape = Tape::<T>::new();
    let inputs: Vec<(String, Var<T>)> = case["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), tape.var(tensor::<T>(v))))
        .collect();
    let Some(y) = build(case, &m, &inputs) else {
        panic!("unrecognised attention case {name}: add it to build()");
    };
    assert_close(
        &format!("{what} output"),
        &y.value(),
        &tensor(&case["output"]),
        tol,
    );
    y.backward_with(tensor::<T>(&case["cotangent"]));
    for (k, v) in &inputs {
        let grad = v
            .grad()
            .unwrap_or_else(|| panic!("{what}: no gradient for {k}"));
        assert_close(
            &format!("{what} d/d{k}"),
            &grad,
            &tensor(&case["grads"][k]),
            tol,
        );
    }
    check_params(&what, &m, case, tol);
}

#[test]
fn attention_layers_match_pytorch_on_the_tape_f64() {
    for case in attention_cases() {
        check_tape::<f64>(&case, 1e-9);
    }
}

#[test]
fn attention_layers_match_pytorch_on_the_tape_f32() {
    for case in attention_cases() {
        check_tape::<f32>(&case, 1e-4);
    }
}

#[test]
fn every_attention_case_in_the_file_is_checked() {
    let cases = attention_cases();
    let names: BTreeSet<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for known in KNOWN {
        assert!(names.contains(known), "seq.json lacks the case {known}");
    }
    for case in &cases {
        // Recognised by both steps (check_tape panics otherwise).
        let m = module::<f64>(case, false).expect("recognised");
        let tape = Tape::new();
        let inputs: Vec<(String, Var<f64>)> = case["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), tape.var(tensor::<f64>(v))))
            .collect();
        assert!(build(case, &m, &inputs).is_some(), "{}", case["name"]);
    }
    assert_eq!(names.len(), cases.len(), "case names are unique");
}

#[test]
#[should_panic(expected = "unrecognised attention case mha_new_variant")]
fn an_unrecognised_attention_case_fails_instead_of_being_skipped() {
    let mut case = attention_cases()
        .into_iter()
        .find(|c| c["name"] == "mha_self")
        .expect("mha_self");
    case["name"] = Value::from("mha_new_variant");
    check_tape::<f64>(&case, 1e-9);
}

/// The static path (`forward_train`, then `backward` with the cotangent) of
/// a self-attention case: `mha_self`, `mha_causal` (built causal) and both
/// transformer cases (built causal, as their `src_mask`).
fn check_static(name: &str, causal: bool) {
    let case = attention_cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("seq.json lacks {name}"));
    let what = format!("{name} (f64, static)");
    let mut m = module::<f64>(&case, causal).expect("recognised");
    let layer: &mut dyn Layer<f64> = match &mut m {
        Module::Mha(l) => &mut **l,
        Module::Encoder(l) => &mut **l,
    };
    let x = tensor::<f64>(&case["inputs"]["x"]);
    let y = layer.forward_train(x.view()).to_owned();
    assert_close(
        &format!("{what} output"),
        &y,
        &tensor(&case["output"]),
        1e-9,
    );
    let cot = tensor::<f64>(&case["cotangent"]);
    let dx = layer.backward(x.view(), cot.view(), true).to_owned();
    assert_close(
        &format!("{what} d/dx"),
        &dx,
        &tensor(&case["grads"]["x"]),
        1e-9,
    );
    check_params(&what, &m, &case, 1e-9);
}

#[test]
fn self_attention_matches_pytorch_on_the_static_path() {
    check_static("mha_self", false);
    check_static("mha_causal", true);
}

#[test]
fn transformer_layers_match_pytorch_on_the_static_path() {
    check_static("transformer_encoder_layer_postnorm", true);
    check_static("transformer_encoder_layer_prenorm", true);
}
