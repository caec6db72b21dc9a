//! Loading an optimizer's state checks all of it before changing anything:
//! a state this optimizer, as configured, could not have written for this
//! model is an error naming the parameter and the problem, and the optimizer
//! is left exactly as it was.

use crate::common;

use common::{bits, model, optimizers, scratch, train, Model};
use ndarray::{ArrayD, IxDyn};
use nn_optim::{
    Adam, AdamConfig, OptimError, Optimizer, OptimizerState, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};

fn adam() -> Adam<f32> {
    Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    })
    .unwrap()
}

/// An Adam trained a few steps on `model`, and its state.
fn trained_adam(model: &Model) -> (Adam<f32>, OptimizerState<f32>) {
    let mut opt = adam();
    train(&mut opt, model, 0..3);
    let state = opt.state();
    (opt, state)
}

/// Loads `state` (checked against `model` when given), expecting a refusal
/// that leaves the optimizer as it was; returns the message.
fn refused(
    opt: &mut dyn Optimizer<f32>,
    state: OptimizerState<f32>,
    model: Option<&Model>,
) -> String {
    let (before, lr) = (opt.state(), opt.learning_rate());
    let result = match model {
        Some(m) => opt.load_state_for(state, m),
        None => opt.load_state(state),
    };
    let err = result.expect_err("the state was accepted");
    assert_eq!(opt.state(), before, "a refused load changed the state");
    assert_eq!(opt.learning_rate().to_bits(), lr.to_bits());
    err.to_string()
}

#[test]
fn a_negative_lr_in_a_saved_file_is_refused_by_load_state() {
    let m = model();
    let (mut opt, mut state) = trained_adam(&m);
    state.lr = -5.0;
    let path = scratch("negative_lr").join("optim.safetensors");
    state.save(&path).unwrap();
    let loaded = OptimizerState::load(&path).unwrap();
    assert_eq!(
        refused(&mut opt, loaded, None),
        "optimizer state: lr is -5.0, but Adam's learning rate must be finite and >= 0"
    );
}

#[test]
fn a_nan_or_infinite_lr_in_a_saved_file_is_refused_by_the_reader() {
    let m = model();
    let (_, state) = trained_adam(&m);
    let dir = scratch("nonfinite_lr");
    for lr in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let path = dir.join("optim.safetensors");
        OptimizerState {
            lr,
            ..state.clone()
        }
        .save(&path)
        .unwrap();
        let err = OptimizerState::<f32>::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("optim.safetensors")
                && err.contains("`lr` metadata is not a finite number"),
            "{err}"
        );
    }
}

#[test]
fn a_nan_or_infinite_lr_is_refused_by_load_state() {
    let m = model();
    let (mut opt, state) = trained_adam(&m);
    for (lr, shown) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
        let state = OptimizerState {
            lr,
            ..state.clone()
        };
        assert_eq!(
            refused(&mut opt, state, Some(&m)),
            format!(
                "optimizer state: lr is {shown}, but Adam's learning rate must be finite and >= 0"
            )
        );
    }
}

#[test]
fn a_moment_buffer_of_the_wrong_size_is_refused_naming_the_parameter() {
    let m = model();
    let (mut opt, mut state) = trained_adam(&m);
    let bias = state.params.get_mut("layer.bias").unwrap();
    for b in bias.buffers.values_mut() {
        *b = ArrayD::zeros(IxDyn(&[5]));
    }
    assert_eq!(
        refused(&mut opt, state.clone(), Some(&m)),
        "optimizer state for `layer.bias`: buffer `exp_avg` has shape [5] but the parameter has shape [3]"
    );
    // Without the model only a disagreement between buffers can be seen.
    let bias = state.params.get_mut("layer.bias").unwrap();
    bias.buffers
        .insert("exp_avg".into(), ArrayD::zeros(IxDyn(&[3])));
    assert_eq!(
        refused(&mut opt, state, None),
        "optimizer state for `layer.bias`: buffers disagree in shape: `exp_avg` is [3] but `exp_avg_sq` is [5]"
    );
}

#[test]
fn a_transposed_moment_buffer_is_refused_naming_the_parameter_and_both_shapes() {
    let m = model();
    let (mut opt, mut state) = trained_adam(&m);
    let weight = state.params.get_mut("layer.weight").unwrap();
    for b in weight.buffers.values_mut() {
        *b = b.t().as_standard_layout().into_owned();
    }
    assert_eq!(
        refused(&mut opt, state, Some(&m)),
        "optimizer state for `layer.weight`: buffer `exp_avg` has shape [3, 2] but the parameter has shape [2, 3]"
    );
}

#[test]
fn state_for_a_parameter_the_model_does_not_have_is_refused() {
    let m = model();
    let (mut opt, mut state) = trained_adam(&m);
    let bias = state.params.remove("layer.bias").unwrap();
    state.params.insert("decoder.bias".into(), bias);
    assert_eq!(
        refused(&mut opt, state, Some(&m)),
        "optimizer state for `decoder.bias`: the model has no parameter of that name"
    );
}

#[test]
fn adam_state_into_sgd_is_refused_naming_both() {
    let m = model();
    let (_, state) = trained_adam(&m);
    let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
    train(&mut sgd, &m, 0..2);
    assert_eq!(
        refused(&mut sgd, state.clone(), None),
        "cannot load Adam state into SGD"
    );
    assert_eq!(
        refused(&mut sgd, state, Some(&m)),
        "cannot load Adam state into SGD"
    );
}

#[test]
fn buffers_the_optimizer_does_not_keep_are_refused() {
    let m = model();
    let mut amsgrad = Adam::new(AdamConfig {
        amsgrad: true,
        ..Default::default()
    })
    .unwrap();
    train(&mut amsgrad, &m, 0..2);
    let (mut opt, _) = trained_adam(&m);
    assert_eq!(
        refused(&mut opt, amsgrad.state(), Some(&m)),
        "optimizer state for `layer.bias`: unexpected buffer `max_exp_avg_sq`: Adam as configured keeps `exp_avg`, `exp_avg_sq`"
    );
    let mut momentum = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..Default::default()
    })
    .unwrap();
    train(&mut momentum, &m, 0..2);
    let mut plain = Sgd::new(SgdConfig::default()).unwrap();
    assert_eq!(
        refused(&mut plain, momentum.state(), Some(&m)),
        "optimizer state for `layer.bias`: unexpected buffer `momentum_buffer`: SGD as configured keeps no buffers"
    );
}

#[test]
fn buffers_the_optimizer_needs_must_be_there() {
    let m = model();
    let (mut opt, mut state) = trained_adam(&m);
    let bias = state.params.get_mut("layer.bias").unwrap();
    bias.buffers.remove("exp_avg_sq");
    assert_eq!(
        refused(&mut opt, state, Some(&m)),
        "optimizer state for `layer.bias`: no `exp_avg_sq` buffer after 3 steps: Adam as configured keeps `exp_avg`, `exp_avg_sq`"
    );
    let mut centered = RmsProp::<f32>::new(RmsPropConfig {
        centered: true,
        ..Default::default()
    })
    .unwrap();
    let mut plain = RmsProp::new(RmsPropConfig::default()).unwrap();
    train(&mut plain, &m, 0..2);
    assert!(refused(&mut centered, plain.state(), Some(&m)).contains("no `grad_avg` buffer"));
}

#[test]
fn sgd_momentum_may_start_afresh_as_in_pytorch() {
    // PyTorch starts a missing momentum buffer from the next gradient.
    let m = model();
    let mut plain = Sgd::new(SgdConfig::default()).unwrap();
    train(&mut plain, &m, 0..2);
    let mut momentum = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..Default::default()
    })
    .unwrap();
    momentum.load_state_for(plain.state(), &m).unwrap();
}

#[test]
fn implausible_step_counts_are_refused() {
    let m = model();
    let (mut opt, state) = trained_adam(&m);
    let mut zero = state.clone();
    zero.params.get_mut("layer.bias").unwrap().step = 0;
    assert_eq!(
        refused(&mut opt, zero, Some(&m)),
        "optimizer state for `layer.bias`: has buffers but a step count of 0"
    );
    let mut huge = state;
    huge.params.get_mut("layer.weight").unwrap().step = u64::MAX;
    assert_eq!(
        refused(&mut opt, huge, Some(&m)),
        "optimizer state for `layer.weight`: step count 18446744073709551615 is implausible (at most 2147483646)"
    );
}

#[test]
fn non_finite_or_negative_squares_are_refused() {
    let m = model();
    let (mut opt, state) = trained_adam(&m);
    let mut nan = state.clone();
    nan.params
        .get_mut("layer.weight")
        .unwrap()
        .buffers
        .get_mut("exp_avg")
        .unwrap()[[1, 2]] = f32::NAN;
    assert_eq!(
        refused(&mut opt, nan, Some(&m)),
        "optimizer state for `layer.weight`: buffer `exp_avg` holds NaN (element 5)"
    );
    let mut negative = state;
    negative
        .params
        .get_mut("layer.bias")
        .unwrap()
        .buffers
        .get_mut("exp_avg_sq")
        .unwrap()[[0]] = -1.0;
    assert_eq!(
        refused(&mut opt, negative, Some(&m)),
        "optimizer state for `layer.bias`: buffer `exp_avg_sq` holds -1.0 (element 0), but it accumulates squares and is never negative"
    );
}

#[test]
fn state_errors_name_the_parameter_in_the_variant() {
    let m = model();
    let (mut opt, mut state) = trained_adam(&m);
    state.params.get_mut("layer.bias").unwrap().step = 0;
    match opt.load_state(state) {
        Err(OptimError::State { parameter, .. }) => {
            assert_eq!(parameter.as_deref(), Some("layer.bias"))
        }
        other => panic!("expected OptimError::State, got {other:?}"),
    }
}

#[test]
#[should_panic(expected = "SGD: set_learning_rate(NaN): a learning rate must be finite and >= 0")]
fn set_learning_rate_nan_panics_naming_it() {
    Sgd::<f32>::new(SgdConfig::default())
        .unwrap()
        .set_learning_rate(f64::NAN);
}

#[test]
#[should_panic(expected = "Adam: set_learning_rate(inf)")]
fn set_learning_rate_infinity_panics_naming_it() {
    adam().set_learning_rate(f64::INFINITY);
}

#[test]
#[should_panic(expected = "RMSprop: set_learning_rate(-5.0)")]
fn set_learning_rate_negative_panics_naming_it() {
    RmsProp::<f32>::new(RmsPropConfig::default())
        .unwrap()
        .set_learning_rate(-5.0);
}

#[test]
fn a_valid_round_trip_resumes_training_bit_for_bit() {
    let dir = scratch("round_trip");
    for (name, make) in optimizers() {
        let straight = model();
        let mut opt = make();
        train(opt.as_mut(), &straight, 0..8);

        let resumed = model();
        let mut first = make();
        train(first.as_mut(), &resumed, 0..4);
        let path = dir.join(format!("{name}.safetensors"));
        first.state().save(&path).unwrap();
        let mut second = make();
        second
            .load_state_for(OptimizerState::load(&path).unwrap(), &resumed)
            .unwrap();
        assert_eq!(second.state(), first.state(), "{name}: state differs");
        train(second.as_mut(), &resumed, 4..8);

        assert_eq!(
            bits(&resumed),
            bits(&straight),
            "{name}: resumed run differs"
        );
    }
}
