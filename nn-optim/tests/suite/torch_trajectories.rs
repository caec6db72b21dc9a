//! Every trajectory of `../shared/testdata/torch/optim.json` (PyTorch 2.15,
//! float64) reproduced step by step: f64 to 1e-12 relative, f32 to 1e-6.
//!
//! The file names only some hyperparameters; the rest were identified by
//! replaying PyTorch's own optimizers (`reference/identify_optim_settings.py`,
//! whose docstring lists the settings used below).

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use nn_core::{Float, Param};
use nn_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, RmsProp,
    RmsPropConfig, Sgd, SgdConfig,
};
use serde_json::Value;

fn load() -> Value {
    let dir = std::env::var("NN_TESTDATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/torch")
        });
    let path = dir.join("optim.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "PyTorch reference vectors {} are missing ({e}); set NN_TESTDATA_DIR",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn tensor<T: Float>(v: &Value) -> ArrayD<T> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<T> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| T::lit(d.as_f64().unwrap()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn optimizer<T: Float>(name: &str) -> Box<dyn Optimizer<T>> {
    let sgd = |c: SgdConfig| -> Box<dyn Optimizer<T>> { Box::new(Sgd::new(c).unwrap()) };
    let adam = |c: AdamConfig| -> Box<dyn Optimizer<T>> { Box::new(Adam::new(c).unwrap()) };
    let rms = |c: RmsPropConfig| -> Box<dyn Optimizer<T>> { Box::new(RmsProp::new(c).unwrap()) };
    match name {
        "sgd_lr0.1" => sgd(SgdConfig {
            lr: 0.1,
            ..Default::default()
        }),
        "sgd_momentum0.9" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        }),
        "sgd_momentum0.9_dampening0.1" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.1,
            ..Default::default()
        }),
        "sgd_nesterov" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..Default::default()
        }),
        "sgd_weight_decay0.01" => sgd(SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            ..Default::default()
        }),
        "adam_default" => adam(AdamConfig::default()),
        "adam_lr0.1_betas0.8_0.99_eps1e-6" => adam(AdamConfig {
            lr: 0.1,
            betas: (0.8, 0.99),
            eps: 1e-6,
            ..Default::default()
        }),
        "adam_weight_decay0.1" => adam(AdamConfig {
            lr: 0.01,
            weight_decay: 0.1,
            ..Default::default()
        }),
        "adam_amsgrad" => adam(AdamConfig {
            lr: 0.01,
            amsgrad: true,
            ..Default::default()
        }),
        "adamw_wd0.01" => Box::new(
            AdamW::new::<T>(AdamWConfig {
                lr: 0.01,
                weight_decay: 0.01,
                ..Default::default()
            })
            .unwrap(),
        ),
        "rmsprop_alpha0.99" => rms(RmsPropConfig {
            lr: 0.01,
            alpha: 0.99,
            ..Default::default()
        }),
        "rmsprop_momentum_centered" => rms(RmsPropConfig {
            lr: 0.01,
            momentum: 0.9,
            centered: true,
            ..Default::default()
        }),
        "adagrad" => Box::new(
            Adagrad::new(AdagradConfig {
                lr: 0.1,
                ..Default::default()
            })
            .unwrap(),
        ),
        other => panic!("optim.json case {other} has no settings here: add it"),
    }
}

fn replay<T: Float>(tol: f64) {
    let data = load();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let p = Param::new(tensor::<T>(&case["init"]));
        let params = vec![("p", p.clone())];
        let mut opt = optimizer::<T>(name);
        for (i, (g, expected)) in case["grads"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["params_after_each_step"].as_array().unwrap())
            .enumerate()
        {
            *p.grad_mut() = Some(tensor::<T>(g));
            opt.step(&params);
            for (a, e) in p.value().iter().zip(tensor::<f64>(expected).iter()) {
                let err = (a.as_f64() - e).abs();
                assert!(
                    err <= tol * e.abs().max(1.0),
                    "{name} step {}: {a} vs PyTorch {e} (error {err:e})",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn trajectories_match_pytorch_f64() {
    replay::<f64>(1e-12);
}

#[test]
fn trajectories_match_pytorch_f32() {
    replay::<f32>(1e-6);
}
