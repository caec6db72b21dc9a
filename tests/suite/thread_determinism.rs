//! The same seed gives the same bits on any number of threads: training
//! steps of a CNN with BatchNorm and LayerNorm, and of an LSTM and a GRU
//! reading the images row by row, run in child processes with
//! `NN_NUM_THREADS` = 1, 2, 3 and 4 (the setting is read once per process), end
//! with identical weights. Reductions that are split for speed (a
//! convolution's weight gradient, layer norm's dγ and dβ, a long inner
//! product, a recurrent layer's parameter gradients over batch blocks) are
//! cut into chunks whose number depends on the sizes alone and added in
//! chunk order.

use crate::common;
use std::process::Command;

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use nn::train::Fit;

sequential! {
    /// Large enough that every split reduction splits.
    struct Net: input(1, 28, 28) {
        Conv2d(16, kernel = 3, padding = "same", activation = relu),
        BatchNorm,
        Conv2d(16, kernel = 3, padding = "same", activation = relu),
        MaxPool2d(2),
        Flatten,
        Dense(512, activation = relu),
        LayerNorm,
        Dense(10),
    }
}

sequential! {
    /// Each image as 28 steps of 28 pixels; both layers are large enough
    /// that backward sums their gradients per step in blocks of 32 rows
    /// (batch 128: four blocks, split over the threads).
    struct Rows: input(28, 28) {
        LSTM(128, return_sequences = true),
        GRU(64),
        Dense(10),
    }
}

/// Trains a few steps of both models and returns their weights' bits.
fn train() -> (Vec<u64>, Vec<f64>) {
    // Each image shows its class as a bright row (row 2·class + 4) on faint noise.
    let n = 256;
    let labels: Vec<usize> = (0..n).map(|i| (i * 7) % 10).collect();
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 1, 28, 28]), |i| {
        let noise = (((i[0] * 784 + i[2] * 28 + i[3]) * 2654435761usize) % 1000) as f32 / 4000.0;
        if i[2] == 2 * labels[i[0]] + 4 {
            1.0
        } else {
            noise
        }
    });
    let images = Dataset::new(x.clone(), labels.clone());
    let rows = Dataset::new(
        x.into_shape_with_order(IxDyn(&[n, 28, 28])).unwrap(),
        labels,
    );
    let mut bits = Vec::new();
    let mut losses = train_model(&mut Net::with_seed(3), &images, &mut bits);
    losses.extend(train_model(&mut Rows::with_seed(3), &rows, &mut bits));
    (bits, losses)
}

/// Trains `model` for two epochs of batch 128 with Adam, appends its
/// weights' bits to `bits` and returns the epochs' losses.
fn train_model<M: Fit<f32> + Parameters<f32>>(
    model: &mut M,
    data: &Dataset<f32>,
    bits: &mut Vec<u64>,
) -> Vec<f64> {
    let mut opt = Adam::new(AdamConfig::default()).unwrap();
    let history = fit(
        model,
        &mut opt,
        data,
        FitOptions {
            epochs: 2,
            batch_size: 128,
            loss: Loss::CrossEntropy.into(),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    model.visit_params(&mut |_, p| bits.extend(p.value().iter().map(|v| u64::from(v.to_bits()))));
    history.metric("loss").into_iter().flatten().collect()
}

/// The child: prints a digest of the weights when asked to; by itself,
/// checks that the run learns.
#[test]
fn child_train_and_report() {
    let (bits, losses) = train();
    if std::env::var_os("NN_DETERMINISM_CHILD").is_some() {
        let digest = bits.iter().fold(0xcbf29ce484222325u64, |h, &b| {
            (h ^ b).wrapping_mul(0x100000001b3)
        });
        println!("digest {digest:016x} of {} values", bits.len());
    } else {
        // Each model's second epoch beats its first.
        assert!(losses[1] < losses[0] && losses[3] < losses[2], "{losses:?}");
    }
}

#[test]
fn one_to_four_threads_give_identical_weights() {
    let digest = |threads: &str| {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &common::harness_name(module_path!(), "child_train_and_report"),
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("NN_DETERMINISM_CHILD", "1")
            .env("NN_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find_map(|l| l.find("digest ").map(|at| l[at..].to_string()))
            .unwrap_or_else(|| panic!("no digest in:\n{text}"))
    };
    let one = digest("1");
    assert_eq!(digest("2"), one, "2 threads");
    assert_eq!(digest("3"), one, "3 threads");
    // Four parts of 32 rows: a recurrent layer's part boundaries at 32 and 96 too.
    assert_eq!(digest("4"), one, "4 threads");
}
