//! Invalid hyperparameters are refused at construction, each with a clear
//! error, as PyTorch raises `ValueError`.

use nn_optim::*;

fn message<T>(r: Result<T, OptimError>) -> String {
    match r {
        Ok(_) => panic!("accepted an invalid configuration"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sgd_rejects_bad_settings() {
    let bad = |c: SgdConfig| message(Sgd::<f32>::new(c));
    assert_eq!(
        bad(SgdConfig {
            lr: -0.1,
            ..Default::default()
        }),
        "SGD: invalid lr: -0.1 (must be >= 0)"
    );
    assert_eq!(
        bad(SgdConfig {
            momentum: -0.9,
            ..Default::default()
        }),
        "SGD: invalid momentum: -0.9 (must be >= 0)"
    );
    assert_eq!(
        bad(SgdConfig {
            dampening: -1.0,
            ..Default::default()
        }),
        "SGD: invalid dampening: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(SgdConfig {
            weight_decay: -1e-4,
            ..Default::default()
        }),
        "SGD: invalid weight_decay: -0.0001 (must be >= 0)"
    );
    let nesterov =
        "SGD: invalid nesterov: true (Nesterov momentum requires momentum > 0 and zero dampening)";
    assert_eq!(
        bad(SgdConfig {
            nesterov: true,
            ..Default::default()
        }),
        nesterov
    );
    assert_eq!(
        bad(SgdConfig {
            nesterov: true,
            momentum: 0.9,
            dampening: 0.1,
            ..Default::default()
        }),
        nesterov
    );
}

#[test]
fn adam_and_adamw_reject_bad_settings() {
    let bad = |c: AdamConfig| message(Adam::<f32>::new(c));
    assert_eq!(
        bad(AdamConfig {
            lr: -1.0,
            ..Default::default()
        }),
        "Adam: invalid lr: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(AdamConfig {
            eps: -1e-8,
            ..Default::default()
        }),
        "Adam: invalid eps: -1e-8 (must be >= 0)"
    );
    assert_eq!(
        bad(AdamConfig {
            betas: (1.0, 0.999),
            ..Default::default()
        }),
        "Adam: invalid betas.0: 1.0 (must be in [0, 1))"
    );
    assert_eq!(
        bad(AdamConfig {
            betas: (0.9, -0.1),
            ..Default::default()
        }),
        "Adam: invalid betas.1: -0.1 (must be in [0, 1))"
    );
    assert_eq!(
        bad(AdamConfig {
            weight_decay: -0.1,
            ..Default::default()
        }),
        "Adam: invalid weight_decay: -0.1 (must be >= 0)"
    );
    assert_eq!(
        message(AdamW::new::<f32>(AdamWConfig {
            betas: (0.9, 1.5),
            ..Default::default()
        })),
        "AdamW: invalid betas.1: 1.5 (must be in [0, 1))"
    );
}

#[test]
fn rmsprop_rejects_bad_settings() {
    let bad = |c: RmsPropConfig| message(RmsProp::<f32>::new(c));
    assert_eq!(
        bad(RmsPropConfig {
            lr: -1.0,
            ..Default::default()
        }),
        "RMSprop: invalid lr: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(RmsPropConfig {
            eps: -1.0,
            ..Default::default()
        }),
        "RMSprop: invalid eps: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(RmsPropConfig {
            momentum: -1.0,
            ..Default::default()
        }),
        "RMSprop: invalid momentum: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(RmsPropConfig {
            weight_decay: -1.0,
            ..Default::default()
        }),
        "RMSprop: invalid weight_decay: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(RmsPropConfig {
            alpha: -0.5,
            ..Default::default()
        }),
        "RMSprop: invalid alpha: -0.5 (must be >= 0)"
    );
}

#[test]
fn adagrad_rejects_bad_settings() {
    let bad = |c: AdagradConfig| message(Adagrad::<f32>::new(c));
    assert_eq!(
        bad(AdagradConfig {
            lr: -1.0,
            ..Default::default()
        }),
        "Adagrad: invalid lr: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(AdagradConfig {
            lr_decay: -1.0,
            ..Default::default()
        }),
        "Adagrad: invalid lr_decay: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(AdagradConfig {
            weight_decay: -1.0,
            ..Default::default()
        }),
        "Adagrad: invalid weight_decay: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(AdagradConfig {
            initial_accumulator_value: -1.0,
            ..Default::default()
        }),
        "Adagrad: invalid initial_accumulator_value: -1.0 (must be >= 0)"
    );
    assert_eq!(
        bad(AdagradConfig {
            eps: -1.0,
            ..Default::default()
        }),
        "Adagrad: invalid eps: -1.0 (must be >= 0)"
    );
}

#[test]
fn schedules_reject_bad_settings() {
    assert_eq!(
        message(StepLr::new(0, 0.5)),
        "StepLR: invalid step_size: 0 (must be > 0)"
    );
    assert_eq!(
        message(CosineAnnealing::new(0, 0.0)),
        "CosineAnnealingLR: invalid t_max: 0 (must be > 0)"
    );
    assert_eq!(
        message(LinearLr::new(0.0, 1.0, 10)),
        "LinearLR: invalid start_factor: 0.0 (must be in (0, 1])"
    );
    assert_eq!(
        message(LinearLr::new(0.5, 1.5, 10)),
        "LinearLR: invalid end_factor: 1.5 (must be in [0, 1])"
    );
    assert_eq!(
        message(Warmup::new(5, 0.0, ExponentialLr { gamma: 0.9 })),
        "Warmup: invalid start: 0.0 (must be in (0, 1])"
    );
    assert_eq!(
        message(ReduceLrOnPlateau::new(PlateauMode::Min, 1.0, 3)),
        "ReduceLROnPlateau: invalid factor: 1.0 (must be in [0, 1))"
    );
    // Either would give a learning rate no optimizer accepts.
    assert_eq!(
        message(StepLr::new(10, -0.5)),
        "StepLR: invalid gamma: -0.5 (must be finite and >= 0)"
    );
    assert_eq!(
        message(CosineAnnealing::new(10, f64::NAN)),
        "CosineAnnealingLR: invalid eta_min: NaN (must be finite and >= 0)"
    );
}

#[test]
fn a_nan_or_infinite_lr_is_refused_by_every_constructor() {
    for lr in [f64::NAN, f64::INFINITY] {
        let shown = format!("{lr:?} (must be finite)");
        let sgd = message(Sgd::<f32>::new(SgdConfig {
            lr,
            ..Default::default()
        }));
        assert_eq!(sgd, format!("SGD: invalid lr: {shown}"));
        let adam = message(Adam::<f32>::new(AdamConfig {
            lr,
            ..Default::default()
        }));
        assert_eq!(adam, format!("Adam: invalid lr: {shown}"));
        let adamw = message(AdamW::new::<f32>(AdamWConfig {
            lr,
            ..Default::default()
        }));
        assert_eq!(adamw, format!("AdamW: invalid lr: {shown}"));
        let rmsprop = message(RmsProp::<f32>::new(RmsPropConfig {
            lr,
            ..Default::default()
        }));
        assert_eq!(rmsprop, format!("RMSprop: invalid lr: {shown}"));
        let adagrad = message(Adagrad::<f32>::new(AdagradConfig {
            lr,
            ..Default::default()
        }));
        assert_eq!(adagrad, format!("Adagrad: invalid lr: {shown}"));
    }
}

#[test]
fn defaults_are_pytorchs() {
    let sgd = SgdConfig::default();
    assert_eq!(
        (
            sgd.lr,
            sgd.momentum,
            sgd.dampening,
            sgd.nesterov,
            sgd.weight_decay
        ),
        (1e-3, 0.0, 0.0, false, 0.0)
    );
    let adam = AdamConfig::default();
    assert_eq!(
        (
            adam.lr,
            adam.betas,
            adam.eps,
            adam.weight_decay,
            adam.amsgrad
        ),
        (1e-3, (0.9, 0.999), 1e-8, 0.0, false)
    );
    // PyTorch's AdamW default, kept by struct update from `Default`.
    assert_eq!(AdamW::default_config().weight_decay, 1e-2);
    let w = AdamWConfig {
        lr: 3e-4,
        ..Default::default()
    };
    assert_eq!(
        (w.lr, w.weight_decay, w.betas, w.eps),
        (3e-4, 1e-2, (0.9, 0.999), 1e-8)
    );
    let rms = RmsPropConfig::default();
    assert_eq!(
        (rms.lr, rms.alpha, rms.eps, rms.momentum, rms.centered),
        (1e-2, 0.99, 1e-8, 0.0, false)
    );
    let ada = AdagradConfig::default();
    assert_eq!(
        (ada.lr, ada.lr_decay, ada.initial_accumulator_value, ada.eps),
        (1e-2, 0.0, 0.0, 1e-10)
    );
}
