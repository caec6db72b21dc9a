//! Training `functional!` graphs: a graph of two inputs and two outputs
//! trains with `fit_graph` (one loss per output, weighted as Keras's
//! `loss_weights`), a graph of one input and output with `fit`; checkpoints
//! round-trip by name; bad data is refused with a clear error.
//!
//! The expected parameters after one SGD step are computed on the tape from
//! the loss's definition (`Σ wᵢ · lossᵢ`, each the batch mean), so the static
//! path, the fused softmax gradient and the weighting are all checked against
//! it.

use std::collections::BTreeMap;

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

use crate::common::graphs::{values, TwoHeads};
use crate::common::scripted::{check_rerun, state, EpochWeights, Scripted, Snapshots};
use nn::train::{
    evaluate_graph, fit_graph, predict_graph, GraphData, GraphDataError, GraphFitOptions, Targets,
};

functional! {
    /// One input, one output: trains with `fit` like a `sequential!` model.
    #[dtype(f64)]
    pub struct Single(x: input(3)) -> (y) {
        let h = Dense(4, activation = tanh)(x);
        let s = Dense(4)(x);
        let m = Multiply(h, s);
        let y = Dense(3, activation = softmax)(m);
    }
}

fn params<P: Parameters<f64>>(m: &P) -> BTreeMap<String, ArrayD<f64>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        out.insert(n.to_string(), p.value().clone());
    });
    out
}

/// `n` samples for [`TwoHeads`]: its two inputs, a label of 3 classes and
/// a value.
fn two_head_data(n: usize) -> GraphData<f64> {
    GraphData::new(
        vec![values(&[n, 3], 0), values(&[n, 2], 1)],
        vec![
            Targets::Labels((0..n).map(|i| (i * 7) % 3).collect()),
            Targets::Values(values(&[n, 1], 2)),
        ],
    )
    .unwrap()
}

fn close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (x, y) in a.iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            "{what}: {x:e} vs {y:e}"
        );
    }
}

#[test]
fn one_step_of_fit_graph_follows_the_weighted_losses() {
    let n = 6;
    let (a, b) = (values(&[n, 3], 0), values(&[n, 2], 1));
    let labels: Vec<usize> = (0..n).map(|i| (i * 7) % 3).collect();
    let target = values(&[n, 1], 2);
    let (w_label, w_value, lr) = (1.0, 0.5, 0.1);

    // Expected: one SGD step on the tape's gradient of the weighted loss.
    let reference = TwoHeads::with_seed(4);
    let tape = Tape::<f64>::new();
    let [p, v] = reference.forward([&tape.constant(a.clone()), &tape.constant(b.clone())]);
    let loss = sparse_categorical_cross_entropy(&p, &labels, Reduction::Mean) * w_label
        + mse(&v, &tape.constant(target.clone()), Reduction::Mean) * w_value;
    loss.backward();
    let mut expected = BTreeMap::new();
    reference.visit_params(&mut |name, q| {
        let g = q.grad().clone().expect("every parameter has a gradient");
        expected.insert(name.to_string(), &*q.value() - &(g * lr));
    });

    let mut model = TwoHeads::with_seed(4);
    let data = GraphData::new(
        vec![a.clone(), b.clone()],
        vec![
            Targets::Labels(labels.clone()),
            Targets::Values(target.clone()),
        ],
    )
    .unwrap();
    let mut sgd = Sgd::new(SgdConfig {
        lr,
        ..Default::default()
    })
    .unwrap();
    let history = fit_graph(
        &mut model,
        &mut sgd,
        &data,
        GraphFitOptions {
            epochs: 1,
            batch_size: n,
            losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
            loss_weights: vec![w_label, w_value],
            shuffle_seed: None,
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    for (name, value) in params(&model) {
        close(&name, &value, &expected[&name]);
    }
    // The logged loss is the weighted total before the step, each output's under its name.
    let logs = &history.epochs[0];
    close(
        "loss",
        &ArrayD::from_elem(IxDyn(&[]), logs.loss),
        &ArrayD::from_elem(IxDyn(&[]), loss.item()),
    );
    assert!(
        logs.get("label_loss").is_some() && logs.get("value_loss").is_some(),
        "{logs:?}"
    );
    // Accuracy for the output that classifies, none for the regression.
    assert!(
        logs.get("accuracy").is_some() && logs.get("label_accuracy").is_some(),
        "{logs:?}"
    );
    assert_eq!(logs.get("value_accuracy"), None, "{logs:?}");

    // Evaluation and prediction see every output.
    let m = evaluate_graph(
        &mut model,
        &data,
        4,
        &[Loss::SparseCategoricalCrossEntropy, Loss::Mse],
        &[],
    );
    assert_eq!(m.losses.len(), 2);
    close(
        "total",
        &ArrayD::from_elem(IxDyn(&[]), m.loss),
        &ArrayD::from_elem(IxDyn(&[]), m.losses[0] + m.losses[1]),
    );
    let outs = predict_graph(&mut model, &[a.view(), b.view()], 4);
    let [p, v] = model.predict([a.view(), b.view()]);
    close("predict label", &outs[0], &p);
    close("predict value", &outs[1], &v);
}

#[test]
fn fit_graph_logs_every_output_under_keras_names() {
    let n = 6;
    let data = two_head_data(n);
    let mut model = TwoHeads::with_seed(4);
    let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
    let losses = vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse];
    let history = fit_graph(
        &mut model,
        &mut sgd,
        &data,
        GraphFitOptions {
            epochs: 1,
            batch_size: 4,
            losses: losses.clone(),
            validation: Some(&data),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let logs = &history.epochs[0];
    let names = |m: &[(String, f64)]| m.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    // The first output's accuracy, then each output's loss and, where it
    // classifies, its accuracy; Keras's names.
    assert_eq!(
        names(&logs.metrics),
        ["accuracy", "label_loss", "label_accuracy", "value_loss"]
    );
    assert_eq!(logs.get("accuracy"), logs.get("label_accuracy"));
    assert_eq!(
        names(&logs.val_metrics),
        [
            "val_accuracy",
            "val_label_loss",
            "val_label_accuracy",
            "val_value_loss"
        ]
    );
    // Validation runs after the epoch's steps: `evaluate_graph` on the
    // trained model gives the same numbers.
    let m = evaluate_graph(&mut model, &data, 256, &losses, &[]);
    // The value head has no accuracy, as in Keras.
    assert_eq!(m.accuracies[1], None);
    let accuracy = m.accuracies[0].expect("the label head classifies");
    let expected = [accuracy, m.losses[0], accuracy, m.losses[1]];
    for ((name, got), want) in logs.val_metrics.iter().zip(expected) {
        assert!((got - want).abs() <= 1e-12, "{name}: {got} vs {want}");
    }
    assert!((logs.val_loss.unwrap() - m.loss).abs() <= 1e-12);
}

#[test]
fn predicting_no_samples_gives_every_output_with_no_rows() {
    // As a PyTorch module gives for an empty batch: `[0, …]` per output.
    let mut model = TwoHeads::with_seed(1);
    let (a, b) = (values(&[0, 3], 1), values(&[0, 2], 2));
    let outs = predict_graph(&mut model, &[a.view(), b.view()], 4);
    let shapes: Vec<&[usize]> = outs.iter().map(|o| o.shape()).collect();
    assert_eq!(shapes, [&[0, 3][..], &[0, 1][..]]);
}

#[test]
fn a_one_input_graph_trains_with_fit() {
    let n = 5;
    let x = values(&[n, 3], 3);
    let labels: Vec<usize> = (0..n).map(|i| (i * 2) % 3).collect();
    let lr = 0.05;
    let reference = Single::with_seed(9);
    let tape = Tape::<f64>::new();
    let y = Model::forward(&reference, &tape.constant(x.clone()));
    sparse_categorical_cross_entropy(&y, &labels, Reduction::Mean).backward();
    let mut expected = BTreeMap::new();
    reference.visit_params(&mut |name, q| {
        let g = q.grad().clone().expect("every parameter has a gradient");
        expected.insert(name.to_string(), &*q.value() - &(g * lr));
    });

    let mut model = Single::with_seed(9);
    let mut sgd = Sgd::new(SgdConfig {
        lr,
        ..Default::default()
    })
    .unwrap();
    let data = Dataset::new(x, labels);
    fit(
        &mut model,
        &mut sgd,
        &data,
        FitOptions {
            batch_size: n,
            shuffle_seed: None,
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    for (name, value) in params(&model) {
        close(&name, &value, &expected[&name]);
    }
}

/// Calls of each batch hook, and the rates the first was shown.
#[derive(Default)]
struct HookCalls {
    begin: usize,
    before_step: usize,
    end: usize,
    rates: Vec<f64>,
}

/// Counts the batch hooks `fit_graph` calls.
#[derive(Default)]
struct Hooks(std::rc::Rc<std::cell::RefCell<HookCalls>>);

impl nn::train::Callback<f64> for Hooks {
    fn on_train_batch_begin(
        &mut self,
        logs: &nn::train::BatchLogs,
        _: &mut nn::train::Context<'_, f64>,
    ) -> Result<(), nn::train::TrainError> {
        let mut seen = self.0.borrow_mut();
        seen.begin += 1;
        seen.rates.push(logs.lr);
        Ok(())
    }
    fn on_before_optimizer_step(
        &mut self,
        _: &nn::train::BatchLogs,
        _: &mut nn::train::Context<'_, f64>,
    ) -> Result<(), nn::train::TrainError> {
        self.0.borrow_mut().before_step += 1;
        Ok(())
    }
    fn on_train_batch_end(
        &mut self,
        _: &nn::train::BatchLogs,
        _: &mut nn::train::Context<'_, f64>,
    ) -> Result<nn::train::Control, nn::train::TrainError> {
        self.0.borrow_mut().end += 1;
        Ok(nn::train::Control::Continue)
    }
}

/// `fit_graph` clips, schedules per step and calls the batch hooks as `fit`
/// does. Expected: the same steps by hand on the tape's gradient of the
/// weighted loss, in PyTorch's order (rate, forward, backward, clip the norm,
/// clamp, step).
#[test]
fn fit_graph_clips_schedules_and_hooks_each_batch_as_fit_does() {
    let (n, batch, epochs) = (12, 4, 2);
    let (a, b) = (values(&[n, 3], 0), values(&[n, 2], 1));
    let labels: Vec<usize> = (0..n).map(|i| (i * 7) % 3).collect();
    let target = values(&[n, 1], 2);
    let schedule = || nn::optim::StepLr::new(2, 0.5).unwrap();
    let sgd = || {
        Sgd::new(SgdConfig {
            lr: 0.5,
            momentum: 0.9,
            ..Default::default()
        })
        .unwrap()
    };
    let (clip_norm, clip_value) = (0.3, 0.05);

    let reference = TwoHeads::with_seed(4);
    let mut opt = sgd();
    let mut rates = Vec::new();
    for step in 0..epochs * n / batch {
        let rows = (step * batch) % n..(step * batch) % n + batch;
        opt.set_learning_rate(nn::optim::Schedule::lr(&schedule(), 0.5, step));
        rates.push(opt.learning_rate());
        let tape = Tape::<f64>::new();
        let part = |x: &ArrayD<f64>| {
            x.slice_axis(nn::ndarray::Axis(0), rows.clone().into())
                .to_owned()
        };
        let [p, v] = reference.forward([&tape.constant(part(&a)), &tape.constant(part(&b))]);
        let loss = sparse_categorical_cross_entropy(&p, &labels[rows.clone()], Reduction::Mean)
            + mse(&v, &tape.constant(part(&target)), Reduction::Mean);
        loss.backward();
        nn::optim::clip_grad_norm(&reference, clip_norm);
        nn::optim::clip_grad_value(&reference, clip_value);
        opt.step(&reference);
        opt.zero_grad(&reference);
    }

    let hooks = Hooks::default();
    let seen = hooks.0.clone();
    let mut model = TwoHeads::with_seed(4);
    let data = GraphData::new(
        vec![a, b],
        vec![Targets::Labels(labels), Targets::Values(target)],
    )
    .unwrap();
    let options = GraphFitOptions {
        epochs,
        batch_size: batch,
        losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
        shuffle_seed: None,
        clip_grad_norm: Some(clip_norm),
        clip_grad_value: Some(clip_value),
        lr_schedule: Some(Box::new(schedule())),
        callbacks: vec![Box::new(hooks)],
        verbosity: Verbosity::Silent,
        ..Default::default()
    };
    fit_graph(&mut model, &mut sgd(), &data, options).unwrap();
    let expected = params(&reference);
    for (name, value) in params(&model) {
        close(&name, &value, &expected[&name]);
    }
    let seen = seen.borrow();
    assert_eq!(
        (seen.begin, seen.before_step, seen.end),
        (6, 6, 6),
        "three batches an epoch, two epochs"
    );
    // StepLr(2, 0.5) from 0.5, one step per batch.
    assert_eq!(seen.rates, [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]);
    assert_eq!(seen.rates, rates);
}

/// Keras's `metrics={"value": ["mae"]}`: a metric of one output, logged
/// under the output's name for training and validation. Expected: the mean
/// absolute error by its definition, from the model's own predictions (one
/// batch per epoch, so training's is the prediction before the step).
#[test]
fn fit_graph_logs_metrics_of_single_outputs() {
    let n = 8;
    let (a, b) = (values(&[n, 3], 3), values(&[n, 2], 4));
    let target = values(&[n, 1], 5);
    let data = GraphData::new(
        vec![a.clone(), b.clone()],
        vec![
            Targets::Labels((0..n).map(|i| i % 3).collect()),
            Targets::Values(target.clone()),
        ],
    )
    .unwrap();
    let mae = |model: &mut TwoHeads| {
        let [_, v] = model.predict([a.view(), b.view()]);
        (&v - &target).mapv(f64::abs).mean().unwrap()
    };
    let mut model = TwoHeads::with_seed(6);
    let before = mae(&mut model);
    let options = GraphFitOptions {
        epochs: 1,
        batch_size: n,
        losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
        metrics: vec![("value", Box::new(nn::train::MeanAbsoluteError::default()))],
        validation: Some(&data),
        callbacks: vec![Box::new(nn::train::EarlyStopping::new("val_value_mae", 3))],
        shuffle_seed: None,
        verbosity: Verbosity::Silent,
        ..Default::default()
    };
    let history = fit_graph(
        &mut model,
        &mut Sgd::new(SgdConfig::default()).unwrap(),
        &data,
        options,
    )
    .unwrap();
    let logs = &history.epochs[0];
    let after = mae(&mut model);
    let got = (
        logs.get("value_mae").unwrap(),
        logs.get("val_value_mae").unwrap(),
    );
    assert!(
        (got.0 - before).abs() < 1e-12 && (got.1 - after).abs() < 1e-12,
        "{got:?} vs {before}, {after}"
    );
    assert_ne!(before, after);

    let options = GraphFitOptions {
        losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
        metrics: vec![("values", Box::new(nn::train::MeanAbsoluteError::default()))],
        verbosity: Verbosity::Silent,
        ..Default::default()
    };
    let e = fit_graph(
        &mut model,
        &mut Sgd::new(SgdConfig::default()).unwrap(),
        &data,
        options,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`values` is not an output of the model (its outputs: label, value)"),
        "{e}"
    );
}

#[test]
fn a_graph_checkpoint_round_trips_by_name() {
    let dir = std::env::temp_dir().join(format!("nn-functional-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("two_heads.safetensors");
    let saved = TwoHeads::with_seed(1);
    saved.save(&path).unwrap();
    let mut loaded = TwoHeads::with_seed(2);
    assert_ne!(params(&loaded), params(&saved));
    loaded.load(&path).unwrap();
    assert_eq!(params(&loaded), params(&saved));
    let names: Vec<String> = params(&saved).into_keys().collect();
    assert_eq!(
        names,
        [
            "dense.bias",
            "dense.weight",
            "dense_1.bias",
            "dense_1.weight",
            "dense_2.bias",
            "dense_2.weight",
            "dense_3.bias",
            "dense_3.weight"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Keras's `validation_split` rows, `floor(n · (1 − f))` training (by hand:
/// 10 · 0.75 = 7.5), as `Dataset::split`; a fraction outside [0, 1) is
/// refused by name.
#[test]
fn graph_data_splits_where_keras_does() {
    let (train, val) = two_head_data(10).split(0.25);
    assert_eq!((train.len(), val.len()), (7, 3));
    for bad in [-0.5, 1.0] {
        let e = std::panic::catch_unwind(|| two_head_data(4).split(bad)).unwrap_err();
        let e = e.downcast_ref::<String>().unwrap();
        assert!(
            e.starts_with("GraphData::split: the validation fraction"),
            "{e}"
        );
    }
}

#[test]
fn data_of_unequal_lengths_is_refused() {
    let err = GraphData::new(
        vec![values(&[4, 3], 0), values(&[5, 2], 0)],
        vec![Targets::<f64>::Labels(vec![0; 4])],
    )
    .unwrap_err();
    assert_eq!(
        err,
        GraphDataError::SampleCount {
            what: "input 1".into(),
            expected: 4,
            found: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "input 1 holds 5 samples, but input 0 holds 4"
    );
    let err = GraphData::<f64>::new(vec![values(&[4, 3], 0)], vec![]).unwrap_err();
    assert!(
        err.to_string()
            .contains("at least one input and one target"),
        "{err}"
    );
}

#[test]
fn fit_graph_resumed_after_an_epoch_ends_as_the_uninterrupted_run() {
    let n = 40;
    let data = two_head_data(n);
    let run = |epochs: usize, dir: Option<&std::path::Path>, seed: u64| {
        let mut model = TwoHeads::with_seed(seed);
        let mut adam = Adam::new(AdamConfig::default()).unwrap();
        let history = fit_graph(
            &mut model,
            &mut adam,
            &data,
            GraphFitOptions {
                epochs,
                batch_size: 8,
                losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
                loss_weights: vec![1.0, 0.5],
                verbosity: Verbosity::Silent,
                checkpoint_dir: dir.map(|d| d.to_path_buf()),
                resume_from: dir.map(|d| d.to_path_buf()),
                callbacks: vec![Box::new(nn::train::EarlyStopping::new("loss", 100))],
                ..Default::default()
            },
        )
        .unwrap();
        let losses: Vec<f64> = history.epochs.iter().map(|e| e.loss).collect();
        (params(&model), losses)
    };
    let full = run(4, None, 3);
    let dir = std::env::temp_dir().join(format!("nn_graph_resume_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run(1, Some(&dir), 3);
    // Another seed: everything must come from the checkpoint.
    let resumed = run(4, Some(&dir), 8);
    assert_eq!(resumed, full);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fit_graph_refuses_misconfiguration_before_the_first_batch() {
    let n = 6;
    let labels = Targets::Labels((0..n).map(|i| i % 3).collect());
    let value = Targets::Values(values(&[n, 1], 2));
    let data = |targets: Vec<Targets<f64>>| {
        GraphData::new(vec![values(&[n, 3], 0), values(&[n, 2], 1)], targets).unwrap()
    };
    let good = data(vec![labels.clone(), value.clone()]);
    let run = |train: &GraphData<f64>, validation: Option<&GraphData<f64>>, losses: Vec<Loss>| {
        let mut model = TwoHeads::with_seed(4);
        let before = params(&model);
        let err = fit_graph(
            &mut model,
            &mut Sgd::new(SgdConfig::default()).unwrap(),
            train,
            GraphFitOptions {
                losses,
                validation,
                verbosity: Verbosity::Silent,
                ..Default::default()
            },
        )
        .expect_err("refused");
        assert_eq!(params(&model), before, "nothing trained before the error");
        err.to_string()
    };
    let losses = || vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse];

    let e = run(&good, None, vec![Loss::Mse]);
    assert!(
        e.contains("the model has 2 outputs but 1 losses were given"),
        "{e}"
    );
    let e = run(&good, None, vec![Loss::Mse, Loss::Mse]);
    assert!(
        e.contains("output `label`: the loss mse needs target values")
            && e.contains("Targets::Values for an output of GraphData"),
        "{e}"
    );
    let e = run(&good, None, vec![Loss::BinaryCrossEntropy, Loss::Mse]);
    assert!(
        e.contains("give 0/1 labels as the values 0.0 and 1.0"),
        "{e}"
    );
    let wide = data(vec![labels.clone(), Targets::Values(values(&[n, 3], 2))]);
    let e = run(&wide, None, losses());
    assert!(
        e.contains("output `value` is [1] per sample, but the training targets are [3] per sample"),
        "{e}"
    );
    let e = run(&good, Some(&wide), losses());
    assert!(e.contains("but the validation targets are [3]"), "{e}");
    // The regression output logs no accuracy to monitor.
    let mut model = TwoHeads::with_seed(4);
    let e = fit_graph(
        &mut model,
        &mut Sgd::new(SgdConfig::default()).unwrap(),
        &good,
        GraphFitOptions {
            losses: losses(),
            callbacks: vec![Box::new(nn::train::EarlyStopping::new("value_accuracy", 2))],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("monitors `value_accuracy`, which this run never logs"),
        "{e}"
    );

    let many = data(vec![Targets::Labels(vec![7; n]), value]);
    let e = run(&good, Some(&many), losses());
    assert!(
        e.contains("output `label` is [3] per sample, but the validation labels name 8 classes"),
        "{e}"
    );
}

/// A validation loss that is not finite stops `fit_graph` as it stops `fit`:
/// after the epoch that trained, which stays in the History.
#[test]
fn a_nan_validation_loss_stops_fit_graph_after_its_epoch() {
    let n = 6;
    let train = two_head_data(n);
    let mut inputs = values(&[n, 3], 0);
    inputs[[4, 1]] = f64::NAN;
    let poisoned = GraphData::new(
        vec![inputs, values(&[n, 2], 1)],
        vec![
            Targets::Labels((0..n).map(|i| (i * 7) % 3).collect()),
            Targets::Values(values(&[n, 1], 2)),
        ],
    )
    .unwrap();
    let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
    let history = fit_graph(
        &mut TwoHeads::with_seed(4),
        &mut sgd,
        &train,
        GraphFitOptions {
            epochs: 3,
            batch_size: 4,
            losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
            validation: Some(&poisoned),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let reason = history.stopped.as_deref().expect("stopped");
    assert!(
        reason.starts_with("validation loss became NaN at epoch 1"),
        "{reason}"
    );
    assert_eq!(history.epochs.len(), 1);
    assert!(history.epochs[0].loss.is_finite());
    assert!(history.epochs[0].val_loss.is_some_and(f64::is_nan));
}

/// As `fit`'s: a `fit_graph` run that stopped at an epoch's end, run again
/// from its checkpoints, leaves the model with EarlyStopping's restored
/// best; one whose epochs ran out keeps its last epoch's weights there.
#[test]
fn fit_graph_run_again_after_a_stop_gives_its_restored_weights() {
    let data = two_head_data(16);
    check_rerun("graph_rerun", |values, epochs, dir| {
        let done = EpochWeights::default();
        let mut model = TwoHeads::with_seed(2);
        let history = fit_graph(
            &mut model,
            &mut Adam::new(AdamConfig::default()).unwrap(),
            &data,
            GraphFitOptions {
                epochs,
                batch_size: 8,
                losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
                metrics: vec![(
                    "value",
                    Box::new(Scripted {
                        values: values.to_vec(),
                        done: done.clone(),
                    }),
                )],
                callbacks: vec![
                    Box::new(
                        nn::train::EarlyStopping::new("value_scripted_loss", 2)
                            .restore_best_weights(),
                    ),
                    Box::new(Snapshots(done.clone())),
                ],
                checkpoint_dir: Some(dir.to_path_buf()),
                resume_from: Some(dir.to_path_buf()),
                verbosity: Verbosity::Silent,
                ..Default::default()
            },
        )
        .unwrap();
        let snapshots = done.borrow().clone();
        (history, state(&model), snapshots)
    });
}
