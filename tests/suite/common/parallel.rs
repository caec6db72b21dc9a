//! The data-parallel parity checks, shared by `tests/suite/data_parallel.rs`
//! (ranks as threads) and `tests/mpi_parity.rs` (ranks as processes under
//! `mpirun`): n ranks taking 128 / n samples each of every batch of 128 train
//! as one process does with batches of 128.

#![allow(dead_code)]

use nn::distributed::Collective;
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use nn::train::{Fit, History};

sequential! {
    pub struct Mlp: input(1, 12, 12) {
        Flatten,
        Dense(64, activation = relu),
        Dense(10),
    }
}

sequential! {
    pub struct Cnn: input(1, 12, 12) {
        Conv2d(6, kernel = 3, activation = relu),
        MaxPool2d(2),
        Flatten,
        Dense(10),
    }
}

/// 20 batches of 128 samples (and 37 more, so the last batch is partial).
pub fn data() -> Dataset<f32> {
    let n = 20 * 128 + 37;
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 1, 12, 12]), |i| {
        (((i[0] * 144 + i[2] * 12 + i[3]) * 2654435761usize) % 1009) as f32 / 504.5 - 1.0
    });
    let labels = (0..n)
        .map(|i| (x[[i, 0, 3, 4]] + x[[i, 0, 8, 2]] > 0.0) as usize * 5 + i % 5)
        .collect();
    Dataset::new(x, labels)
}

/// Trains `model` one epoch (21 steps) with SGD and momentum; `group` makes
/// it one rank of a data-parallel run with `batch_size` samples per rank.
pub fn train<M: Fit<f32>>(
    model: &mut M,
    data: &Dataset<f32>,
    batch_size: usize,
    group: Option<&dyn Collective>,
) -> History {
    train_in_buckets(
        model,
        data,
        batch_size,
        group,
        FitOptions::<f32>::default().bucket_mb,
    )
}

/// [`train`] with gradients summed in buckets of `bucket_mb` megabytes.
pub fn train_in_buckets<M: Fit<f32>>(
    model: &mut M,
    data: &Dataset<f32>,
    batch_size: usize,
    group: Option<&dyn Collective>,
    bucket_mb: f64,
) -> History {
    train_with(model, data, batch_size, group, bucket_mb, false)
}

/// [`train_in_buckets`], with the optimizer's work split over the ranks
/// when `shard_optimizer`.
pub fn train_with<M: Fit<f32>>(
    model: &mut M,
    data: &Dataset<f32>,
    batch_size: usize,
    group: Option<&dyn Collective>,
    bucket_mb: f64,
    shard_optimizer: bool,
) -> History {
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    })
    .unwrap();
    fit(
        model,
        &mut sgd,
        data,
        FitOptions {
            epochs: 1,
            batch_size,
            loss: Loss::CrossEntropy.into(),
            shuffle_seed: Some(3),
            validation: Some(data),
            verbosity: Verbosity::Silent,
            distributed: group,
            bucket_mb,
            shard_optimizer,
            ..Default::default()
        },
    )
    .unwrap()
}

pub fn weights<M: Model<f32>>(model: &M) -> Vec<(String, ArrayD<f32>)> {
    model
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value().clone()))
        .collect()
}

/// Largest difference between two lists of named weights.
pub fn largest_difference(a: &[(String, ArrayD<f32>)], b: &[(String, ArrayD<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|((na, wa), (nb, wb))| {
            assert_eq!(na, nb);
            wa.iter().zip(wb.iter()).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

/// A model's weights by name.
pub type Weights = Vec<(String, ArrayD<f32>)>;

/// The global batch the ranks share, and the one process's batch.
pub const GLOBAL_BATCH: usize = 128;

/// What one rank ended with: its weights and History with every
/// parameter's gradient in a bucket of its own (summed while backward runs), and the
/// weights of two more runs, the same again and one summing everything after
/// backward (with two ranks both give the same bits: each element of a sum
/// is one addition, however the messages are cut), and one with the
/// optimizer's work split over the ranks (`shard_optimizer`).
pub struct RankRun {
    pub weights: Vec<(String, ArrayD<f32>)>,
    pub history: History,
    pub again: Vec<(String, ArrayD<f32>)>,
    pub after_backward: Vec<(String, ArrayD<f32>)>,
    pub sharded: Vec<(String, ArrayD<f32>)>,
}

/// Trains on this rank of `group`, three times, from a model built with this
/// rank's own seed (rank 0's is the reference's, and its weights win).
pub fn rank_run<M: Model<f32> + Fit<f32>>(make: fn(u64) -> M, group: &dyn Collective) -> RankRun {
    let ranks = group.size();
    assert_eq!(
        GLOBAL_BATCH % ranks,
        0,
        "{ranks} ranks cannot share {GLOBAL_BATCH}"
    );
    let data = data();
    let once = |bucket_mb, shard| {
        let mut model = make(group.rank() as u64 * 10);
        let history = train_with(
            &mut model,
            &data,
            GLOBAL_BATCH / ranks,
            Some(group),
            bucket_mb,
            shard,
        );
        (weights(&model), history)
    };
    let (weights, history) = once(0.0, false);
    let (again, _) = once(0.0, false);
    let (after_backward, _) = once(f64::INFINITY, false);
    let (sharded, _) = once(0.0, true);
    RankRun {
        weights,
        history,
        again,
        after_backward,
        sharded,
    }
}

/// What another rank ended with, for rank 0 to compare with its own: its
/// weights, its sharded run's, and its logged loss.
pub type OtherRank = (Weights, Weights, f64);

/// Checks rank 0's run against one process training alone, and every other
/// rank's weights and logged loss (`others`, rank 1 on) against rank 0's.
pub fn check_parity<M: Model<f32> + Fit<f32>>(
    make: fn(u64) -> M,
    rank0: &RankRun,
    others: &[OtherRank],
) {
    let data = data();
    let mut single = make(0);
    let single_history = train(&mut single, &data, GLOBAL_BATCH, None);
    let single_weights = weights(&single);

    let e = &rank0.history.epochs[0];
    for (rank, (other_weights, other_sharded, other_loss)) in others.iter().enumerate() {
        let rank = rank + 1;
        assert!(
            rank0.weights == *other_weights,
            "rank {rank} ends with rank 0's weights"
        );
        assert!(
            rank0.sharded == *other_sharded,
            "rank {rank} ends a sharded run with rank 0's weights"
        );
        assert_eq!(e.loss, *other_loss, "rank {rank} logs rank 0's loss");
    }
    let d = largest_difference(&rank0.weights, &single_weights);
    eprintln!("largest weight difference, distributed vs one process: {d:e}");
    assert!(d <= 1e-5, "distributed vs one process: {d:e}");
    let d = largest_difference(&rank0.sharded, &single_weights);
    assert!(d <= 1e-5, "sharded optimizer vs one process: {d:e}");

    let s = &single_history.epochs[0];
    assert!((e.loss - s.loss).abs() <= 1e-5, "{} vs {}", e.loss, s.loss);
    // Accuracy counts the same predictions, made with weights equal to 1e-5.
    let (acc, single_acc) = (e.get("accuracy").unwrap(), s.get("accuracy").unwrap());
    assert!(
        (acc - single_acc).abs() <= 2.0 / data.len() as f64,
        "{acc} vs {single_acc}"
    );
    let (val, single_val) = (e.val_loss.unwrap(), s.val_loss.unwrap());
    assert!((val - single_val).abs() <= 1e-5, "{val} vs {single_val}");
    assert_eq!(
        rank0.again, rank0.weights,
        "a second run gives the same bits"
    );
    // With more than two ranks, MPI may choose a different reduction tree for
    // messages of another size, so only two ranks promise the same bits
    // however the gradients are cut into messages.
    if others.len() == 1 {
        assert_eq!(
            rank0.after_backward, rank0.weights,
            "summing after backward gives the bits of summing in buckets"
        );
        assert_eq!(
            rank0.sharded, rank0.weights,
            "a sharded optimizer's steps are the unsharded steps' bits"
        );
    }
}

/// The errors of two ranks whose rank 0 could not write `file`: its own,
/// naming the file, and the other rank's, saying it stopped with it.
pub fn check_failed_together(errors: &[String], file: &std::path::Path) {
    assert!(
        errors[0].contains(&file.display().to_string()),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("other rank(s) of the data-parallel run stopped with an error"),
        "{}",
        errors[1]
    );
}

/// The `Collective` methods a test transport passes unchanged to its
/// `inner` rank: rank, size, and the blocking sums and broadcasts (a
/// transport that changes one of them writes that one itself). (The MPI
/// parity test includes this file and defines no transport.)
#[allow(unused_macros)]
macro_rules! forward_to_inner {
    () => {
        fn rank(&self) -> usize {
            self.inner.rank()
        }
        fn size(&self) -> usize {
            self.inner.size()
        }
        fn sum_f32(&self, buf: &mut [f32]) {
            self.inner.sum_f32(buf)
        }
        fn sum_f64(&self, buf: &mut [f64]) {
            self.inner.sum_f64(buf)
        }
        fn broadcast_f32(&self, buf: &mut [f32]) {
            self.inner.broadcast_f32(buf)
        }
        fn broadcast_f64(&self, buf: &mut [f64]) {
            self.inner.broadcast_f64(buf)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use forward_to_inner;
