//! Optimizers on real models: resuming from a checkpoint continues bit for bit,
//! and one optimizer trains a macro model (static path) and the same model
//! written by hand on the tape to identical parameters.

use crate::common;

use common::scratch;
use nn::ndarray::{Array2, ArrayD};
use nn::optim::{
    Adam, AdamConfig, Optimizer, OptimizerState, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use nn::prelude::*;

sequential! {
    /// A small classifier.
    pub struct Net: input(6) {
        hidden: Dense(10, activation = relu),
        out: Dense(4),
    }
}

/// Batch `i` of a fixed synthetic dataset (inputs and labels from a formula).
fn batch(i: usize) -> (Array2<f32>, Vec<usize>) {
    let x = Array2::from_shape_fn((8, 6), |(r, c)| {
        (((i * 8 + r) * 7 + c * 3) % 11) as f32 / 5.0 - 1.0
    });
    let y = (0..8).map(|r| (i * 8 + r) % 4).collect();
    (x, y)
}

fn train_steps(model: &mut Net, opt: &mut dyn Optimizer<f32>, steps: std::ops::Range<usize>) {
    for i in steps {
        let (x, y) = batch(i);
        model.forward_train(x.into_dyn().view());
        model.backward_loss(Loss::CrossEntropy, &Target::Labels(&y));
        opt.step(&*model);
        opt.zero_grad(&*model);
    }
}

fn bits(m: &Net) -> Vec<Vec<u32>> {
    m.named_params()
        .iter()
        .map(|(_, p)| p.value().iter().map(|v| v.to_bits()).collect())
        .collect()
}

fn resume_is_exact(make_opt: impl Fn() -> Box<dyn Optimizer<f32>>, tag: &str) {
    let mut straight = Net::with_seed(11);
    let mut opt = make_opt();
    train_steps(&mut straight, opt.as_mut(), 0..10);

    let dir = scratch(&format!("resume_{tag}"));
    let mut first = Net::with_seed(11);
    let mut opt1 = make_opt();
    train_steps(&mut first, opt1.as_mut(), 0..5);
    first.save(dir.join("model.safetensors")).unwrap();
    opt1.state().save(dir.join("optim.safetensors")).unwrap();
    let mut resumed = Net::with_seed(99);
    resumed.load(dir.join("model.safetensors")).unwrap();
    let mut opt2 = make_opt();
    opt2.load_state(OptimizerState::load(dir.join("optim.safetensors")).unwrap())
        .unwrap();
    train_steps(&mut resumed, opt2.as_mut(), 5..10);

    assert_eq!(
        bits(&resumed),
        bits(&straight),
        "{tag}: resumed run differs"
    );
}

#[test]
fn resuming_from_a_checkpoint_is_bit_exact() {
    resume_is_exact(
        || {
            Box::new(
                Adam::new(AdamConfig {
                    lr: 0.01,
                    amsgrad: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        },
        "adam",
    );
    resume_is_exact(
        || {
            Box::new(
                Sgd::new(SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    nesterov: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        },
        "sgd",
    );
    resume_is_exact(
        || {
            Box::new(
                RmsProp::new(RmsPropConfig {
                    lr: 0.01,
                    momentum: 0.5,
                    centered: true,
                    ..Default::default()
                })
                .unwrap(),
            )
        },
        "rmsprop",
    );
}

#[test]
fn loading_another_optimizers_state_is_refused() {
    let adam = Adam::<f32>::new(AdamConfig::default()).unwrap();
    let mut sgd = Sgd::<f32>::new(SgdConfig::default()).unwrap();
    let err = sgd.load_state(adam.state()).unwrap_err();
    assert_eq!(err.to_string(), "cannot load Adam state into SGD");
}

sequential! {
    #[dtype(f64)]
    pub struct Mlp64: input(6) {
        hidden: Dense(10, activation = tanh),
        out: Dense(4),
    }
}

#[test]
fn one_optimizer_trains_a_macro_model_and_a_tape_model_identically() {
    let mut declared = Mlp64::with_seed(5);
    // The same network by hand: parameters copied, forward written on the tape.
    let copy = |p: &Param<f64>| Param::new(p.value().clone());
    let by_hand = vec![
        ("w1", copy(&declared.hidden.weight)),
        ("b1", copy(declared.hidden.bias.as_ref().unwrap())),
        ("w2", copy(&declared.out.weight)),
        ("b2", copy(declared.out.bias.as_ref().unwrap())),
    ];
    let config = AdamConfig {
        lr: 0.05,
        ..Default::default()
    };
    let (mut opt_a, mut opt_b) = (
        Adam::<f64>::new(config).unwrap(),
        Adam::<f64>::new(config).unwrap(),
    );
    for i in 0..20 {
        let (x, y) = batch(i);
        let x: ArrayD<f64> = x.mapv(f64::from).into_dyn();

        declared.forward_train(x.view());
        declared.backward_loss(Loss::CrossEntropy, &Target::Labels(&y));
        opt_a.step(&declared);
        opt_a.zero_grad(&declared);

        let tape = Tape::new();
        let p = |k: usize| tape.param(&by_hand[k].1);
        let h = tape.constant(x.clone()).linear(&p(0), Some(&p(1))).tanh();
        let loss = cross_entropy(&h.linear(&p(2), Some(&p(3))), &y, Reduction::Mean);
        loss.backward();
        opt_b.step(&by_hand);
        opt_b.zero_grad(&by_hand);
    }
    let ours: Vec<ArrayD<f64>> = declared
        .named_params()
        .iter()
        .map(|(_, p)| p.value().clone())
        .collect();
    for ((name, p), a) in by_hand.iter().zip(&ours) {
        assert_eq!(
            *p.value(),
            *a,
            "{name} differs between the static and the tape path"
        );
    }
    // And training did something.
    assert_ne!(
        *by_hand[0].1.value(),
        Mlp64::with_seed(5).hidden.weight.value().clone()
    );
}
