//! Learning-rate schedules over 100 steps equal PyTorch's schedulers, from
//! `reference/schedules.json` (written by `reference/make_schedules.py` with
//! PyTorch 2.15, base lr 0.1), to 1e-12 relative.

use nn_core::Param;
use nn_optim::*;
use serde_json::Value;

fn reference() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/schedules.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn expected(name: &str) -> Vec<f64> {
    reference()["cases"][name]
        .as_array()
        .unwrap_or_else(|| panic!("case {name}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn close(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}");
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1e-300),
            "{name} at step {t}: {g} vs PyTorch {w}"
        );
    }
}

/// The rates a driven optimizer sees over 100 steps.
fn drive<S: Schedule>(schedule: S) -> Vec<f64> {
    let mut opt = Sgd::<f64>::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let mut sched = LrScheduler::new(schedule, &mut opt);
    (0..100)
        .map(|_| {
            let lr = Optimizer::<f64>::learning_rate(&opt);
            sched.step(&mut opt);
            lr
        })
        .collect()
}

#[test]
fn closed_form_schedules_match_pytorch() {
    close(
        "step_lr",
        &drive(StepLr::new(10, 0.5).unwrap()),
        &expected("step_lr"),
    );
    close(
        "multi_step_lr",
        &drive(MultiStepLr::new(vec![15, 40, 70], 0.3)),
        &expected("multi_step_lr"),
    );
    close(
        "exponential_lr",
        &drive(ExponentialLr { gamma: 0.97 }),
        &expected("exponential_lr"),
    );
    close(
        "cosine_annealing",
        &drive(CosineAnnealing::new(100, 0.001).unwrap()),
        &expected("cosine_annealing"),
    );
    close(
        "cosine_annealing_restarts_past_t_max",
        &drive(CosineAnnealing::new(30, 0.0).unwrap()),
        &expected("cosine_annealing_restarts_past_t_max"),
    );
    close(
        "linear_lr",
        &drive(LinearLr::new(0.1, 1.0, 20).unwrap()),
        &expected("linear_lr"),
    );
}

#[test]
fn warmup_composes_with_other_schedules() {
    let cosine = CosineAnnealing::new(90, 0.0).unwrap();
    close(
        "warmup_then_cosine",
        &drive(Warmup::new(10, 0.01, cosine).unwrap()),
        &expected("warmup_then_cosine"),
    );
    let step = StepLr::new(20, 0.1).unwrap();
    close(
        "warmup_then_step",
        &drive(Warmup::new(5, 0.25, step).unwrap()),
        &expected("warmup_then_step"),
    );
}

#[test]
fn reduce_on_plateau_matches_pytorch() {
    let metrics: Vec<f64> = reference()["plateau_metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut opt = Sgd::<f64>::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let mut plateau =
        ReduceLrOnPlateau::with_options(PlateauMode::Min, 0.5, 5, 1e-4, 2, 0.002).unwrap();
    let got: Vec<f64> = metrics
        .iter()
        .map(|&m| {
            let lr = Optimizer::<f64>::learning_rate(&opt);
            plateau.step(m, &mut opt);
            lr
        })
        .collect();
    close("reduce_on_plateau", &got, &expected("reduce_on_plateau"));
}

#[test]
fn clipping_by_norm_and_by_value() {
    // Global norm of (3, 4) and (12) is 13 (a Pythagorean quadruple).
    let (a, b) = (
        Param::new(ndarray::array![3.0f64, 4.0]),
        Param::new(ndarray::array![12.0f64]),
    );
    *a.grad_mut() = Some(ndarray::array![3.0, 4.0].into_dyn());
    *b.grad_mut() = Some(ndarray::array![12.0].into_dyn());
    let params = vec![("a", a.clone()), ("b", b.clone())];
    let norm = clip_grad_norm(&params, 6.5);
    assert_eq!(norm, 13.0);
    // scaled by 6.5 / (13 + 1e-6), PyTorch's formula
    let scale = 6.5 / (13.0 + 1e-6);
    assert_eq!(a.grad().as_ref().unwrap()[[1]], 4.0 * scale);
    assert_eq!(b.grad().as_ref().unwrap()[[0]], 12.0 * scale);
    // below the limit nothing changes
    let before = a.grad().clone();
    assert!((clip_grad_norm(&params, 100.0) - 6.5 * 13.0 / (13.0 + 1e-6)).abs() < 1e-12);
    assert_eq!(*a.grad(), before);

    clip_grad_value(&params, 1.0);
    assert_eq!(
        *a.grad().as_ref().unwrap(),
        ndarray::array![1.0, 1.0].into_dyn()
    );
    *b.grad_mut() = Some(ndarray::array![-7.0].into_dyn());
    clip_grad_value(&params, 0.5);
    assert_eq!(b.grad().as_ref().unwrap()[[0]], -0.5);
}

#[test]
fn parameters_without_gradient_are_skipped() {
    let (a, b) = (
        Param::new(ndarray::array![1.0f64]),
        Param::new(ndarray::array![1.0f64]),
    );
    *a.grad_mut() = Some(ndarray::array![1.0].into_dyn());
    let params = vec![("a", a.clone()), ("b", b.clone())];
    let mut opt = Adam::<f64>::new(AdamConfig {
        lr: 0.1,
        weight_decay: 0.1,
        ..Default::default()
    })
    .unwrap();
    opt.step(&params);
    assert_ne!(a.value()[[0]], 1.0);
    assert_eq!(
        b.value()[[0]],
        1.0,
        "no gradient, no update (not even weight decay)"
    );
    assert_eq!(opt.state().params.keys().collect::<Vec<_>>(), vec!["a"]);
}

/// After `zero_grad`, a parameter no backward reaches is skipped, as PyTorch
/// 2's default `zero_grad(set_to_none=True)` leaves its `grad` None: AdamW's
/// momentum and weight decay do not move it. (Expected: `b` keeps the value
/// its one step gave it; `a`, stepped every time, keeps moving.)
#[test]
fn a_parameter_no_backward_reached_since_zero_grad_is_skipped() {
    let (a, b) = (
        Param::new(ndarray::array![1.0f64]),
        Param::new(ndarray::array![2.0f64]),
    );
    let params = vec![("a", a.clone()), ("b", b.clone())];
    let mut opt = AdamW::new::<f64>(AdamWConfig {
        lr: 0.1,
        weight_decay: 0.1,
        ..Default::default()
    })
    .unwrap();
    *a.grad_mut() = Some(ndarray::array![0.5].into_dyn());
    *b.grad_mut() = Some(ndarray::array![-0.5].into_dyn());
    opt.step(&params);
    let b_after_one = b.value()[[0]];
    assert_ne!(b_after_one, 2.0);
    for _ in 0..2 {
        let a_before = a.value()[[0]];
        opt.zero_grad(&params);
        assert!(!a.has_grad() && !b.has_grad());
        // Only `a` is reached (written as a backward pass writes it).
        a.accumulate_grad(ndarray::array![0.5].into_dyn());
        assert!(a.has_grad() && !b.has_grad());
        // Clipping reads and rescales gradients: `b` still has none after.
        clip_grad_norm(&params, 0.4);
        clip_grad_value(&params, 0.3);
        assert!(b.grad().is_none());
        opt.step(&params);
        assert_ne!(a.value()[[0]], a_before);
        assert_eq!(b.value()[[0]], b_after_one, "b moved without a gradient");
    }
    // Its state counts the one step it took.
    assert_eq!(opt.state().params["b"].step, 1);
    assert_eq!(opt.state().params["a"].step, 3);
}

/// A parameter held under two names (a shared layer) is one parameter, as
/// PyTorch's `parameters()` leaves out duplicates: stepped once, counted
/// once in a norm. Expected values by hand: SGD moves [1, 2] by −lr·g =
/// −0.1·[2, 2]; the norm of [2, 2] and [3] is √17.
#[test]
fn a_shared_parameter_is_stepped_and_counted_once() {
    let (w, b) = (
        Param::new(ndarray::array![1.0f64, 2.0].into_dyn()),
        Param::new(ndarray::array![0.0f64].into_dyn()),
    );
    let params = vec![
        ("left.w", w.clone()),
        ("right.w", w.clone()),
        ("b", b.clone()),
    ];
    *w.grad_mut() = Some(ndarray::array![2.0, 2.0].into_dyn());
    *b.grad_mut() = Some(ndarray::array![3.0].into_dyn());
    assert_eq!(clip_grad_norm(&params, 100.0), 17f64.sqrt());
    let mut sgd = Sgd::<f64>::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    sgd.step(&params);
    assert_eq!(*w.value(), ndarray::array![1.0 - 0.2, 2.0 - 0.2].into_dyn());
    assert_eq!(
        sgd.state().params.keys().collect::<Vec<_>>(),
        ["b", "left.w"]
    );
}

/// NaN gradients stay NaN, as PyTorch's `clip_grad_value_` (a clamp) and
/// `clip_grad_norm_` (a NaN norm scales every gradient by NaN) leave them.
#[test]
fn clipping_keeps_nan_gradients_nan() {
    let (a, b) = (
        Param::new(ndarray::array![0.0f64, 0.0, 0.0].into_dyn()),
        Param::new(ndarray::array![0.0f64, 0.0].into_dyn()),
    );
    let params = vec![("a", a.clone()), ("b", b.clone())];
    *a.grad_mut() = Some(ndarray::array![f64::NAN, -4.0, 1.0].into_dyn());
    *b.grad_mut() = Some(ndarray::array![2.0, 0.5].into_dyn());
    clip_grad_value(&params, 1.5);
    let g = a.grad().clone().unwrap();
    assert!(g[[0]].is_nan());
    assert_eq!((g[[1]], g[[2]]), (-1.5, 1.0));
    assert!(clip_grad_norm(&params, 1.0).is_nan());
    assert!(a.grad().as_ref().unwrap().iter().all(|v| v.is_nan()));
    assert!(b.grad().as_ref().unwrap().iter().all(|v| v.is_nan()));
}

/// A schedule resumed from its state rates every later step as the run that
/// was never interrupted, even after the optimizer's own state (holding the
/// scheduled rate, not the base) was loaded.
#[test]
fn a_resumed_schedule_continues_the_uninterrupted_one() {
    let make = || Warmup::new(3, 0.1, CosineAnnealing::new(12, 0.001).unwrap()).unwrap();
    let sgd = || {
        Sgd::<f64>::new(SgdConfig {
            lr: 0.5,
            ..Default::default()
        })
        .unwrap()
    };
    let (mut whole, mut first) = (sgd(), sgd());
    let mut uninterrupted = LrScheduler::new(make(), &mut whole);
    let mut interrupted = LrScheduler::new(make(), &mut first);
    let mut rates = Vec::new();
    for _ in 0..12 {
        uninterrupted.step(&mut whole);
        rates.push(whole.learning_rate());
    }
    (0..5).for_each(|_| interrupted.step(&mut first));
    let mut second = sgd();
    second.load_state(first.state()).unwrap();
    let mut resumed = LrScheduler::resume(make(), interrupted.state(), &mut second);
    assert_eq!(second.learning_rate(), rates[4]);
    for want in &rates[5..] {
        resumed.step(&mut second);
        assert_eq!(second.learning_rate(), *want);
    }
}
