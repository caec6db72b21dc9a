//! Data-parallel `fit` (`FitOptions::distributed`) with ranks as threads
//! ([`ThreadGroup`]): an MLP and a CNN trained for 21 SGD steps on two ranks
//! of 64 samples match one process with batches of 128 (f32 to 1e-5: only
//! the order of the batch sums differs), every rank ends with the same
//! weights and logs, and a second run gives the same bits; a checkpointed
//! run resumes on the same number of ranks bit for bit, or on another.
//! Summing in buckets while backward runs gives the bits of one sum after it,
//! and a `sequential!` backward reports each layer's gradients once final.
//! A rank that fails alone (writing its checkpoint, or a callback inside an
//! epoch) fails every rank, and a stop one rank asks for stops them all.
//! `tests/mpi_parity.rs` runs the same checks across processes under `mpirun`.

use crate::common::parallel;

use nn::distributed::{Collective, ThreadGroup};
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use parallel::{check_parity, data, rank_run, Cnn, Mlp};

fn parity<M: nn::Model<f32> + nn::train::Fit<f32>>(ranks: usize, make: fn(u64) -> M) {
    let runs = ThreadGroup::run(ranks, |group| rank_run(make, group));
    let others: Vec<_> = runs[1..]
        .iter()
        .map(|r| {
            (
                r.weights.clone(),
                r.sharded.clone(),
                r.history.epochs[0].loss,
            )
        })
        .collect();
    check_parity(make, &runs[0], &others);
}

#[test]
fn an_mlp_trained_on_two_ranks_matches_one_process() {
    parity(2, Mlp::with_seed);
}

#[test]
fn a_cnn_trained_on_two_ranks_matches_one_process() {
    parity(2, Cnn::with_seed);
}

#[test]
fn an_mlp_trained_on_four_ranks_matches_one_process() {
    parity(4, Mlp::with_seed);
}

#[test]
fn sharded_batches_cover_every_sample_once() {
    let data = data();
    for ranks in [1, 2, 3, 5] {
        let mut seen = vec![0usize; data.len()];
        for rank in 0..ranks {
            let mut b = nn::data::Batches::new(&data, 64, Some(1), false).sharded(rank, ranks);
            let count = b.count();
            let mut batches = 0;
            while b.next_batch().is_some() {
                for &i in b.last_indices() {
                    seen[i] += 1;
                }
                batches += 1;
            }
            assert_eq!(batches, count, "{ranks} ranks");
        }
        // 2597 samples in batches of 64 × ranks: only a final batch with
        // fewer samples than ranks is skipped (never here).
        assert!(seen.iter().all(|&s| s == 1), "{ranks} ranks");
    }
}

/// `epochs` epochs of Adam with batches of 128 on `ranks` ranks (1: one
/// process with the whole batch), checkpointing into and resuming from `dir`
/// when given; rank 0's weights.
fn epochs_on(
    ranks: usize,
    epochs: usize,
    dir: Option<&std::path::Path>,
) -> Vec<(String, nn::ndarray::ArrayD<f32>)> {
    epochs_with(ranks, epochs, dir, false).0
}

/// [`epochs_on`], the optimizer's work split over the ranks when `shard`;
/// rank 0's weights and optimizer state.
fn epochs_with(
    ranks: usize,
    epochs: usize,
    dir: Option<&std::path::Path>,
    shard: bool,
) -> (parallel::Weights, nn::optim::OptimizerState<f32>) {
    use nn::prelude::*;
    let data = data();
    let run = |group: Option<&dyn nn::distributed::Collective>| {
        let mut model = parallel::Mlp::with_seed(0);
        let mut adam = Adam::new(AdamConfig::default()).unwrap();
        fit(
            &mut model,
            &mut adam,
            &data,
            FitOptions {
                epochs,
                batch_size: 128 / ranks,
                loss: Loss::CrossEntropy.into(),
                verbosity: Verbosity::Silent,
                checkpoint_dir: dir.map(|d| d.to_path_buf()),
                resume_from: dir.map(|d| d.to_path_buf()),
                distributed: group,
                shard_optimizer: shard,
                ..Default::default()
            },
        )
        .unwrap();
        (parallel::weights(&model), adam.state())
    };
    if ranks == 1 {
        run(None)
    } else {
        ThreadGroup::run(ranks, |g| run(Some(g))).swap_remove(0)
    }
}

#[test]
fn a_distributed_run_resumes_on_the_same_or_another_number_of_ranks() {
    let full = epochs_on(2, 3, None);
    let base = std::env::temp_dir().join(format!("nn_ddp_resume_{}", std::process::id()));
    let (same, other) = (base.join("same"), base.join("other"));
    let _ = std::fs::remove_dir_all(&base);
    epochs_on(2, 1, Some(&same));
    std::fs::create_dir_all(&other).unwrap();
    let file = nn::train::CHECKPOINT_FILE;
    std::fs::copy(same.join(file), other.join(file)).unwrap();

    // Rank 0 wrote the checkpoint; both ranks read it back.
    assert_eq!(epochs_on(2, 3, Some(&same)), full, "resumed on 2 ranks");
    // One process with the whole batch goes on as the two ranks would have,
    // up to the order of the batch sums.
    let alone = epochs_on(1, 3, Some(&other));
    let d = parallel::largest_difference(&alone, &full);
    assert!(d <= 1e-5, "resumed on 1 rank: {d:e}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn metrics_add_up_over_the_ranks() {
    use nn::prelude::*;
    use nn::train::{MeanAbsoluteError, RootMeanSquaredError};
    // Targets of very different sizes on the two halves of each batch, so
    // averaging the ranks' RMSEs would not give the RMSE of the whole.
    let n = 512;
    let x = nn::ndarray::ArrayD::from_shape_fn(nn::ndarray::IxDyn(&[n, 1, 12, 12]), |i| {
        ((i[0] * 7 + i[2] * 3 + i[3]) % 11) as f32 / 5.0 - 1.0
    });
    let y = nn::ndarray::ArrayD::from_shape_fn(nn::ndarray::IxDyn(&[n, 10]), |i| {
        let scale = if (i[0] % 128) < 64 { 0.1 } else { 10.0 };
        scale * (((i[0] + i[1]) % 5) as f32 - 2.0)
    });
    let data = Dataset::with_values(x, y);
    let run = |ranks: usize, group: Option<&dyn nn::distributed::Collective>| {
        let mut model = parallel::Mlp::with_seed(0);
        let mut sgd = Sgd::new(SgdConfig {
            lr: 1e-3,
            ..Default::default()
        })
        .unwrap();
        let history = fit(
            &mut model,
            &mut sgd,
            &data,
            FitOptions {
                batch_size: 128 / ranks,
                loss: Loss::Mse.into(),
                metrics: vec![
                    Box::new(RootMeanSquaredError::default()),
                    Box::new(MeanAbsoluteError::default()),
                ],
                shuffle_seed: None,
                verbosity: Verbosity::Silent,
                distributed: group,
                ..Default::default()
            },
        )
        .unwrap();
        let e = &history.epochs[0];
        [e.loss, e.get("rmse").unwrap(), e.get("mae").unwrap()]
    };
    let alone = run(1, None);
    let ranks = ThreadGroup::run(2, |g| run(2, Some(g)));
    assert_eq!(ranks[0], ranks[1]);
    for (k, (a, b)) in alone.iter().zip(&ranks[0]).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "value {k}: {a} vs {b}"
        );
    }
}

#[test]
fn ranks_holding_different_data_get_the_same_error_instead_of_hanging() {
    use nn::distributed::Collective;
    use nn::prelude::*;
    let data = data();
    let errors = ThreadGroup::run(2, |group| {
        // Rank 1 holds one sample fewer: it would run out of batches first.
        let mine = data.select(&(0..data.len() - group.rank()).collect::<Vec<_>>());
        let mut model = parallel::Mlp::with_seed(0);
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        fit(
            &mut model,
            &mut sgd,
            &mine,
            FitOptions {
                batch_size: 64,
                loss: Loss::CrossEntropy.into(),
                verbosity: Verbosity::Silent,
                distributed: Some(group),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    });
    for (rank, e) in errors.iter().enumerate() {
        assert!(
            e.contains("disagree on the number of training samples")
                && e.contains(&format!("rank {rank} has {}", data.len() - rank)),
            "{e}"
        );
    }
}

/// A second head used until `both` is switched off after the first step.
#[derive(nn::Module)]
pub struct SecondHeadOnce {
    used: nn::layers::Dense<f32, 144, 10>,
    unused: nn::layers::Dense<f32, 144, 10>,
    #[module(skip)]
    both: std::rc::Rc<std::cell::Cell<bool>>,
}

impl SecondHeadOnce {
    fn new() -> Self {
        use nn::rand::SeedableRng;
        let mut rng = nn::rand::rngs::StdRng::seed_from_u64(3);
        SecondHeadOnce {
            used: nn::layers::Dense::init(&mut rng),
            unused: nn::layers::Dense::init(&mut rng),
            both: std::rc::Rc::new(std::cell::Cell::new(true)),
        }
    }

    fn forward(&self, x: &nn::Var<f32>) -> nn::Var<f32> {
        let x = x.reshape(&[x.shape()[0], 144]);
        match self.both.get() {
            true => &self.used.forward(&x) + &self.unused.forward(&x),
            false => self.used.forward(&x),
        }
    }
}

/// A parameter no rank's backward reached keeps no gradient and is not
/// stepped, as in one process: on two ranks the second head, used in the
/// first step only, stays where that step left it under AdamW's decay.
#[test]
fn a_parameter_no_rank_reached_is_not_stepped() {
    let data = data();
    let unused_moves = ThreadGroup::run(2, |group| {
        let mut model = SecondHeadOnce::new();
        let first = std::rc::Rc::new(std::cell::RefCell::new(None));
        let callback = crate::common::first_step::OffAfterFirstStep {
            name: "unused.weight",
            weight: first.clone(),
            in_use: model.both.clone(),
        };
        let mut opt = nn::optim::AdamW::new::<f32>(nn::optim::AdamWConfig {
            lr: 0.01,
            weight_decay: 0.5,
            ..Default::default()
        })
        .unwrap();
        let small = data.select(&(0..256).collect::<Vec<_>>());
        fit(
            &mut model,
            &mut opt,
            &small,
            FitOptions {
                batch_size: 32,
                loss: Loss::CrossEntropy.into(),
                callbacks: vec![Box::new(callback)],
                verbosity: Verbosity::Silent,
                distributed: Some(group),
                ..Default::default()
            },
        )
        .unwrap();
        let first = first.borrow().clone().unwrap();
        let last = model.unused.weight.value().clone();
        (first, last)
    });
    for (first, last) in unused_moves {
        assert_eq!(first, last, "the second head moved after its last use");
    }
}

/// At the first batch: makes every weight NaN, and on rank 0 alone fails.
struct NanThenFail {
    rank: usize,
}

impl nn::train::Callback<f32> for NanThenFail {
    fn on_train_batch_begin(
        &mut self,
        logs: &nn::train::BatchLogs,
        ctx: &mut nn::train::Context<'_, f32>,
    ) -> Result<(), nn::train::TrainError> {
        if logs.step > 0 {
            return Ok(());
        }
        ctx.params
            .visit_params(&mut |_, p| p.value_mut().fill(f32::NAN));
        match self.rank {
            0 => Err(nn::train::TrainError::Config("rank 0's hook failed".into())),
            _ => Ok(()),
        }
    }
}

/// One rank's hook fails in the batch whose loss is not finite: every rank
/// returns that error (before, rank 0 returned at once and the others
/// waited for it at the end of the run forever).
#[test]
fn a_hook_failing_in_a_non_finite_batch_ends_every_rank() {
    let data = data();
    let errors = ThreadGroup::run(2, |group| {
        fit(
            &mut parallel::Mlp::with_seed(0),
            &mut Sgd::new(SgdConfig::default()).unwrap(),
            &data,
            FitOptions {
                batch_size: 64,
                loss: Loss::CrossEntropy.into(),
                callbacks: vec![Box::new(NanThenFail { rank: group.rank() })],
                verbosity: Verbosity::Silent,
                distributed: Some(group),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    });
    assert!(errors[0].contains("rank 0's hook failed"), "{}", errors[0]);
    assert!(
        errors[1].contains("stopped with an error") && errors[1].contains("rank 1 stops with them"),
        "{}",
        errors[1]
    );
}

nn::sequential! {
    /// Batch norm after a convolution and after a dense layer.
    pub struct BnCnn: input(1, 12, 12) {
        Conv2d(6, kernel = 3),
        BatchNorm,
        ReLU,
        MaxPool2d(2),
        Flatten,
        Dense(32),
        BatchNorm,
        ReLU,
        Dense(10),
    }
}

/// Weights and running statistics after an epoch of `BnCnn` with batches of
/// 128, on one process or shared over two ranks; on the tape when `tape`.
fn batch_norm_run(ranks: usize, sync: bool, tape: bool) -> Vec<(String, nn::ndarray::ArrayD<f32>)> {
    use nn::prelude::*;
    let data = data();
    let run = |group: Option<&dyn nn::distributed::Collective>| {
        let mut sgd = Sgd::new(SgdConfig {
            lr: 0.05,
            momentum: 0.9,
            ..Default::default()
        })
        .unwrap();
        let options = FitOptions {
            batch_size: 128 / ranks,
            loss: Loss::CrossEntropy.into(),
            shuffle_seed: Some(3),
            verbosity: Verbosity::Silent,
            distributed: group,
            sync_batch_norm: sync,
            ..Default::default()
        };
        let model = if tape {
            let mut taped = nn::train::Taped(BnCnn::with_seed(0));
            fit(&mut taped, &mut sgd, &data, options).unwrap();
            taped.0
        } else {
            let mut model = BnCnn::with_seed(0);
            fit(&mut model, &mut sgd, &data, options).unwrap();
            model
        };
        model
            .named_state()
            .into_iter()
            .map(|(n, p)| (n, p.value().clone()))
            .collect::<Vec<_>>()
    };
    if ranks == 1 {
        run(None)
    } else {
        ThreadGroup::run(ranks, |g| run(Some(g))).swap_remove(0)
    }
}

#[test]
fn synchronized_batch_norm_trains_as_one_process_with_the_whole_batch() {
    for tape in [false, true] {
        let alone = batch_norm_run(1, false, tape);
        let synced = batch_norm_run(2, true, tape);
        let d = parallel::largest_difference(&synced, &alone);
        eprintln!("synchronized batch norm vs one process (tape: {tape}): {d:e}");
        assert!(d <= 1e-5, "synchronized (tape: {tape}): {d:e}");
        // Each rank's own statistics (the default) train another model:
        // the comparison above can tell them apart.
        let local = batch_norm_run(2, false, tape);
        let d = parallel::largest_difference(&local, &alone);
        eprintln!("local batch norm vs one process (tape: {tape}): {d:e}");
        assert!(d > 1e-4, "local statistics (tape: {tape}): {d:e}");
    }
}

nn::sequential! {
    pub struct WithDropout: input(1, 12, 12) {
        Flatten,
        Dropout(0.5),
        Dense(10),
    }
}

/// Keeps the training outputs of the first batch it sees.
struct FirstOutputs<'a>(&'a std::sync::Mutex<Option<nn::ndarray::ArrayD<f32>>>);

impl nn::train::Metric<f32> for FirstOutputs<'_> {
    fn name(&self) -> &str {
        "first_outputs"
    }
    fn reset(&mut self) {}
    fn update(&mut self, pred: nn::ndarray::ArrayViewD<'_, f32>, _: &nn::loss::Target<'_, f32>) {
        let mut first = self.0.lock().unwrap();
        first.get_or_insert_with(|| pred.to_owned());
    }
    fn result(&self) -> f64 {
        0.0
    }
}

#[test]
fn each_rank_draws_its_own_dropout_masks() {
    use nn::prelude::*;
    use std::sync::Mutex;
    // Every sample the same: outputs differ between the ranks only if their
    // dropout masks do.
    let same = data().select(&[0; 8]);
    let outputs: Vec<Mutex<Option<nn::ndarray::ArrayD<f32>>>> =
        (0..2).map(|_| Mutex::new(None)).collect();
    ThreadGroup::run(2, |group| {
        use nn::distributed::Collective;
        let mut model = WithDropout::with_seed(0);
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        fit(
            &mut model,
            &mut sgd,
            &same,
            FitOptions {
                batch_size: 4,
                loss: Loss::CrossEntropy.into(),
                metrics: vec![Box::new(FirstOutputs(&outputs[group.rank()]))],
                verbosity: Verbosity::Silent,
                distributed: Some(group),
                ..Default::default()
            },
        )
        .unwrap();
    });
    let (a, b) = (outputs[0].lock().unwrap(), outputs[1].lock().unwrap());
    assert_ne!(*a, *b, "the ranks drew the same masks");
}

sequential! {
    struct Chain: input(6) {
        Dense(5, activation = relu),
        Dropout(0.5),
        Dense(4),
        Dense(3),
    }
}

sequential! {
    /// `Chain` as one layer of a bigger model.
    struct Outer: input(6) {
        Chain -> (3),
        Dense(2),
    }
}

/// Runs `model`'s static backward under a gradient hook: the name of each
/// parameter reported, in order, and its gradient when reported.
fn reports<M: Model<f32>>(
    model: &mut M,
    in_width: usize,
) -> Vec<(String, nn::Param<f32>, ArrayD<f32>)> {
    let x = ArrayD::from_shape_fn(IxDyn(&[8, in_width]), |i| {
        (i[0] * in_width + i[1]) as f32 / 20.0 - 1.0
    });
    let out = model.forward_train(x.view()).shape().to_vec();
    let dy = ArrayD::from_shape_fn(IxDyn(&out), |i| (i[0] + 2 * i[1]) as f32 / 10.0 - 0.5);
    let mut seen = Vec::new();
    let mut hook = |p: &dyn std::any::Any| {
        let p = p
            .downcast_ref::<nn::Param<f32>>()
            .expect("an f32 parameter");
        seen.push((p.clone(), p.grad().clone().expect("a gradient")));
    };
    nn::distributed::with_gradients_ready(&mut hook, || model.backward(dy.view()));
    let named = model.named_params();
    seen.into_iter()
        .map(|(p, g)| {
            let name = named.iter().find(|(_, q)| q.same_as(&p)).unwrap().0.clone();
            (name, p, g)
        })
        .collect()
}

#[test]
fn a_sequential_backward_reports_each_layers_gradients_once_they_are_final() {
    let mut model = Chain::with_seed(1);
    let seen = reports(&mut model, 6);
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    // Last layer first, as backward finishes them; each exactly once.
    assert_eq!(
        names,
        [
            "dense_2.weight",
            "dense_2.bias",
            "dense_1.weight",
            "dense_1.bias",
            "dense.weight",
            "dense.bias"
        ]
    );
    // Nothing changed them afterwards: what a bucket sent was final.
    for (_, p, at_report) in &seen {
        assert_eq!(p.grad().as_ref().unwrap(), at_report);
    }
}

#[test]
fn a_model_inside_another_is_reported_once_as_one_layer() {
    // As a layer, `Chain` could run backward more than once a step (its
    // gradient final only after the last): only the model being trained
    // reports, so the chain's parameters come once, after its whole backward.
    let mut model = Outer::with_seed(1);
    let seen = reports(&mut model, 6);
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert_eq!(&names[..2], ["dense.weight", "dense.bias"]);
    assert!(
        names[2..].iter().all(|n| n.starts_with("chain.")),
        "{names:?}"
    );
}

/// The error `fit` returns on the test data for `options`, made silent
/// and given cross-entropy.
fn fit_error(
    model: &mut Mlp,
    opt: &mut dyn Optimizer<f32>,
    options: FitOptions<'_, f32>,
) -> String {
    let options = FitOptions {
        verbosity: Verbosity::Silent,
        loss: Loss::CrossEntropy.into(),
        ..options
    };
    fit(model, opt, &data(), options).unwrap_err().to_string()
}

#[test]
fn a_bucket_size_that_is_not_a_size_is_a_config_error() {
    for bad in [f64::NAN, -1.0] {
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        let options = FitOptions {
            bucket_mb: bad,
            ..Default::default()
        };
        let err = fit_error(&mut Mlp::with_seed(0), &mut sgd, options);
        assert!(err.contains("bucket_mb must be a size in MiB"), "{err}");
    }
}

/// An SGD epoch of `Mlp` in batches of 64 on two ranks, checkpointing into
/// `checkpoint_dir` and with `callback` when given: each rank's stop reason,
/// or its error.
fn mlp_on_two_ranks(
    checkpoint_dir: Option<&std::path::Path>,
    callback: Option<AtBatchTwo>,
) -> Vec<Result<Option<String>, String>> {
    use nn::prelude::*;
    let data = data();
    ThreadGroup::run(2, |group| {
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        let callbacks: Vec<Box<dyn nn::train::Callback<f32>>> = match &callback {
            Some(c) => vec![Box::new(AtBatchTwo { fail: c.fail })],
            None => Vec::new(),
        };
        fit(
            &mut Mlp::with_seed(0),
            &mut sgd,
            &data,
            FitOptions {
                batch_size: 64,
                loss: Loss::CrossEntropy.into(),
                verbosity: Verbosity::Silent,
                checkpoint_dir: checkpoint_dir.map(|d| d.to_path_buf()),
                callbacks,
                distributed: Some(group),
                ..Default::default()
            },
        )
        .map(|h| h.stopped)
        .map_err(|e| e.to_string())
    })
}

#[test]
fn a_checkpoint_rank_0_cannot_write_stops_every_rank_with_an_error() {
    // A file where the checkpoint directory should be: rank 0, the one that
    // writes, fails; the other must not wait for it at the next sum.
    let file = std::env::temp_dir().join(format!("nn_ddp_file_{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let errors: Vec<String> = mlp_on_two_ranks(Some(&file), None)
        .into_iter()
        .map(|r| r.unwrap_err())
        .collect();
    let _ = std::fs::remove_file(&file);
    parallel::check_failed_together(&errors, &file);
}

/// A root-only callback (as those writing files are) that fails, or asks to
/// stop, at the end of batch 2: only rank 0 runs it.
struct AtBatchTwo {
    fail: bool,
}

impl nn::train::Callback<f32> for AtBatchTwo {
    fn on_train_batch_end(
        &mut self,
        batch: &nn::train::BatchLogs,
        _ctx: &mut nn::train::Context<'_, f32>,
    ) -> Result<nn::train::Control, nn::train::TrainError> {
        match (batch.batch, self.fail) {
            (2, true) => Err(nn::train::TrainError::Config("disk full".into())),
            (2, false) => Ok(nn::train::Control::Stop("enough".into())),
            _ => Ok(nn::train::Control::Continue),
        }
    }

    fn root_only(&self) -> bool {
        true
    }
}

#[test]
fn an_error_or_a_stop_inside_an_epoch_on_rank_0_ends_every_rank() {
    let run = |fail: bool| mlp_on_two_ranks(None, Some(AtBatchTwo { fail }));
    let failed = run(true);
    assert_eq!(failed[0], Err("fit: disk full".to_string()));
    let other = failed[1].as_ref().unwrap_err();
    assert!(
        other.contains("other rank(s) of the data-parallel run stopped with an error"),
        "{other}"
    );
    let stopped = run(false);
    assert_eq!(stopped[0], Ok(Some("enough".to_string())));
    let other = stopped[1].as_ref().unwrap().as_deref().unwrap();
    assert!(
        other.starts_with("another rank of the data-parallel run stopped"),
        "{other}"
    );
}

#[test]
fn a_sharded_optimizer_takes_the_same_steps_and_leaves_and_saves_its_whole_state() {
    // Two ranks: each element of a sum is one addition, so splitting the
    // optimizer's work changes no bit of the weights or of Adam's moments.
    let full = epochs_with(2, 3, None, false);
    let sharded = epochs_with(2, 3, None, true);
    assert!(sharded.0 == full.0, "weights");
    assert!(sharded.1 == full.1, "the optimizer's state, put together");

    // A checkpoint of a sharded run holds the whole state: it resumes
    // sharded or not, to the uninterrupted run's bits.
    let base = std::env::temp_dir().join(format!("nn_zero_resume_{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    let _ = std::fs::remove_dir_all(&base);
    epochs_with(2, 1, Some(&a), true);
    std::fs::create_dir_all(&b).unwrap();
    let file = nn::train::CHECKPOINT_FILE;
    std::fs::copy(a.join(file), b.join(file)).unwrap();
    assert!(
        epochs_with(2, 3, Some(&a), true).0 == full.0,
        "resumed sharded"
    );
    assert!(
        epochs_with(2, 3, Some(&b), false).0 == full.0,
        "resumed unsharded"
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_sharded_optimizer_clips_by_the_norm_of_the_whole_gradient() {
    let data = data();
    let run = |shard: bool| {
        ThreadGroup::run(2, |g| {
            let mut model = Mlp::with_seed(0);
            let mut sgd = Sgd::new(SgdConfig {
                lr: 0.1,
                ..Default::default()
            })
            .unwrap();
            fit(
                &mut model,
                &mut sgd,
                &data,
                FitOptions {
                    batch_size: 64,
                    loss: Loss::CrossEntropy.into(),
                    verbosity: Verbosity::Silent,
                    distributed: Some(g),
                    shard_optimizer: shard,
                    // Below the gradients' norm, so that every step clips.
                    clip_grad_norm: Some(0.05),
                    ..Default::default()
                },
            )
            .unwrap();
            parallel::weights(&model)
        })
        .swap_remove(0)
    };
    // The norm's squares are added in another order: its last bits differ.
    let d = parallel::largest_difference(&run(true), &run(false));
    assert!(d <= 1e-6, "{d:e}");
}

/// One parameter under two names (a shared layer's weight): averaged once
/// and counted once in the norm, sharded or not.
#[test]
fn a_shared_parameter_is_averaged_and_clipped_once_over_the_ranks() {
    for sharded in [false, true] {
        let got = ThreadGroup::run(2, |g| {
            let w = nn::Param::new(ArrayD::<f32>::zeros(IxDyn(&[2])));
            let params = vec![("a.weight", w.clone()), ("b.weight", w.clone())];
            // Rank 0's gradient (3, 0), rank 1's (3, 8): the average (3, 4),
            // whose norm is 5 (not √50, were it counted under both names).
            let mine = if g.rank() == 0 {
                [3.0, 0.0]
            } else {
                [3.0, 8.0]
            };
            *w.grad_mut() = Some(ArrayD::from_shape_vec(IxDyn(&[2]), mine.to_vec()).unwrap());
            let norm = if sharded {
                nn::distributed::average_gradient_shares(g, &params);
                nn::distributed::clip_grad_norm_shares(g, &params, 10.0)
            } else {
                nn::distributed::average_gradients(g, &params);
                nn::optim::clip_grad_norm(&params, 10.0)
            };
            let share = nn::distributed::share_of(g).range(2);
            let own = if sharded { share } else { 0..2 };
            let grad = w.grad().clone().unwrap();
            (norm, own.map(|i| grad[i]).collect::<Vec<f32>>(), g.rank())
        });
        for (norm, grad, rank) in got {
            assert!((norm - 5.0).abs() < 1e-6, "sharded {sharded}: norm {norm}");
            let want: &[f32] = match (sharded, rank) {
                (false, _) => &[3.0, 4.0],
                (true, 0) => &[3.0],
                (true, _) => &[4.0],
            };
            assert_eq!(grad, want, "sharded {sharded}, rank {rank}");
        }
    }
}

/// SGD that does not say it is element-wise (as LAMB or LARS would not be).
struct Layerwise(Sgd<f32>);

impl nn::optim::Optimizer<f32> for Layerwise {
    fn step(&mut self, params: &dyn nn::Parameters<f32>) {
        self.0.step(params)
    }
    fn learning_rate(&self) -> f64 {
        self.0.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) {
        self.0.set_learning_rate(lr)
    }
    fn state(&self) -> nn::optim::OptimizerState<f32> {
        self.0.state()
    }
    fn load_state(
        &mut self,
        state: nn::optim::OptimizerState<f32>,
    ) -> Result<(), nn::optim::OptimError> {
        self.0.load_state(state)
    }
}

#[test]
fn sharding_an_optimizer_that_is_not_element_wise_is_a_config_error() {
    let mut opt = Layerwise(Sgd::new(SgdConfig::default()).unwrap());
    let options = FitOptions {
        shard_optimizer: true,
        ..Default::default()
    };
    let err = fit_error(&mut Mlp::with_seed(0), &mut opt, options);
    assert!(err.contains("element-wise optimizer"), "{err}");
}

#[test]
fn exchanging_shares_gives_every_rank_each_owners_bits() {
    use nn::distributed::Collective;
    // Values whose bits a sum could lose: signed zeros, a subnormal, NaN,
    // infinities; pieces of 7, 1 and 2 values over three ranks (shares of
    // 2, 2, 3; 0, 0, 1; 0, 1, 1 values).
    let want: [Vec<f32>; 3] = [
        vec![
            -0.0,
            0.0,
            1e-42,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -1.5,
        ],
        vec![-0.0],
        vec![2.5, -0.0],
    ];
    let got = ThreadGroup::run(3, |g| {
        let share = nn::distributed::share_of(g);
        // Each rank holds the right values in its shares, garbage elsewhere.
        let mut pieces: Vec<Vec<f32>> = want
            .iter()
            .map(|w| {
                let own = share.range(w.len());
                (0..w.len())
                    .map(|i| if own.contains(&i) { w[i] } else { 7.0 })
                    .collect()
            })
            .collect();
        let mut views: Vec<&mut [f32]> = pieces.iter_mut().map(|p| p.as_mut_slice()).collect();
        g.exchange_shares_f32(&mut views);
        pieces
    });
    let bits = |ps: &[Vec<f32>]| -> Vec<Vec<u32>> {
        ps.iter()
            .map(|p| p.iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    for (rank, pieces) in got.iter().enumerate() {
        assert_eq!(bits(pieces), bits(&want), "rank {rank}");
    }
}

/// A root-only callback whose gradient hook fails at the third batch.
struct HookFailsAtBatchTwo;

impl nn::train::Callback<f32> for HookFailsAtBatchTwo {
    fn on_before_optimizer_step(
        &mut self,
        batch: &nn::train::BatchLogs,
        _ctx: &mut nn::train::Context<'_, f32>,
    ) -> Result<(), nn::train::TrainError> {
        match batch.batch {
            2 => Err(nn::train::TrainError::Config("hook failed".into())),
            _ => Ok(()),
        }
    }

    fn root_only(&self) -> bool {
        true
    }
}

#[test]
fn a_gradient_hook_failing_on_rank_0_of_a_sharded_run_ends_every_rank() {
    // The sharded step (its clipping norm, its exchange) talks to the other
    // rank: rank 0 takes it before returning its error, so neither waits
    // for the other (with threads, a mismatched sum would panic).
    let data = data();
    let results = ThreadGroup::run(2, |g| {
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        fit(
            &mut Mlp::with_seed(0),
            &mut sgd,
            &data,
            FitOptions {
                batch_size: 64,
                loss: Loss::CrossEntropy.into(),
                verbosity: Verbosity::Silent,
                callbacks: vec![Box::new(HookFailsAtBatchTwo)],
                distributed: Some(g),
                shard_optimizer: true,
                clip_grad_norm: Some(1.0),
                ..Default::default()
            },
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
    assert_eq!(results[0], Err("fit: hook failed".to_string()));
    let other = results[1].as_ref().unwrap_err();
    assert!(
        other.contains("other rank(s) of the data-parallel run stopped with an error"),
        "{other}"
    );
}

sequential! {
    /// A hidden layer of two units: its bias is smaller than three ranks,
    /// so one rank's share of it is empty.
    struct Narrow: input(1, 12, 12) {
        Flatten,
        Dense(2, activation = relu),
        Dense(10),
    }
}

/// A rank whose reduce-scatter leaves NaN outside its own block (all that
/// the operation promises), and that counts them.
struct OwnBlockOnly<'g> {
    inner: &'g ThreadGroup<'g>,
    scatters: std::cell::Cell<usize>,
}

impl nn::distributed::Collective for OwnBlockOnly<'_> {
    crate::common::parallel::forward_to_inner!();
    unsafe fn start_reduce_scatter_f32(&self, send: *const f32, recv: *mut f32, counts: &[usize]) {
        let len = counts.iter().sum();
        // SAFETY: the caller's promise; a ThreadGroup sums at once.
        let recv = unsafe {
            self.inner.start_sum_f32(send, recv, len);
            std::slice::from_raw_parts_mut(recv, len)
        };
        let start: usize = counts[..self.rank()].iter().sum();
        let own = start..start + counts[self.rank()];
        for (i, v) in recv.iter_mut().enumerate() {
            if !own.contains(&i) {
                *v = f32::NAN;
            }
        }
        self.scatters.set(self.scatters.get() + 1);
    }
}

#[test]
fn a_sharded_step_uses_only_its_own_block_of_the_sums() {
    // Three ranks, uneven shares and an empty one: were any rank to read
    // another's block, or a bucket's blocks be cut wrong, NaN would reach
    // the weights.
    use nn::distributed::Collective;
    let data = data();
    let run = |shard: bool, bucket_mb: f64| {
        ThreadGroup::run(3, |g| {
            let strict = OwnBlockOnly {
                inner: g,
                scatters: std::cell::Cell::new(0),
            };
            let mut model = Narrow::with_seed(g.rank() as u64);
            let mut adam = Adam::new(AdamConfig::default()).unwrap();
            fit(
                &mut model,
                &mut adam,
                &data,
                FitOptions {
                    batch_size: 40,
                    loss: Loss::CrossEntropy.into(),
                    verbosity: Verbosity::Silent,
                    distributed: Some(&strict),
                    shard_optimizer: shard,
                    bucket_mb,
                    ..Default::default()
                },
            )
            .unwrap();
            (parallel::weights(&model), strict.scatters.get())
        })
    };
    let plain = run(false, 1.0);
    assert_eq!(plain[0].1, 0);
    // One bucket of every parameter, and a bucket for each.
    for bucket_mb in [1.0, 0.0] {
        for (rank, (weights, scatters)) in run(true, bucket_mb).iter().enumerate() {
            assert!(*scatters > 0, "rank {rank} summed by reduce-scatter");
            assert!(
                *weights == plain[0].0,
                "rank {rank}, buckets of {bucket_mb} MiB: the unsharded run's bits"
            );
        }
    }
}

#[test]
fn sharding_a_parameter_not_laid_out_row_major_is_a_config_error() {
    use nn::ndarray::ShapeBuilder;
    let mut model = Mlp::with_seed(0);
    let (name, param) = model.named_params().swap_remove(0);
    let shape = param.shape().to_vec();
    // The same values, stored column-major.
    let column_major = ArrayD::from_shape_fn(IxDyn(&shape).f(), |i| param.value()[&i]);
    *param.value_mut() = column_major;
    let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
    let options = FitOptions {
        shard_optimizer: true,
        ..Default::default()
    };
    let err = fit_error(&mut model, &mut sgd, options);
    assert!(
        err.contains(&format!("parameter `{name}` is laid out otherwise")),
        "{err}"
    );
}

#[test]
fn a_hand_written_sharded_step_clips_and_steps_as_the_whole_one() {
    use nn::distributed::{
        average_gradient_shares, average_gradients, clip_grad_norm_shares, gather_parameters,
        share_of, Collective,
    };
    use nn::optim::clip_grad_norm;
    // Three ranks whose reduce-scatter leaves NaN outside each rank's
    // block: a norm taken over whole gradients would be NaN.
    let x = ArrayD::from_shape_fn(IxDyn(&[6, 1, 12, 12]), |i| {
        ((i[0] * 31 + i[2] * 7 + i[3]) % 13) as f32 / 6.0 - 1.0
    });
    let steps = |sharded: bool| {
        ThreadGroup::run(3, |g| {
            let strict = OwnBlockOnly {
                inner: g,
                scatters: std::cell::Cell::new(0),
            };
            let mut net = Narrow::with_seed(0);
            let mut adam = Adam::new(AdamConfig::default()).unwrap();
            let mut norms = Vec::new();
            for t in 0..4 {
                let mine = x.mapv(|v| v * (1 + g.rank() + t) as f32);
                let out = net.forward_train(mine.view()).to_owned();
                net.backward(out.view());
                if sharded {
                    average_gradient_shares(&strict, &net);
                    norms.push(clip_grad_norm_shares(&strict, &net, 0.1));
                    adam.step_share(&net, share_of(g));
                    gather_parameters(&strict, &net);
                } else {
                    average_gradients(g, &net);
                    norms.push(clip_grad_norm(&net, 0.1));
                    adam.step(&net);
                }
                adam.zero_grad(&net);
            }
            (parallel::weights(&net), norms, strict.scatters.get())
        })
    };
    let (whole, shared) = (steps(false), steps(true));
    assert!(whole[0].1.iter().all(|&n| n > 0.1), "every step clips");
    for (rank, (weights, norms, scatters)) in shared.iter().enumerate() {
        assert!(*scatters > 0, "rank {rank}");
        for (a, b) in norms.iter().zip(&whole[0].1) {
            assert!((a - b).abs() <= 1e-9 * b, "rank {rank}: norm {a} vs {b}");
        }
        // The norms' squares add in another order: the last bits differ.
        let d = parallel::largest_difference(weights, &whole[0].0);
        assert!(d <= 1e-6, "rank {rank}: {d:e}");
    }
}
