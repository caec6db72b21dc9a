//! Data-parallel `fit_graph` (`GraphFitOptions::distributed`) with ranks as
//! threads ([`ThreadGroup`]): a graph of two inputs and two outputs trained
//! on two ranks of 8 samples matches one process with batches of 16 — the
//! weights, the total and per-output losses and accuracies, validation's
//! too — to 1e-12 in f64 (SGD with momentum is linear in the gradients, so
//! only the order of the batch sums differs); every rank ends with the
//! same weights, and a second run gives the same bits. With
//! `sync_batch_norm`, a graph with batch normalization trains as one process
//! with the whole batch; without it, each rank's statistics train another
//! model. A checkpoint written by the two ranks resumes on one process, and
//! ranks set up differently get the same error instead of waiting forever.
//! A graph's backward reports each layer's gradients once final (a shared
//! layer's after its last application, a model used as a node whole, once),
//! and summing them in buckets while backward runs gives the bits of one sum
//! after it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use nn::distributed::{Collective, ThreadGroup};
use nn::ndarray::ArrayD;
use nn::prelude::*;
use nn::train::{fit_graph, GraphData, GraphFitOptions, History, Targets};

use crate::common::graphs::{values, TwoHeads};
use crate::common::parallel::check_failed_together;

functional! {
    /// `TwoHeads` with batch normalization on the first branch.
    #[dtype(f64)]
    pub struct Normalized(a: input(3), b: input(2)) -> (label, value) {
        let za = Dense(5)(a);
        let ha = BatchNorm(activation = relu)(za);
        let hb = Dense(5, activation = tanh)(b);
        let h = Concatenate(ha, hb);
        let label = Dense(3, activation = softmax)(h);
        let value = Dense(1)(hb);
    }
}

/// `n` samples (45: batches of 16 leave a last batch of 13, shared 6 and 7,
/// so the ranks' means must be weighted by their samples).
fn data(n: usize, salt: usize) -> GraphData<f64> {
    GraphData::new(
        vec![values(&[n, 3], salt), values(&[n, 2], salt + 1)],
        vec![
            Targets::Labels((0..n).map(|i| (i * 7 + salt) % 3).collect()),
            Targets::Values(values(&[n, 1], salt + 2)),
        ],
    )
    .unwrap()
}

type Weights = BTreeMap<String, ArrayD<f64>>;

fn state<P: Parameters<f64>>(m: &P) -> Weights {
    nn::io::collect_state(m)
        .into_iter()
        .map(|(n, p)| (n, p.value().clone()))
        .collect()
}

/// The largest difference between two sets of weights, relative to 1 or the value.
fn largest_difference(a: &Weights, b: &Weights) -> f64 {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same weights"
    );
    a.iter()
        .flat_map(|(name, x)| {
            assert_eq!(x.shape(), b[name].shape(), "{name}");
            x.iter()
                .zip(b[name].iter())
                .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

/// Every number the history logged, by name, epoch after epoch.
fn logged(h: &History) -> Vec<(String, f64)> {
    h.epochs
        .iter()
        .flat_map(|e| {
            let mut all = vec![("loss".to_string(), e.loss)];
            all.extend(e.metrics.iter().cloned());
            all.extend(e.val_loss.map(|v| ("val_loss".to_string(), v)));
            all.extend(e.val_metrics.iter().cloned());
            all
        })
        .collect()
}

struct Run {
    weights: Weights,
    history: History,
}

/// Two epochs of SGD with momentum, batches of 16 over `group`'s ranks (one
/// process when `None`), checkpointing into and resuming from `dir` when given.
fn train<M: nn::GraphModel<f64> + Parameters<f64>>(
    model: &mut M,
    group: Option<&dyn Collective>,
    sync_batch_norm: bool,
    epochs: usize,
    dir: Option<&std::path::Path>,
) -> Run {
    train_in_buckets(model, group, sync_batch_norm, epochs, dir, 1.0)
}

/// [`train`] with gradient buckets of `bucket_mb` MiB.
fn train_in_buckets<M: nn::GraphModel<f64> + Parameters<f64>>(
    model: &mut M,
    group: Option<&dyn Collective>,
    sync_batch_norm: bool,
    epochs: usize,
    dir: Option<&std::path::Path>,
    bucket_mb: f64,
) -> Run {
    train_with(model, group, sync_batch_norm, epochs, dir, bucket_mb, false)
}

/// [`train_in_buckets`], the optimizer's work split over the ranks when
/// `shard_optimizer`.
fn train_with<M: nn::GraphModel<f64> + Parameters<f64>>(
    model: &mut M,
    group: Option<&dyn Collective>,
    sync_batch_norm: bool,
    epochs: usize,
    dir: Option<&std::path::Path>,
    bucket_mb: f64,
    shard_optimizer: bool,
) -> Run {
    let ranks = group.map_or(1, |g| g.size());
    let (train, val) = (data(45, 0), data(20, 5));
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    })
    .unwrap();
    let history = fit_graph(
        model,
        &mut sgd,
        &train,
        GraphFitOptions {
            epochs,
            batch_size: 16 / ranks,
            losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
            loss_weights: vec![1.0, 0.5],
            // A metric of one output, summed over the ranks by its totals.
            metrics: vec![("value", Box::new(nn::train::MeanAbsoluteError::default()))],
            shuffle_seed: Some(4),
            validation: Some(&val),
            verbosity: Verbosity::Silent,
            checkpoint_dir: dir.map(|d| d.to_path_buf()),
            resume_from: dir.map(|d| d.to_path_buf()),
            distributed: group,
            sync_batch_norm,
            bucket_mb,
            shard_optimizer,
            ..Default::default()
        },
    )
    .unwrap();
    Run {
        weights: state(&*model),
        history,
    }
}

/// `train` on two ranks (each from another seed: rank 0's weights must
/// reach the other) and on one process.
fn two_ranks_and_one<M: nn::GraphModel<f64> + Parameters<f64>>(
    make: fn(u64) -> M,
    sync_batch_norm: bool,
) -> (Vec<Run>, Run) {
    let ranks = ThreadGroup::run(2, |g| {
        train(
            &mut make(g.rank() as u64 * 7),
            Some(g),
            sync_batch_norm,
            2,
            None,
        )
    });
    let alone = train(&mut make(0), None, false, 2, None);
    (ranks, alone)
}

#[test]
fn a_graph_trained_on_two_ranks_matches_one_process() {
    let (ranks, alone) = two_ranks_and_one(TwoHeads::with_seed, false);
    for (r, run) in ranks.iter().enumerate() {
        assert_eq!(run.weights, ranks[0].weights, "rank {r}'s weights");
        assert_eq!(
            logged(&run.history),
            logged(&ranks[0].history),
            "rank {r}'s logs"
        );
    }
    let d = largest_difference(&ranks[0].weights, &alone.weights);
    eprintln!("two ranks vs one process: {d:e}");
    assert!(d <= 1e-12, "weights: {d:e}");
    let (two, one) = (logged(&ranks[0].history), logged(&alone.history));
    assert_eq!(two.len(), one.len());
    // Every output's loss and accuracy, and the value's MAE, on the
    // training and validation data.
    assert!(two.len() >= 2 * 10, "{two:?}");
    assert!(two.iter().any(|(n, _)| n == "val_value_mae"), "{two:?}");
    for ((name, x), (other, y)) in two.iter().zip(&one) {
        assert_eq!(name, other);
        assert!(
            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            "{name}: {x:e} vs {y:e}"
        );
    }
    // Training moved the weights: the comparison above could fail.
    let start = state(&TwoHeads::with_seed(0));
    assert!(largest_difference(&alone.weights, &start) > 1e-2);
    // The same bits again.
    let again = ThreadGroup::run(2, |g| {
        train(
            &mut TwoHeads::with_seed(g.rank() as u64 * 7),
            Some(g),
            false,
            2,
            None,
        )
    });
    assert_eq!(again[0].weights, ranks[0].weights);
    assert_eq!(logged(&again[0].history), logged(&ranks[0].history));
}

#[test]
fn a_graph_with_a_sharded_optimizer_takes_the_unsharded_steps_and_checkpoints_its_state() {
    let on_two = |shard: bool, epochs: usize, dir: Option<&std::path::Path>| {
        ThreadGroup::run(2, |g| {
            let mut model = TwoHeads::with_seed(g.rank() as u64 * 7);
            train_with(&mut model, Some(g), false, epochs, dir, 1.0, shard)
        })
    };
    // Two ranks: each element of a sum is one addition, the same bits.
    let (plain, sharded) = (on_two(false, 2, None), on_two(true, 2, None));
    assert_eq!(sharded[1].weights, sharded[0].weights, "rank 1's weights");
    assert_eq!(sharded[0].weights, plain[0].weights);
    assert_eq!(logged(&sharded[0].history), logged(&plain[0].history));
    // The checkpoint after a sharded epoch holds SGD's whole momentum: an
    // unsharded run resumed from it goes on as the uninterrupted run.
    let dir = std::env::temp_dir().join(format!("nn_graph_zero_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    on_two(true, 1, Some(&dir));
    let resumed = on_two(false, 2, Some(&dir));
    assert_eq!(resumed[0].weights, plain[0].weights, "resumed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn synchronized_batch_norm_in_a_graph_trains_as_one_process() {
    // Buckets of one parameter each: batch norm's blocking sums in backward
    // run while earlier buckets' sums are under way.
    let synced = ThreadGroup::run(2, |g| {
        let mut model = Normalized::with_seed(g.rank() as u64 * 7);
        train_in_buckets(&mut model, Some(g), true, 2, None, 0.0)
    });
    let alone = train(&mut Normalized::with_seed(0), None, false, 2, None);
    assert_eq!(synced[1].weights, synced[0].weights, "rank 1's weights");
    let d = largest_difference(&synced[0].weights, &alone.weights);
    eprintln!("synchronized batch norm vs one process: {d:e}");
    assert!(d <= 1e-12, "synchronized: {d:e}");
    // Each rank's own statistics (the default) train another model.
    let (local, _) = two_ranks_and_one(Normalized::with_seed, false);
    let d = largest_difference(&local[0].weights, &alone.weights);
    eprintln!("local batch norm vs one process: {d:e}");
    assert!(d > 1e-6, "local statistics: {d:e}");
}

#[test]
fn a_graph_checkpointed_on_two_ranks_resumes_on_one_process() {
    let full = ThreadGroup::run(2, |g| {
        train(&mut TwoHeads::with_seed(0), Some(g), false, 2, None)
    })
    .swap_remove(0);
    let dir = std::env::temp_dir().join(format!("nn_graph_ddp_resume_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Rank 0 writes the checkpoint of the first epoch.
    ThreadGroup::run(2, |g| {
        train(&mut TwoHeads::with_seed(0), Some(g), false, 1, Some(&dir))
    });
    // Another seed: everything must come from the checkpoint.
    let resumed = train(&mut TwoHeads::with_seed(9), None, false, 2, Some(&dir));
    let d = largest_difference(&resumed.weights, &full.weights);
    assert!(d <= 1e-12, "resumed on one process: {d:e}");
    assert_eq!(resumed.history.epochs.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ranks_with_other_options_get_the_same_error_instead_of_hanging() {
    let train = data(45, 0);
    let errors = ThreadGroup::run(2, |g| {
        // Rank 1 asks for another number of epochs: it would stop first.
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        fit_graph(
            &mut TwoHeads::with_seed(0),
            &mut sgd,
            &train,
            GraphFitOptions {
                epochs: 1 + g.rank(),
                batch_size: 8,
                losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
                verbosity: Verbosity::Silent,
                distributed: Some(g),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    });
    for (rank, e) in errors.iter().enumerate() {
        assert!(
            e.contains("disagree on the number of epochs")
                && e.contains(&format!("rank {rank} has {}", 1 + rank)),
            "{e}"
        );
    }
}

#[test]
fn buckets_summed_while_backward_runs_give_the_bits_of_one_sum_after_it() {
    let run = |bucket_mb: f64| {
        ThreadGroup::run(2, |g| {
            train_in_buckets(
                &mut TwoHeads::with_seed(0),
                Some(g),
                false,
                2,
                None,
                bucket_mb,
            )
        })
        .swap_remove(0)
    };
    let after = run(f64::INFINITY);
    for bucket_mb in [0.0, 1e-4] {
        let during = run(bucket_mb);
        assert_eq!(during.weights, after.weights, "buckets of {bucket_mb} MiB");
        assert_eq!(logged(&during.history), logged(&after.history));
    }
}

functional! {
    /// A layer applied to both inputs, then two more.
    #[dtype(f64)]
    pub struct SharedLayer(a: input(4), b: input(4)) -> (out) {
        let shared = Dense(6, activation = tanh);
        let ha = shared(a);
        let hb = shared(b);
        let s = Add(ha, hb);
        let h = Dense(5, activation = tanh)(s);
        let out = Dense(3)(h);
    }
}

functional! {
    /// One input and output, a layer applied twice in a row.
    #[dtype(f64)]
    pub struct Twice(x: input(4)) -> (y) {
        let shared = Dense(4, activation = tanh);
        let h1 = shared(x);
        let h2 = shared(h1);
        let y = Dense(3)(h2);
    }
}

/// Runs `backward` under a gradient hook: the name of each parameter
/// reported, in order, and its gradient when reported.
fn reports<P: Parameters<f64>>(
    model: &mut P,
    backward: impl FnOnce(&mut P),
) -> Vec<(String, nn::Param<f64>, ArrayD<f64>)> {
    let mut seen = Vec::new();
    let mut hook = |p: &dyn std::any::Any| {
        let p = p
            .downcast_ref::<nn::Param<f64>>()
            .expect("an f64 parameter");
        seen.push((p.clone(), p.grad().clone().expect("a gradient")));
    };
    nn::distributed::with_gradients_ready(&mut hook, || backward(model));
    let named = nn::io::collect_state(&*model);
    seen.into_iter()
        .map(|(p, g)| {
            let name = named.iter().find(|(_, q)| q.same_as(&p)).unwrap().0.clone();
            (name, p, g)
        })
        .collect()
}

/// Every trainable parameter reported once, the layer `shared`'s last, and
/// each gradient as backward left it: what a bucket sent was final.
fn check_reports(seen: &[(String, nn::Param<f64>, ArrayD<f64>)], trainable: usize) {
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names.len(), trainable, "{names:?}");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(
        names[names.len() - 2..]
            .iter()
            .all(|n| n.starts_with("shared.")),
        "{names:?}"
    );
    for (name, p, at_report) in seen {
        assert_eq!(p.grad().as_ref().unwrap(), at_report, "{name}");
    }
}

#[test]
fn a_graph_backward_reports_each_layers_gradients_once_they_are_final() {
    let mut model = SharedLayer::with_seed(1);
    let (a, b) = (values(&[8, 4], 0), values(&[8, 4], 1));
    let grad = values(&[8, 3], 2);
    let seen = reports(&mut model, |m| {
        nn::GraphModel::forward_train(m, &[a.view(), b.view()]);
        nn::GraphModel::backward(m, &[grad.view()], &[false]);
    });
    check_reports(&seen, 6);

    // One input and output, trained as a `Model`: the same.
    let mut model = Twice::with_seed(1);
    let x = values(&[8, 4], 3);
    let seen = reports(&mut model, |m| {
        let shape = Model::forward_train(m, x.view()).shape().to_vec();
        Model::backward(m, values(&shape, 4).view());
    });
    check_reports(&seen, 4);
}

/// A rank that counts the times a bucket was told of finished gradients
/// (`Buckets::ready` lets the started sums advance after each report).
struct Counting<'a> {
    inner: &'a dyn Collective,
    reports: AtomicUsize,
}

impl Collective for Counting<'_> {
    crate::common::parallel::forward_to_inner!();
    unsafe fn start_sum_f32(&self, send: *const f32, recv: *mut f32, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.inner.start_sum_f32(send, recv, len) }
    }
    unsafe fn start_sum_f64(&self, send: *const f64, recv: *mut f64, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.inner.start_sum_f64(send, recv, len) }
    }
    fn progress_sums(&self) {
        self.reports.fetch_add(1, Ordering::Relaxed);
        self.inner.progress_sums()
    }
    fn wait_sums(&self) {
        self.inner.wait_sums()
    }
}

#[test]
fn fit_graph_starts_buckets_as_backward_reports_layers() {
    let reports = ThreadGroup::run(2, |g| {
        let counting = Counting {
            inner: g,
            reports: AtomicUsize::new(0),
        };
        train_in_buckets(
            &mut TwoHeads::with_seed(0),
            Some(&counting),
            false,
            1,
            None,
            0.0,
        );
        counting.reports.into_inner()
    });
    // 3 steps of an epoch, each reporting TwoHeads' 8 parameters.
    assert_eq!(reports, [24, 24]);
}

#[test]
fn a_loss_that_is_not_finite_on_one_rank_stops_every_rank() {
    // Sample 9 is in rank 1's half of the first batch (no shuffling).
    let mut bad = data(45, 0);
    let mut inputs: Vec<ArrayD<f64>> = (0..2).map(|i| bad.input(i).to_owned()).collect();
    inputs[0][[9, 0]] = f64::NAN;
    let targets = (0..2).map(|i| bad.targets(i).clone()).collect();
    bad = GraphData::new(inputs, targets).unwrap();
    let stopped = ThreadGroup::run(2, |g| {
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        let history = fit_graph(
            &mut TwoHeads::with_seed(0),
            &mut sgd,
            &bad,
            GraphFitOptions {
                epochs: 2,
                batch_size: 8,
                losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
                shuffle_seed: None,
                verbosity: Verbosity::Silent,
                distributed: Some(g),
                ..Default::default()
            },
        )
        .unwrap();
        (history.stopped, history.epochs.len())
    });
    let reason = stopped[0].0.as_deref().expect("rank 0 stopped");
    assert!(
        reason.starts_with("loss became NaN at epoch 1, batch 1"),
        "{reason}"
    );
    assert_eq!(stopped[1], stopped[0], "the ranks stop alike");
}

#[test]
fn a_checkpoint_rank_0_cannot_write_stops_every_rank_with_an_error() {
    // A file where the checkpoint directory should be.
    let file = std::env::temp_dir().join(format!("nn_graph_ddp_file_{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let errors = ThreadGroup::run(2, |g| {
        let mut sgd = Sgd::new(SgdConfig::default()).unwrap();
        fit_graph(
            &mut TwoHeads::with_seed(0),
            &mut sgd,
            &data(45, 0),
            GraphFitOptions {
                batch_size: 8,
                losses: vec![Loss::SparseCategoricalCrossEntropy, Loss::Mse],
                verbosity: Verbosity::Silent,
                checkpoint_dir: Some(file.clone()),
                distributed: Some(g),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    });
    let _ = std::fs::remove_file(&file);
    check_failed_together(&errors, &file);
}

nn::sequential! {
    /// Two layers used as one node of a graph.
    #[dtype(f64)]
    pub struct Tower: input(4) {
        Dense(5, activation = tanh),
        Dense(5),
    }
}

functional! {
    /// A nested model on one branch, a dense layer on the other.
    #[dtype(f64)]
    pub struct WithTower(x: input(4)) -> (y) {
        let h = Tower(x) -> (5);
        let g = Dense(5)(x);
        let s = Add(h, g);
        let y = Dense(3)(s);
    }
}

#[test]
fn a_model_inside_a_graph_is_reported_once_as_one_layer() {
    // As a node the tower runs backward as a layer of the graph, which
    // reports it whole, once, after its backward; it reports nothing itself.
    let mut model = WithTower::with_seed(1);
    let x = values(&[8, 4], 5);
    let seen = reports(&mut model, |m| {
        let shape = Model::forward_train(m, x.view()).shape().to_vec();
        Model::backward(m, values(&shape, 6).view());
    });
    let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    let tower: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with("tower."))
        .collect();
    assert_eq!(tower.len(), 4, "{names:?}");
    // Its four parameters together, each once.
    assert_eq!(tower[3] - tower[0], 3, "{names:?}");
    for (name, p, at_report) in &seen {
        assert_eq!(p.grad().as_ref().unwrap(), at_report, "{name}");
    }
}
