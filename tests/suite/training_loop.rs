//! The training loop end to end: MNIST learns in one epoch, XOR needs a
//! non-linearity, tape models train with the same loop, callbacks and history
//! files work, and a NaN loss stops training with a clear message.

use crate::common;

use common::scratch;
use nn::ndarray::{array, Array1, Array2, ArrayD};
use nn::prelude::*;
use nn::train::{
    Callback, Context, Control, CsvLogger, EarlyStopping, EpochLogs, ModelCheckpoint,
    ScheduleEachEpoch, TrainError,
};

sequential! {
    pub struct Mlp: input(784) {
        hidden: Dense(128, activation = relu),
        Dense(10, activation = softmax),
    }
}

fn silent<'a>() -> FitOptions<'a, f32> {
    FitOptions {
        verbosity: Verbosity::Silent,
        ..Default::default()
    }
}

#[test]
fn one_epoch_on_mnist_reaches_95_percent() {
    // Keras's default batch of 32, Adam at PyTorch's defaults.
    let mnist = Mnist::load_default().expect("MNIST in ../shared/data/mnist");
    let (train, test) = (mnist.train.reshaped(&[784]), mnist.test.reshaped(&[784]));
    let mut model = Mlp::with_seed(0);
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    let history = fit(
        &mut model,
        &mut opt,
        &train,
        FitOptions {
            batch_size: 32,
            ..silent()
        },
    )
    .unwrap();
    assert_eq!(history.epochs.len(), 1);
    let (loss, accuracy) = evaluate(&mut model, &test, 1000, Loss::SparseCategoricalCrossEntropy);
    assert!(accuracy >= 0.95, "test accuracy {accuracy} (loss {loss})");
}

fn xor() -> Dataset<f32> {
    Dataset::new(
        array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]].into_dyn(),
        vec![0, 1, 1, 0],
    )
}

sequential! {
    /// Only affine maps: the composition is affine, so XOR is out of reach.
    pub struct LinearOnly: input(2) {
        Dense(8),
        Dense(8),
        Dense(2, activation = softmax),
    }
}

sequential! {
    pub struct WithRelu: input(2) {
        Dense(8, activation = relu),
        Dense(2, activation = softmax),
    }
}

fn train_xor<M: nn::train::Fit<f32>>(model: &mut M) -> f64 {
    let data = xor();
    let mut opt = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    })
    .unwrap();
    fit(
        model,
        &mut opt,
        &data,
        FitOptions {
            epochs: 300,
            batch_size: 4,
            ..silent()
        },
    )
    .unwrap();
    evaluate(model, &data, 4, Loss::SparseCategoricalCrossEntropy).1
}

#[test]
fn xor_needs_a_non_linearity() {
    // A linear classifier separates at most 3 of the 4 XOR points.
    let linear = train_xor(&mut LinearOnly::with_seed(1));
    assert!(linear <= 0.75, "a linear model got {linear}");
    let relu = train_xor(&mut WithRelu::with_seed(1));
    assert_eq!(relu, 1.0);
}

/// XOR written by hand on the tape, trained by the same loop.
struct TapeXor {
    params: Vec<(String, Param<f32>)>,
}

impl Parameters<f32> for TapeXor {
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f32>)) {
        self.params.visit_params(f);
    }
}

impl TapeModel<f32> for TapeXor {
    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        let t = x.tape();
        let p = |i: usize| t.param(&self.params[i].1);
        x.linear(&p(0), Some(&p(1)))
            .tanh()
            .linear(&p(2), Some(&p(3)))
            .softmax(-1)
    }
}

#[test]
fn a_tape_model_trains_with_the_same_loop() {
    let mut rng = <nn::rand::rngs::StdRng as nn::rand::SeedableRng>::seed_from_u64(3);
    let init = nn::init::Initializer::GlorotUniform;
    let params = vec![
        (
            "w1".to_string(),
            Param::new(init.init::<f32, _>(&[8, 2], &mut rng)),
        ),
        ("b1".to_string(), Param::new(Array1::<f32>::zeros(8))),
        (
            "w2".to_string(),
            Param::new(init.init::<f32, _>(&[2, 8], &mut rng)),
        ),
        ("b2".to_string(), Param::new(Array1::<f32>::zeros(2))),
    ];
    let mut model = OnTape(TapeXor { params });
    assert_eq!(train_xor(&mut model), 1.0);
    let probs = predict(&mut model, xor().inputs(), 2);
    assert_eq!(probs.shape(), &[4, 2]);
}

#[test]
fn a_nan_loss_stops_training_with_a_clear_message() {
    let data = xor();
    let mut model = WithRelu::with_seed(0);
    model.dense.weight.value_mut().fill(f32::NAN);
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let history = fit(
        &mut model,
        &mut opt,
        &data,
        FitOptions {
            epochs: 3,
            batch_size: 2,
            ..silent()
        },
    )
    .unwrap();
    assert!(history.epochs.is_empty());
    // The data is finite: the message blames the model, not the data.
    let reason = history.stopped.expect("stopped");
    assert!(
        reason.starts_with("loss became NaN at epoch 1, batch 1 (samples [")
            && reason.contains("inputs and targets are finite, so the model made it"),
        "{reason}"
    );
}

/// Records the learning rate each epoch ran with.
struct Rates(std::rc::Rc<std::cell::RefCell<Vec<f64>>>);

impl Callback<f32> for Rates {
    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        _ctx: &mut Context<'_, f32>,
    ) -> Result<Control, TrainError> {
        self.0.borrow_mut().push(logs.lr);
        Ok(Control::Continue)
    }
}

#[test]
fn callbacks_checkpoint_log_schedule_and_stop() {
    let dir = scratch("callbacks");
    let data = xor();
    let rates = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut model = WithRelu::with_seed(2);
    let mut opt = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    })
    .unwrap();
    let options = FitOptions {
        epochs: 400,
        batch_size: 4,
        validation: Some(&data),
        callbacks: vec![
            Box::new(ScheduleEachEpoch::new(
                nn::optim::StepLr::new(100, 0.5).unwrap(),
            )),
            Box::new(Rates(rates.clone())),
            Box::new(ModelCheckpoint::best(
                dir.join("best.safetensors"),
                "val_loss",
            )),
            Box::new(CsvLogger::new(dir.join("log.csv"))),
            Box::new(EarlyStopping::new("val_accuracy", 20)),
        ],
        ..silent()
    };
    let history = fit(&mut model, &mut opt, &data, options).unwrap();

    // Accuracy reaches 1.0 and cannot improve further: early stopping after 20 epochs.
    let n = history.epochs.len();
    assert!(n < 400, "early stopping never fired");
    assert!(history
        .stopped
        .as_deref()
        .unwrap()
        .starts_with("early stopping: val_accuracy did not improve for 20 epochs"));
    // StepLR(100, 0.5): epochs 1-100 at 0.05, 101-200 at 0.025, …
    let rates = rates.borrow();
    assert_eq!(rates[0], 0.05);
    if n > 100 {
        assert_eq!(rates[100], 0.025);
    }
    // The CSV log has a header and one row per epoch.
    let csv = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    assert_eq!(csv.lines().count(), n + 1);
    assert!(
        csv.starts_with("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds,samples_per_sec\n")
    );
    // The checkpoint holds the best val_loss weights (and the optimizer state).
    let best = history
        .epochs
        .iter()
        .map(|e| e.val_loss.unwrap())
        .fold(f64::INFINITY, f64::min);
    let mut restored = WithRelu::with_seed(99);
    restored.load(dir.join("best.safetensors")).unwrap();
    let (loss, _) = evaluate(&mut restored, &data, 4, Loss::SparseCategoricalCrossEntropy);
    assert!(
        (loss - best).abs() < 1e-6,
        "checkpoint loss {loss} vs best {best}"
    );
    assert!(dir.join("best.optim.safetensors").is_file());
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn history_saves_as_csv_json_png_and_svg() {
    let dir = scratch("history");
    let data = xor();
    let mut model = WithRelu::with_seed(0);
    let mut opt = Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    })
    .unwrap();
    let history = fit(
        &mut model,
        &mut opt,
        &data,
        FitOptions {
            epochs: 5,
            batch_size: 2,
            validation: Some(&data),
            ..silent()
        },
    )
    .unwrap();
    history.save_csv(dir.join("h.csv")).unwrap();
    history.save_json(dir.join("h.json")).unwrap();
    history.plot(dir.join("h.png")).unwrap();
    history.plot(dir.join("h.svg")).unwrap();
    // Another name would get PNG bytes it does not announce: refused.
    for name in ["h.jpg", "h"] {
        let e = history.plot(dir.join(name)).unwrap_err().to_string();
        assert!(e.contains("name the file .png or .svg"), "{name}: {e}");
        assert!(!dir.join(name).exists());
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("h.csv"))
            .unwrap()
            .lines()
            .count(),
        6
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("h.json")).unwrap()).unwrap();
    assert_eq!(json["epochs"].as_array().unwrap().len(), 5);
    assert_eq!(json["epochs"][4]["epoch"], 5);
    let png = std::fs::read(dir.join("h.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.join("h.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("val_loss") && svg.contains("accuracy"));
    // An unwritable path is an error naming it.
    let err = history.save_csv(dir.join("no/such/dir/h.csv")).unwrap_err();
    assert!(err.to_string().contains("no/such/dir/h.csv"), "{err}");
}

#[test]
fn a_one_epoch_history_plots_a_dot_per_series() {
    // A line through one point draws nothing; each epoch is also a dot.
    let epoch = EpochLogs {
        epoch: 1,
        loss: 0.36,
        metrics: vec![("accuracy".into(), 0.90)],
        val_loss: Some(0.19),
        val_metrics: vec![("val_accuracy".into(), 0.94)],
        ..Default::default()
    };
    let history = nn::train::History {
        epochs: vec![epoch],
        stopped: None,
    };
    let path = std::env::temp_dir().join(format!("nn-one-epoch-{}.svg", std::process::id()));
    history.plot(&path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // Two panels (loss, accuracy), each with a training and a validation dot.
    assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
}

#[test]
fn predict_and_evaluate_leave_the_model_in_its_mode() {
    let mut model = WithRelu::with_seed(4);
    let data = xor();
    for training in [false, true] {
        model.set_training(training);
        let _ = predict(&mut model, data.inputs().view(), 2);
        assert_eq!(model.is_training(), training, "after predict");
        let _ = evaluate(&mut model, &data, 2, Loss::CrossEntropy);
        assert_eq!(model.is_training(), training, "after evaluate");
    }
}

#[test]
#[should_panic(expected = "evaluate: the data holds no samples")]
fn evaluating_no_samples_panics_rather_than_reporting_zeros() {
    let mut model = WithRelu::with_seed(4);
    let _ = evaluate(&mut model, &xor().slice(0..0), 2, Loss::CrossEntropy);
}

#[test]
fn predicting_no_samples_gives_outputs_of_no_rows() {
    // As a PyTorch module gives for an empty batch: `[0, outputs]`.
    let mut model = Mlp::with_seed(0);
    let none = ArrayD::<f32>::zeros(nn::ndarray::IxDyn(&[0, 784]));
    assert_eq!(predict(&mut model, none.view(), 32).shape(), [0, 10]);
}

#[test]
fn predict_batches_and_keeps_order() {
    let mut model = WithRelu::with_seed(4);
    let x: ArrayD<f32> =
        Array2::from_shape_fn((10, 2), |(i, j)| (i * 2 + j) as f32 / 10.0).into_dyn();
    let whole = model.predict(x.view());
    let batched = predict(&mut model, x.view(), 3);
    assert_eq!(whole, batched);
}

/// Keras's `ModelCheckpoint("w.{epoch:02d}-{val_loss:.2f}")`: a file per
/// epoch, named from the epoch's logs (expected names formatted by hand from
/// the History, as Python's `str.format` writes them); a name the run cannot
/// fill is refused before training.
#[test]
fn checkpoint_file_names_hold_the_epoch_and_metrics() {
    let dir = scratch("checkpoint_names");
    let data = xor();
    let template = dir.join("w.{epoch:02d}-{val_loss:.3f}.safetensors");
    let options = FitOptions {
        epochs: 3,
        batch_size: 4,
        validation: Some(&data),
        callbacks: vec![Box::new(ModelCheckpoint::every_epoch(&template))],
        ..silent()
    };
    let mut model = WithRelu::with_seed(2);
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    let history = fit(&mut model, &mut opt, &data, options).unwrap();
    for e in &history.epochs {
        let name = format!("w.{:02}-{:.3}", e.epoch, e.val_loss.unwrap());
        assert!(dir.join(format!("{name}.safetensors")).is_file(), "{name}");
        assert!(
            dir.join(format!("{name}.optim.safetensors")).is_file(),
            "{name}"
        );
    }
    // The last epoch's file holds the final weights.
    let last = history.epochs.last().unwrap();
    let mut restored = WithRelu::with_seed(99);
    restored
        .load(dir.join(format!("w.03-{:.3}.safetensors", last.val_loss.unwrap())))
        .unwrap();
    let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]].into_dyn();
    assert_eq!(restored.predict(x.view()), model.predict(x.view()));

    // Weights only (Keras's save_weights_only): no optimizer file beside.
    let lean = dir.join("lean");
    let options = FitOptions {
        epochs: 1,
        batch_size: 4,
        callbacks: vec![Box::new(
            ModelCheckpoint::every_epoch(lean.join("w.safetensors")).weights_only(),
        )],
        ..silent()
    };
    fit(
        &mut WithRelu::with_seed(2),
        &mut Adam::new(AdamConfig::default()).unwrap(),
        &data,
        options,
    )
    .unwrap();
    assert!(lean.join("w.safetensors").is_file());
    assert!(!lean.join("w.optim.safetensors").exists());

    // A field in a directory's name: a directory per epoch, none named
    // after the field.
    let options = FitOptions {
        epochs: 2,
        callbacks: vec![Box::new(ModelCheckpoint::every_epoch(
            dir.join("run{epoch}").join("w.safetensors"),
        ))],
        ..silent()
    };
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    fit(&mut WithRelu::with_seed(2), &mut opt, &data, options).unwrap();
    assert!(dir.join("run1/w.safetensors").is_file() && dir.join("run2/w.safetensors").is_file());
    assert!(!dir.join("run{epoch}").exists());

    // `val_mae` is never logged; `{epoch:x}` is no format.
    for (bad, says) in [
        ("w{val_mae}.safetensors", "monitors `val_mae`"),
        ("w{epoch:x}.safetensors", "the format is not"),
    ] {
        let options = FitOptions {
            epochs: 1,
            validation: Some(&data),
            callbacks: vec![Box::new(ModelCheckpoint::every_epoch(dir.join(bad)))],
            ..silent()
        };
        let mut opt = Adam::new(AdamConfig::default()).unwrap();
        let e = fit(&mut WithRelu::with_seed(2), &mut opt, &data, options)
            .expect_err("refused")
            .to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}
