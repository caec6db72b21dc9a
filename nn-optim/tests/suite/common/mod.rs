//! A small model, a deterministic training loop and every optimizer, shared
//! by the state tests.

// Each test file uses only some of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use nn_core::Param;
use nn_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, RmsProp,
    RmsPropConfig, Sgd, SgdConfig,
};

/// A layer's weight (2×3, so a transposed buffer has another shape) and bias.
pub type Model = Vec<(&'static str, Param<f32>)>;

pub fn model() -> Model {
    let weight = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 3 + i[1]) as f32 * 0.25 - 0.6);
    let bias = ArrayD::from_shape_fn(IxDyn(&[3]), |i| 0.1 * i[0] as f32);
    vec![
        ("layer.weight", Param::new(weight)),
        ("layer.bias", Param::new(bias)),
    ]
}

/// Steps `steps` with gradients that depend on the values and the step, so a
/// wrongly restored state shows in the values.
pub fn train(opt: &mut dyn Optimizer<f32>, model: &Model, steps: std::ops::Range<usize>) {
    for t in steps {
        for (_, p) in model {
            let g = p.value().mapv(|w| w - 0.05 * t as f32 + 0.1 * w * w);
            p.zero_grad();
            p.accumulate_grad(g);
        }
        opt.step(model);
    }
}

/// Every parameter's bits, to compare runs exactly.
pub fn bits(model: &Model) -> Vec<Vec<u32>> {
    model
        .iter()
        .map(|(_, p)| p.value().iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// Makes a fresh optimizer.
pub type Make = fn() -> Box<dyn Optimizer<f32>>;

/// Each optimizer, configured to keep every buffer it can.
pub fn optimizers() -> Vec<(&'static str, Make)> {
    vec![
        ("Adam", || {
            Box::new(
                Adam::new(AdamConfig {
                    lr: 0.01,
                    amsgrad: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
        ("AdamW", || {
            Box::new(AdamW::new::<f32>(AdamWConfig::default()).unwrap())
        }),
        ("SGD", || {
            Box::new(
                Sgd::new(SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    nesterov: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
        ("RMSprop", || {
            Box::new(
                RmsProp::new(RmsPropConfig {
                    momentum: 0.5,
                    centered: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
        ("Adagrad", || {
            Box::new(
                Adagrad::new(AdagradConfig {
                    lr_decay: 0.01,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
    ]
}

/// A fresh directory for this test's files.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("nn_optim_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
