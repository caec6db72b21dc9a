//! `fit` with value targets, every built-in loss, a loss written on the tape,
//! and metrics: one SGD step through `fit` (the model's static path, the
//! loss's fused kernels) lands where a step on the tape's gradient of the
//! loss's definition lands. The tape is the reference: its gradients are
//! checked against PyTorch and finite differences elsewhere
//! (`nn-core/tests/torch_*`, `gradcheck`).

use std::collections::BTreeMap;

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use nn::train::{
    evaluate_metrics, Accuracy, MeanAbsoluteError, Metric, RootMeanSquaredError, TopKAccuracy,
};

sequential! {
    /// Two values per sample.
    #[dtype(f64)]
    struct Regressor: input(3) { Dense(5, activation = tanh), Dense(2) }
}

sequential! {
    /// Two probabilities per sample.
    #[dtype(f64)]
    struct Binary: input(3) { Dense(5, activation = tanh), Dense(2, activation = sigmoid) }
}

sequential! {
    /// A distribution over three classes.
    #[dtype(f64)]
    struct Softmax: input(3) { Dense(5, activation = tanh), Dense(3), Activation("softmax") }
}

/// Deterministic values in [-1, 1].
fn values(shape: &[usize], salt: usize) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|k| ((k * 37 + salt * 11) % 19) as f64 / 9.0 - 1.0);
    ArrayD::from_shape_vec(IxDyn(shape), v.collect()).unwrap()
}

/// Rows that sum to one.
fn distributions(n: usize, classes: usize) -> ArrayD<f64> {
    let mut v = values(&[n, classes], 5).mapv(|x| x.exp());
    for mut row in v.rows_mut() {
        let s = row.sum();
        row.mapv_inplace(|x| x / s);
    }
    v
}

fn params<P: Parameters<f64>>(m: &P) -> BTreeMap<String, ArrayD<f64>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        out.insert(n.to_string(), p.value().clone());
    });
    out
}

fn sgd() -> Sgd<f64> {
    Sgd::new(SgdConfig {
        lr: 0.3,
        ..Default::default()
    })
    .unwrap()
}

fn silent<'a>(loss: TrainLoss<'a, f64>, batch_size: usize) -> FitOptions<'a, f64> {
    FitOptions {
        loss,
        batch_size,
        shuffle_seed: None,
        verbosity: Verbosity::Silent,
        ..Default::default()
    }
}

/// Asserts two parameter sets agree to `tol` and that the step moved them.
fn assert_same_step(
    got: &BTreeMap<String, ArrayD<f64>>,
    want: &BTreeMap<String, ArrayD<f64>>,
    before: &BTreeMap<String, ArrayD<f64>>,
    tol: f64,
    what: &str,
) {
    let mut moved = 0.0f64;
    for (name, w) in want {
        let g = &got[name];
        let diff = (g - w).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(diff <= tol, "{what}: {name} differs by {diff}");
        moved = moved.max(
            (w - &before[name])
                .mapv(f64::abs)
                .fold(0.0, |a, &b| a.max(b)),
        );
    }
    assert!(moved > 1e-4, "{what}: the step changed nothing");
}

/// Two batches of 4 through `fit` against two steps on the tape.
fn check_loss<M: Model<f64> + nn::train::Fit<f64>>(
    make: impl Fn() -> M,
    loss: Loss,
    targets: ArrayD<f64>,
) {
    let x = values(&[8, 3], 1);
    let data = Dataset::with_values(x.clone(), targets.clone());
    let mut model = make();
    let before = params(&model);
    let history = fit(&mut model, &mut sgd(), &data, silent(loss.into(), 4)).unwrap();
    assert_eq!(history.epochs.len(), 1, "{loss:?}");

    let reference = make();
    let mut opt = sgd();
    for rows in [0..4, 4..8] {
        let tape = Tape::new();
        let xb = x.slice_axis(nn::ndarray::Axis(0), rows.clone().into());
        let tb = targets.slice_axis(nn::ndarray::Axis(0), rows.into());
        let out = reference.forward(&tape.constant(xb.to_owned()));
        loss.apply(&out, &Target::Values(tb)).backward();
        opt.step(&reference);
        opt.zero_grad(&reference);
    }
    assert_same_step(
        &params(&model),
        &params(&reference),
        &before,
        1e-12,
        &format!("{loss:?}"),
    );
}

#[test]
fn every_value_loss_trains_through_fit_as_on_the_tape() {
    let reals = values(&[8, 2], 2);
    let probs = values(&[8, 2], 3).mapv(|v| (v + 1.0) / 2.0);
    check_loss(|| Regressor::with_seed(0), Loss::Mse, reals.clone());
    check_loss(|| Regressor::with_seed(1), Loss::Mae, reals.clone());
    check_loss(
        || Regressor::with_seed(2),
        Loss::Huber { delta: 0.5 },
        reals,
    );
    check_loss(
        || Regressor::with_seed(3),
        Loss::BinaryCrossEntropyWithLogits,
        probs.clone(),
    );
    check_loss(|| Binary::with_seed(4), Loss::BinaryCrossEntropy, probs);
    check_loss(
        || Softmax::with_seed(5),
        Loss::CategoricalCrossEntropy,
        distributions(8, 3),
    );
    check_loss(
        || Softmax::with_seed(6),
        Loss::KlDivergence,
        distributions(8, 3),
    );
}

#[test]
fn a_loss_written_on_the_tape_trains_through_fit() {
    // Cross-entropy on the softmax's probabilities plus a penalty on them:
    // through `fit`, the static path carries the tape's gradient of the loss.
    let x = values(&[6, 3], 7);
    let labels = vec![0, 2, 1, 1, 0, 2];
    let data = Dataset::new(x.clone(), labels.clone());
    let penalized = |pred: &Var<f64>, target: &Target<'_, f64>| {
        sparse_categorical_cross_entropy(pred, target.labels(), Reduction::Mean)
            + pred.pow(2.0).mean() * 0.1
    };
    let mut model = Softmax::with_seed(8);
    let before = params(&model);
    let history = fit(
        &mut model,
        &mut sgd(),
        &data,
        silent(TrainLoss::tape(penalized), 6),
    )
    .unwrap();
    // With class labels and no metrics asked for, accuracy is reported.
    assert!(history.epochs[0].accuracy().is_some());

    let reference = Softmax::with_seed(8);
    let tape = Tape::new();
    let out = reference.forward(&tape.constant(x));
    penalized(&out, &Target::Labels(&labels)).backward();
    let mut opt = sgd();
    opt.step(&reference);
    assert_same_step(
        &params(&model),
        &params(&reference),
        &before,
        1e-12,
        "tape loss",
    );

    // A tape model takes the same loss on its own tape.
    let mut taped = nn::train::Taped(Softmax::with_seed(8));
    fit(
        &mut taped,
        &mut sgd(),
        &data,
        silent(TrainLoss::tape(penalized), 6),
    )
    .unwrap();
    assert_same_step(
        &params(&taped),
        &params(&reference),
        &before,
        1e-12,
        "taped",
    );
}

/// The largest absolute error: a metric of the user's.
#[derive(Default)]
struct MaxError(f64);

impl Metric<f64> for MaxError {
    fn name(&self) -> &str {
        "max_error"
    }
    fn reset(&mut self) {
        self.0 = 0.0;
    }
    fn update(&mut self, pred: nn::ndarray::ArrayViewD<'_, f64>, target: &Target<'_, f64>) {
        let Target::Values(t) = target else { return };
        for (p, t) in pred.iter().zip(t.iter()) {
            self.0 = self.0.max((p - t).abs());
        }
    }
    fn result(&self) -> f64 {
        self.0
    }
}

#[test]
fn metrics_are_logged_under_their_names_for_training_and_validation() {
    let x = values(&[10, 3], 9);
    let y = values(&[10, 2], 10);
    let data = Dataset::with_values(x.clone(), y.clone());
    let mut model = Regressor::with_seed(11);
    // One batch: the training metrics see the outputs before the step.
    let before = model.predict(x.view());
    let err = &before - &y;
    let want_mae = err.mapv(f64::abs).mean().unwrap();
    let want_rmse = err.mapv(|e| e * e).mean().unwrap().sqrt();
    let want_max = err.mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
    let options = FitOptions {
        metrics: vec![
            Box::new(MeanAbsoluteError::default()),
            Box::new(RootMeanSquaredError::default()),
            Box::new(MaxError::default()),
        ],
        validation: Some(&data),
        ..silent(Loss::Mse.into(), 10)
    };
    let history = fit(&mut model, &mut sgd(), &data, options).unwrap();
    let logs = &history.epochs[0];
    let close = |name: &str, want: f64| {
        let got = logs
            .get(name)
            .unwrap_or_else(|| panic!("{name} not logged"));
        assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
    };
    close("mae", want_mae);
    close("rmse", want_rmse);
    close("max_error", want_max);
    assert!(
        logs.accuracy().is_none(),
        "no accuracy for a regression loss"
    );
    // Validation ran after the step, on the updated model.
    let after = model.predict(x.view());
    close("val_mae", (&after - &y).mapv(f64::abs).mean().unwrap());
    close("val_loss", (&after - &y).mapv(|e| e * e).mean().unwrap());
    assert!(history
        .to_csv()
        .starts_with("epoch,loss,mae,rmse,max_error,val_loss,val_mae,val_rmse,val_max_error,lr,"));

    // `evaluate_metrics` reports the same names.
    let mut metrics: Vec<Box<dyn Metric<f64>>> =
        vec![Box::new(TopKAccuracy::new(2)), Box::new(Accuracy::new())];
    let labels = Dataset::new(x, vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    let (_, m) = evaluate_metrics(
        &mut Softmax::with_seed(0),
        &labels,
        4,
        Loss::SparseCategoricalCrossEntropy,
        &mut metrics,
    );
    assert_eq!(m[0].0, "top_2_accuracy");
    assert_eq!(m[1].0, "accuracy");
    assert!(m[0].1 >= m[1].1, "top-2 accuracy is at least accuracy");
}

/// Samples made when asked: y = 2·x₀ − x₁ + x₂.
struct Linear {
    n: usize,
}

impl Data<f64> for Linear {
    fn len(&self) -> usize {
        self.n
    }
    fn sample_shape(&self) -> &[usize] {
        &[3]
    }
    fn target_kind(&self) -> nn::data::TargetKind {
        nn::data::TargetKind::Values { shape: vec![2] }
    }
    fn fill(&self, i: usize, input: &mut [f64], target: nn::data::TargetSlot<'_, f64>) {
        for (k, v) in input.iter_mut().enumerate() {
            *v = (((i * 3 + k) * 7919) % 100) as f64 / 50.0 - 1.0;
        }
        if let nn::data::TargetSlot::Values(y) = target {
            y[0] = 2.0 * input[0] - input[1] + input[2];
            y[1] = -y[0];
        }
    }
}

#[test]
fn data_made_on_the_fly_trains_like_the_same_data_in_memory() {
    let source = Linear { n: 24 };
    let mut x = ArrayD::zeros(IxDyn(&[24, 3]));
    let mut y = ArrayD::zeros(IxDyn(&[24, 2]));
    for i in 0..24 {
        let (xs, ys) = (x.as_slice_mut().unwrap(), y.as_slice_mut().unwrap());
        source.fill(
            i,
            &mut xs[i * 3..i * 3 + 3],
            nn::data::TargetSlot::Values(&mut ys[i * 2..i * 2 + 2]),
        );
    }
    let memory = Dataset::with_values(x, y);
    let options = || FitOptions {
        epochs: 3,
        batch_size: 5,
        loss: Loss::Mse.into(),
        verbosity: Verbosity::Silent,
        ..Default::default()
    };
    let (mut a, mut b) = (Regressor::with_seed(3), Regressor::with_seed(3));
    let ha = fit(&mut a, &mut sgd(), &source, options()).unwrap();
    let hb = fit(&mut b, &mut sgd(), &memory, options()).unwrap();
    assert_eq!(params(&a), params(&b));
    assert_eq!(ha.metric("loss"), hb.metric("loss"));
    assert!(
        ha.epochs[2].loss < ha.epochs[0].loss,
        "{:?}",
        ha.metric("loss")
    );
}
