//! Per-batch control inside `fit`: callbacks around every batch with the
//! gradients before the step, gradient clipping and a per-step warm-up
//! schedule (bit for bit what a hand-written loop does), a train step of
//! the user's own (`fit_custom`), and misconfiguration refused when `fit`
//! starts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::common::scripted::{check_rerun, state, Scripted, Snapshots, State};
use nn::ndarray::{ArrayD, IxDyn};
use nn::optim::{
    clip_grad_norm, clip_grad_value, CosineAnnealing, ExponentialLr, LrScheduler, Warmup,
};
use nn::prelude::*;
use nn::train::{
    fit_custom, BatchLogs, Callback, Context, EarlyStopping, ModelCheckpoint, ScheduleEachEpoch,
    TrainError, TrainStep,
};

sequential! {
    struct Net: input(4) { Dense(16, activation = relu), Dense(3) }
}

sequential! {
    struct SoftmaxNet: input(4) { Dense(16, activation = relu), Dense(3, activation = softmax) }
}

sequential! {
    /// With BatchNorm's running statistics: buffers besides the weights.
    struct BnNet: input(4) { Dense(16), bn: BatchNorm, ReLU, Dense(3) }
}

fn data(n: usize) -> Dataset<f32> {
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 4]), |i| {
        (((i[0] * 4 + i[1]) * 7919) % 97) as f32 / 24.0 - 2.0
    });
    let labels = (0..n).map(|i| (i * 5) % 3).collect();
    Dataset::new(x, labels)
}

fn params<P: Parameters<f32> + ?Sized>(m: &P) -> BTreeMap<String, ArrayD<f32>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        out.insert(n.to_string(), p.value().clone());
    });
    out
}

fn adam() -> Adam<f32> {
    Adam::new(AdamConfig {
        lr: 0.05,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn clipping_and_a_warmup_schedule_in_fit_match_a_hand_written_loop_bit_for_bit() {
    let train = data(50);
    let (epochs, batch) = (3, 8);
    let schedule = || Warmup::new(5, 0.1, CosineAnnealing::new(14, 0.0).unwrap()).unwrap();
    let mut model = Net::with_seed(1);
    let mut opt = adam();
    let lrs = Rc::new(RefCell::new(Vec::new()));
    let history = fit(
        &mut model,
        &mut opt,
        &train,
        FitOptions {
            epochs,
            batch_size: batch,
            loss: Loss::CrossEntropy.into(),
            clip_grad_norm: Some(0.5),
            clip_grad_value: Some(0.02),
            lr_schedule: Some(Box::new(schedule())),
            callbacks: vec![Box::new(RecordLr(lrs.clone()))],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();

    // The same run by hand: PyTorch's order — forward, backward, clip, step,
    // then the scheduler's step.
    let mut hand = Net::with_seed(1);
    let mut opt2 = adam();
    let mut scheduler = LrScheduler::new(schedule(), &mut opt2);
    let mut hand_lrs = Vec::new();
    for epoch in 0..epochs {
        let seed = nn::data::epoch_seed(0, epoch);
        let mut batches = train.batches(batch, Some(seed), false);
        while let Some((x, y)) = batches.next_batch() {
            hand_lrs.push(opt2.learning_rate());
            hand.forward_train(x);
            hand.backward_loss(Loss::CrossEntropy, &y);
            clip_grad_norm(&hand, 0.5);
            clip_grad_value(&hand, 0.02);
            opt2.step(&hand);
            opt2.zero_grad(&hand);
            scheduler.step(&mut opt2);
        }
    }
    assert_eq!(params(&model), params(&hand));
    assert_eq!(*lrs.borrow(), hand_lrs);
    assert_eq!(hand_lrs.len(), 21);
    assert!(hand_lrs[0] < hand_lrs[5], "warm-up rises: {hand_lrs:?}");
    assert_eq!(history.epochs.len(), 3);
}

/// Records the learning rate of every batch.
struct RecordLr(Rc<RefCell<Vec<f64>>>);

impl Callback<f32> for RecordLr {
    fn on_train_batch_begin(
        &mut self,
        batch: &BatchLogs,
        ctx: &mut Context<'_, f32>,
    ) -> Result<(), TrainError> {
        assert_eq!(batch.lr, ctx.optimizer.learning_rate());
        self.0.borrow_mut().push(batch.lr);
        Ok(())
    }
}

/// Logs the gradient norm before each step, and what each hook saw.
#[derive(Default)]
struct GradientLog {
    events: Vec<String>,
    norms: Vec<f64>,
}

/// The callback `fit` owns, sharing its log with the test.
struct Shared(Rc<RefCell<GradientLog>>);

impl Callback<f32> for Shared {
    fn on_train_batch_begin(
        &mut self,
        b: &BatchLogs,
        _: &mut Context<'_, f32>,
    ) -> Result<(), TrainError> {
        self.0
            .borrow_mut()
            .events
            .push(format!("begin {}.{} step {}", b.epoch, b.batch, b.step));
        Ok(())
    }

    fn on_before_optimizer_step(
        &mut self,
        b: &BatchLogs,
        ctx: &mut Context<'_, f32>,
    ) -> Result<(), TrainError> {
        let mut sum = 0.0;
        ctx.params.visit_params(&mut |_, p| {
            let g = p.grad();
            sum += g
                .as_ref()
                .expect("a gradient before the step")
                .mapv(|v| f64::from(v * v))
                .sum();
        });
        let mut log = self.0.borrow_mut();
        log.norms.push(sum.sqrt());
        log.events
            .push(format!("grads loss {}", b.loss.is_finite()));
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        b: &BatchLogs,
        ctx: &mut Context<'_, f32>,
    ) -> Result<nn::train::Control, TrainError> {
        let mut zeroed = true;
        ctx.params.visit_params(&mut |_, p| {
            zeroed &= p
                .grad()
                .as_ref()
                .is_none_or(|g| g.iter().all(|&v| v == 0.0));
        });
        self.0
            .borrow_mut()
            .events
            .push(format!("end {} zeroed {zeroed}", b.size));
        Ok(nn::train::Control::Continue)
    }
}

#[test]
fn batch_hooks_run_in_order_and_see_the_gradients_before_the_step() {
    let log = Rc::new(RefCell::new(GradientLog::default()));
    let mut model = Net::with_seed(2);
    fit(
        &mut model,
        &mut adam(),
        &data(20),
        FitOptions {
            epochs: 2,
            batch_size: 8,
            loss: Loss::CrossEntropy.into(),
            callbacks: vec![Box::new(Shared(log.clone()))],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let log = log.borrow();
    assert_eq!(
        log.events[..6],
        [
            "begin 1.0 step 0",
            "grads loss true",
            "end 8 zeroed true",
            "begin 1.1 step 1",
            "grads loss true",
            "end 8 zeroed true",
        ]
    );
    assert_eq!(log.events[8], "end 4 zeroed true", "the last batch holds 4");
    assert_eq!(log.events[9], "begin 2.0 step 3");
    assert_eq!(log.norms.len(), 6);
    assert!(log.norms.iter().all(|&n| n > 0.0));
}

#[test]
fn misconfiguration_is_an_error_when_fit_starts() {
    let train = data(12);
    let run = |data: &Dataset<f32>, options: FitOptions<'_, f32>| {
        let mut model = Net::with_seed(0);
        let before = params(&model);
        let err = fit(&mut model, &mut adam(), data, options).expect_err("refused");
        assert_eq!(params(&model), before, "nothing trained before the error");
        err.to_string()
    };
    let quiet = || FitOptions::<f32> {
        loss: Loss::CrossEntropy.into(),
        verbosity: Verbosity::Silent,
        ..Default::default()
    };

    let e = run(
        &train,
        FitOptions {
            validation: Some(&train),
            callbacks: vec![Box::new(EarlyStopping::new("val_acc", 2))],
            ..quiet()
        },
    );
    assert!(
        e.contains("`val_acc`") && e.contains("did you mean `val_accuracy`?"),
        "{e}"
    );

    let e = run(
        &train,
        FitOptions {
            callbacks: vec![Box::new(ModelCheckpoint::best(
                "/nonexistent/w.safetensors",
                "val_loss",
            ))],
            ..quiet()
        },
    );
    assert!(e.contains("`val_loss`, which this run never logs"), "{e}");

    // A softmax before a loss that applies its own.
    let mut model = SoftmaxNet::with_seed(0);
    let e = fit(&mut model, &mut adam(), &train, quiet())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("takes logits (it applies its own softmax), but the model's outputs for the first sample sum to 1")
            && e.contains("Loss::SparseCategoricalCrossEntropy (labels)"),
        "{e}"
    );
    let fine = FitOptions {
        loss: Loss::SparseCategoricalCrossEntropy.into(),
        epochs: 1,
        ..quiet()
    };
    assert!(fit(&mut model, &mut adam(), &train, fine).is_ok());

    // A per-step schedule would overwrite an epoch schedule's rate.
    let e = run(
        &train,
        FitOptions {
            lr_schedule: Some(Box::new(ExponentialLr { gamma: 0.9 })),
            callbacks: vec![Box::new(ScheduleEachEpoch::new(ExponentialLr {
                gamma: 0.5,
            }))],
            ..quiet()
        },
    );
    assert!(
        e.contains(
            "`lr_schedule` sets the learning rate at every step, so a callback that sets it (ScheduleEachEpoch"
        ),
        "{e}"
    );

    let e = run(&train.slice(0..0), quiet());
    assert_eq!(e, "fit: the training data holds no samples");

    let e = run(
        &train,
        FitOptions {
            batch_size: 0,
            ..quiet()
        },
    );
    assert_eq!(e, "fit: batch_size must be at least 1");

    let e = run(
        &train,
        FitOptions {
            loss: Loss::Mse.into(),
            ..quiet()
        },
    );
    assert!(
        e.contains("the loss mse needs target values, but the data holds class labels (0..3)"),
        "{e}"
    );

    let five = Dataset::new(train.inputs().to_owned(), (0..12).map(|i| i % 5).collect());
    let e = run(&five, quiet());
    assert!(
        e.contains("the model outputs [3] per sample, but the training labels name 5 classes"),
        "{e}"
    );

    let values = Dataset::with_values(train.inputs().to_owned(), ArrayD::zeros(IxDyn(&[12, 2])));
    let e = run(
        &values,
        FitOptions {
            loss: Loss::Mse.into(),
            ..quiet()
        },
    );
    assert!(
        e.contains("the model outputs [3] per sample, but the training targets are [2] per sample"),
        "{e}"
    );

    let e = run(
        &values,
        FitOptions {
            loss: Loss::CrossEntropy.into(),
            ..quiet()
        },
    );
    assert!(
        e.contains("needs integer class labels, but the data holds target values of shape [2]"),
        "{e}"
    );

    // Samples of another shape than the model's `input(4)`, for training or
    // for validation, and validation labels the model cannot output: refused
    // before the first epoch, not found after it.
    let wide = Dataset::new(ArrayD::zeros(IxDyn(&[12, 5])), vec![0; 12]);
    let e = run(&wide, quiet());
    assert!(
        e.contains("the training data's samples are [5], but the model takes [4]"),
        "{e}"
    );
    let e = run(
        &train,
        FitOptions {
            validation: Some(&wide),
            ..quiet()
        },
    );
    assert!(
        e.contains("the validation data's samples are [5], but the model takes [4]"),
        "{e}"
    );
    let e = run(
        &train,
        FitOptions {
            validation: Some(&five),
            ..quiet()
        },
    );
    assert!(
        e.contains("but the validation labels name 5 classes"),
        "{e}"
    );

    for (norm, value) in [(Some(-1.0), None), (None, Some(f64::NAN))] {
        let e = run(
            &train,
            FitOptions {
                clip_grad_norm: norm,
                clip_grad_value: value,
                ..quiet()
            },
        );
        assert!(e.contains("must be at least 0"), "{e}");
    }

    // Logits where the loss takes probabilities (`Net` ends with a linear
    // layer): trained as they were, they would give a loss of clipped logs.
    let e = run(
        &train,
        FitOptions {
            loss: Loss::SparseCategoricalCrossEntropy.into(),
            ..quiet()
        },
    );
    assert!(
        e.contains("takes probabilities, but the model outputs")
            && e.contains("train on logits with Loss::CrossEntropy"),
        "{e}"
    );

    // Every batch dropped: nothing would train.
    let e = run(
        &train,
        FitOptions {
            batch_size: 16,
            drop_last: true,
            ..quiet()
        },
    );
    assert!(
        e.contains("drop_last with 12 training samples and batches of 16"),
        "{e}"
    );

    // A checkpoint whose directory cannot be made: before the first epoch.
    let blocker = std::env::temp_dir().join(format!("nn-fit-control-{}", std::process::id()));
    std::fs::write(&blocker, b"a file").unwrap();
    let e = run(
        &train,
        FitOptions {
            callbacks: vec![Box::new(ModelCheckpoint::every_epoch(
                blocker.join("w.safetensors"),
            ))],
            ..quiet()
        },
    );
    std::fs::remove_file(&blocker).unwrap();
    assert!(e.contains(&blocker.display().to_string()), "{e}");
}

/// A step of the user's: two models trained in turns with their own
/// optimizers, as a GAN alternates generator and discriminator.
struct TwoPlayers {
    a: Net,
    b: Net,
    opt_a: Adam<f32>,
    opt_b: Adam<f32>,
}

impl TrainStep<f32> for TwoPlayers {
    fn train_step(
        &mut self,
        x: nn::ndarray::ArrayViewD<'_, f32>,
        target: &Target<'_, f32>,
    ) -> Vec<(String, f32)> {
        self.a.forward_train(x.view());
        let la = self.a.backward_loss(Loss::CrossEntropy, target);
        self.opt_a.step(&self.a);
        self.opt_a.zero_grad(&self.a);
        self.b.forward_train(x);
        let lb = self.b.backward_loss(Loss::CrossEntropy, target);
        self.opt_b.step(&self.b);
        self.opt_b.zero_grad(&self.b);
        vec![
            ("loss".into(), la + lb),
            ("a_loss".into(), la),
            ("b_loss".into(), lb),
        ]
    }

    fn test_step(
        &mut self,
        x: nn::ndarray::ArrayViewD<'_, f32>,
        target: &Target<'_, f32>,
    ) -> Vec<(String, f32)> {
        let (la, _) = Loss::CrossEntropy.value_and_grad(self.a.predict(x).view(), target);
        vec![("loss".into(), la)]
    }

    fn parts(&mut self) -> (&dyn Parameters<f32>, &mut dyn Optimizer<f32>) {
        (&self.a, &mut self.opt_a)
    }
}

#[test]
fn a_custom_train_step_gets_epochs_logging_validation_and_callbacks() {
    let train = data(40);
    let mut step = TwoPlayers {
        a: Net::with_seed(3),
        b: Net::with_seed(4),
        opt_a: adam(),
        opt_b: adam(),
    };
    let history = fit_custom(
        &mut step,
        &train,
        FitOptions {
            epochs: 4,
            batch_size: 10,
            validation: Some(&train),
            callbacks: vec![Box::new(EarlyStopping::new("val_loss", 10))],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let first = &history.epochs[0];
    let sum = first.get("a_loss").unwrap() + first.get("b_loss").unwrap();
    assert!(
        (first.loss - sum).abs() < 1e-5,
        "loss is the sum of its parts"
    );
    assert!(first.val_loss.is_some());
    let a = history.metric("a_loss");
    assert!(a[3] < a[0], "player a learns: {a:?}");

    // A monitored name the step never returns is refused after its first batch.
    let err = fit_custom(
        &mut step,
        &train,
        FitOptions {
            callbacks: vec![Box::new(EarlyStopping::new("a_los", 1))],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("did you mean `a_loss`?"), "{err}");

    // The step owns its loss and clipping: setting them is a mistake.
    let err = fit_custom(
        &mut step,
        &train,
        FitOptions {
            clip_grad_norm: Some(1.0),
            lr_schedule: Some(Box::new(ExponentialLr { gamma: 0.9 })),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");

    // And its optimizer's step: fit_custom cannot shard it.
    let err = fit_custom(
        &mut step,
        &train,
        FitOptions {
            shard_optimizer: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot split it"), "{err}");
}

#[test]
fn a_nan_in_the_data_stops_fit_naming_the_sample() {
    let train = data(40);
    let mut x = train.inputs().to_owned();
    x[[23, 2]] = f32::NAN;
    let poisoned = Dataset::new(x, train.labels().to_vec());
    let history = fit(
        &mut Net::with_seed(0),
        &mut adam(),
        &poisoned,
        FitOptions {
            loss: Loss::CrossEntropy.into(),
            batch_size: 8,
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let reason = history.stopped.expect("stopped");
    assert!(reason.contains("the input of sample 23 is NaN"), "{reason}");
    assert!(history.epochs.is_empty());

    // The same NaN in the validation data stops after the first epoch.
    let history = fit(
        &mut Net::with_seed(0),
        &mut adam(),
        &train,
        FitOptions {
            loss: Loss::CrossEntropy.into(),
            validation: Some(&poisoned),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let reason = history.stopped.expect("stopped");
    assert!(
        reason.contains(
            "validation loss became NaN at epoch 1: the input of validation sample 23 is NaN"
        ),
        "{reason}"
    );
    // The epoch trained, so its logs stay: the training loss finite, the
    // validation loss as it came out.
    assert_eq!(history.epochs.len(), 1);
    assert!(history.epochs[0].loss.is_finite());
    assert!(history.epochs[0].val_loss.is_some_and(f64::is_nan));

    // Finite data and a rate far too large: the training's fault, said so.
    let mut huge = Sgd::new(SgdConfig {
        lr: 1e30,
        ..Default::default()
    })
    .unwrap();
    let history = fit(
        &mut Net::with_seed(0),
        &mut huge,
        &train,
        FitOptions {
            loss: Loss::CrossEntropy.into(),
            epochs: 3,
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let reason = history.stopped.expect("stopped");
    assert!(
        reason.contains("inputs and targets are finite, so the model made it (training diverged"),
        "{reason}"
    );
}

/// `fit` of a fresh [`BnNet`] on 24 samples, watched by EarlyStopping
/// (patience 2, restoring the best weights when `restore`) on a metric that
/// reports `values[e]` in epoch `e`; checkpointing to and resuming from `dir`
/// when given. The History, the state it ends with and each epoch's.
fn scripted_fit(
    values: &[f64],
    epochs: usize,
    restore: bool,
    dir: Option<&std::path::Path>,
) -> (nn::train::History, State<f32>, Vec<State<f32>>) {
    let done = Rc::new(RefCell::new(Vec::new()));
    let mut stop = EarlyStopping::new("scripted_loss", 2);
    if restore {
        stop = stop.restore_best_weights();
    }
    let mut model = BnNet::with_seed(0);
    let history = fit(
        &mut model,
        &mut adam(),
        &data(24),
        FitOptions {
            epochs,
            batch_size: 8,
            loss: Loss::CrossEntropy.into(),
            metrics: vec![Box::new(Scripted {
                values: values.to_vec(),
                done: done.clone(),
            })],
            callbacks: vec![Box::new(stop), Box::new(Snapshots(done.clone()))],
            checkpoint_dir: dir.map(|d| d.to_path_buf()),
            resume_from: dir.map(|d| d.to_path_buf()),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let snapshots = done.borrow().clone();
    (history, state(&model), snapshots)
}

/// Keras's `EarlyStopping(restore_best_weights=True)`: the weights of the
/// epoch with the best value, whether a stop ended training or the epochs
/// ran out; without it, the last epoch's.
#[test]
fn early_stopping_restores_the_best_epochs_weights_when_asked() {
    let run =
        |values: &[f64], epochs: usize, restore: bool| scripted_fit(values, epochs, restore, None);
    // Best in epoch 2 (0.3); two epochs without improvement stop after epoch 4.
    let falls_then_rises = [0.5, 0.3, 0.4, 0.45, 0.5, 0.6];
    let (history, weights, epochs) = run(&falls_then_rises, 6, true);
    assert_eq!(history.epochs.len(), 4);
    let reason = history.stopped.unwrap();
    assert!(
        reason.ends_with("restoring the weights of epoch 2"),
        "{reason}"
    );
    assert_eq!(weights, epochs[1]);
    assert_ne!(epochs[1], epochs[3]);
    // The running statistics come back too, as Keras's get_weights holds them.
    let (best, last) = (
        &epochs[1]["buffer bn.running_mean"],
        &epochs[3]["buffer bn.running_mean"],
    );
    assert_ne!(best, last);
    assert_eq!(&weights["buffer bn.running_mean"], best);
    let (_, weights, epochs) = run(&falls_then_rises, 6, false);
    assert_eq!(weights, epochs[3], "without restoring: the last epoch's");
    // The epochs run out before the patience does: still the best epoch's.
    let (history, weights, epochs) = run(&[0.5, 0.3, 0.4], 3, true);
    assert_eq!((history.epochs.len(), history.stopped), (3, None));
    assert_eq!(weights, epochs[1]);
}

/// Running a finished run again (`resume_from` its own checkpoints) trains
/// nothing. After an early stop it leaves the model as the first run left
/// it, with EarlyStopping's restored best, not the last epoch's weights
/// that epoch's checkpoint held. A run whose epochs ran out keeps its last
/// epoch's weights in the checkpoint, so that resuming it with more epochs
/// goes on exactly; running it again with the same epochs gives those.
#[test]
fn running_a_finished_run_again_gives_its_restored_weights_after_a_stop() {
    check_rerun("fit_rerun", |values, epochs, dir| {
        scripted_fit(values, epochs, true, Some(dir))
    });
}

/// A stop asked for inside an epoch leaves the checkpoint of the epoch
/// before it as it was: the run's end writes none over it with the weights
/// the unfinished epoch trained.
#[test]
fn a_stop_inside_an_epoch_keeps_the_last_epochs_checkpoint() {
    struct StopAtStep(usize);
    impl Callback<f32> for StopAtStep {
        fn on_train_batch_end(
            &mut self,
            logs: &BatchLogs,
            _: &mut Context<'_, f32>,
        ) -> Result<nn::train::Control, TrainError> {
            Ok(match logs.step == self.0 {
                true => nn::train::Control::Stop("asked".into()),
                false => nn::train::Control::Continue,
            })
        }
    }
    let train = data(24);
    let dir = std::env::temp_dir().join(format!("nn_stop_inside_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let done = Rc::new(RefCell::new(Vec::new()));
    let mut model = BnNet::with_seed(0);
    // Three batches an epoch: step 4 is the second of epoch 2.
    let history = fit(
        &mut model,
        &mut adam(),
        &train,
        FitOptions {
            epochs: 3,
            batch_size: 8,
            loss: Loss::CrossEntropy.into(),
            callbacks: vec![Box::new(Snapshots(done.clone())), Box::new(StopAtStep(4))],
            checkpoint_dir: Some(dir.clone()),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(history.stopped.as_deref(), Some("asked"));
    let snapshots = done.borrow().clone();
    assert_eq!(snapshots.len(), 1);
    let checkpoint = nn::train::Checkpoint::<f32>::load(&dir)
        .unwrap()
        .expect("written");
    assert_eq!((checkpoint.epoch, checkpoint.step), (1, 3));
    assert_eq!(checkpoint.history.stopped, None);
    // Epoch 1's weights and buffers, every one of them.
    assert_eq!(checkpoint.model.len(), snapshots[0].len());
    for (name, value) in &checkpoint.model {
        let kept = (snapshots[0].get(name))
            .or_else(|| snapshots[0].get(&format!("buffer {name}")))
            .unwrap_or_else(|| panic!("no `{name}` in the snapshot"));
        assert_eq!(value, kept, "{name}");
    }
    assert_ne!(state(&model), snapshots[0], "the model trained on after it");
    std::fs::remove_dir_all(&dir).unwrap();
}
