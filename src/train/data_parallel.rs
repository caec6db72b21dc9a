//! What `fit` does on a rank of a data-parallel run
//! ([`FitOptions::distributed`](super::FitOptions::distributed)): the
//! gradient average of every step, and logs that hold over all the ranks.

use std::ops::Range;

use nn_core::{Float, Parameters};

use super::callbacks::{Callback, Muted};
use super::metrics::Metric;
use super::TrainError;
use crate::distributed::{self, Buckets, Collective};

/// `callbacks` as this rank runs them: on every rank but 0 the root-only
/// ones (those writing files) are muted, so files are written once, while
/// every rank keeps the same callbacks and a checkpoint's state fits them all.
pub(crate) fn rank_callbacks<'a, T: Float>(
    group: Option<&dyn Collective>,
    callbacks: Vec<Box<dyn Callback<T> + 'a>>,
) -> Vec<Box<dyn Callback<T> + 'a>> {
    if group.is_none_or(|g| g.is_root()) {
        return callbacks;
    }
    callbacks
        .into_iter()
        .map(|cb| -> Box<dyn Callback<T> + 'a> {
            if cb.root_only() {
                Box::new(Muted(cb))
            } else {
                cb
            }
        })
        .collect()
}

/// Rank `rank`'s share of a global batch of `whole` samples: positions
/// `rank · whole / ranks` up to the next rank's, as
/// [`Batches::sharded`](nn_core::data::Batches::sharded) shares them.
pub(crate) fn share(whole: usize, rank: usize, ranks: usize) -> Range<usize> {
    rank * whole / ranks..(rank + 1) * whole / ranks
}

/// One step's gradient sums (see [`finish_step`]), in buckets of about
/// `bucket_mb` MiB started while backward runs.
pub(crate) fn step_sums<'g, T: Float>(
    group: &'g dyn Collective,
    params: &dyn Parameters<T>,
    samples: usize,
    bucket_mb: f64,
) -> Buckets<'g, T> {
    Buckets::new(
        group,
        params,
        samples as f64,
        bucket_mb * (1 << 20) as f64,
        2,
    )
}

/// Makes every trainable parameter's gradient the mean gradient of the whole
/// batch (each rank's mean weighted by its samples, as one process training
/// on the whole batch has it) and returns the whole batch's mean loss. The
/// loss and the sample count travel with the last bucket.
pub(crate) fn finish_step<T: Float>(sums: Buckets<'_, T>, loss: f64, samples: usize) -> f64 {
    let n = samples as f64;
    let mut extra = [T::lit(n), T::lit(loss * n)];
    // Σ nᵣ·gᵣ, then divided by Σ nᵣ as it is written back.
    sums.finish(&mut extra, |sums| 1.0 / sums[0].as_f64());
    extra[1].as_f64() / extra[0].as_f64()
}

/// The ranks' named means, weighted by each rank's samples.
pub(crate) fn weighted_means(
    group: &dyn Collective,
    values: &[(String, f64)],
    samples: usize,
) -> Vec<(String, f64)> {
    let n = samples as f64;
    let mut buf: Vec<f64> = values.iter().map(|(_, v)| v * n).collect();
    buf.push(n);
    distributed::sum(group, &mut buf);
    let total = buf.pop().unwrap_or(1.0).max(1.0);
    values
        .iter()
        .zip(buf)
        .map(|((name, _), v)| (name.clone(), v / total))
        .collect()
}

/// The metrics over every rank's samples: their running sums added up where
/// they have them ([`Metric::totals`]), else their results averaged by samples.
pub(crate) fn reduce_metrics<T: Float>(
    group: &dyn Collective,
    metrics: &mut [Box<dyn Metric<T> + '_>],
    samples: usize,
) -> Vec<(String, f64)> {
    let n = samples as f64;
    // Each metric's totals (`true`), or its result weighted by samples.
    let parts: Vec<(Vec<f64>, bool)> = metrics
        .iter()
        .map(|m| match m.totals() {
            t if t.is_empty() => (vec![m.result() * n, n], false),
            t => (t, true),
        })
        .collect();
    let mut buf: Vec<f64> = parts.iter().flat_map(|(p, _)| p.iter().copied()).collect();
    distributed::sum(group, &mut buf);
    let mut at = 0;
    let mut out = Vec::with_capacity(metrics.len());
    for (m, (part, has_totals)) in metrics.iter_mut().zip(&parts) {
        let summed = &buf[at..at + part.len()];
        at += part.len();
        let value = if *has_totals {
            m.set_totals(summed);
            m.result()
        } else {
            summed[0] / summed[1].max(1.0)
        };
        out.push((m.name().to_string(), value));
    }
    out
}

/// Refuses a `bucket_mb` that is not a size.
pub(crate) fn check_bucket_size(bucket_mb: f64) -> Result<(), TrainError> {
    if bucket_mb.is_nan() || bucket_mb < 0.0 {
        return Err(TrainError::Config(format!(
            "bucket_mb must be a size in MiB, 0 or more (f64::INFINITY for one sum after backward), got {bucket_mb}"
        )));
    }
    Ok(())
}

/// The facts every rank of a run must agree on (see [`check_ranks_agree`]):
/// the data's length, the model's size and the options `fit` and
/// `fit_graph` share.
pub(crate) fn run_facts<T: Float>(
    model: &dyn Parameters<T>,
    samples: usize,
    (batch_size, epochs): (usize, usize),
    shuffle_seed: Option<u64>,
    callbacks: usize,
    sync_batch_norm: bool,
) -> Vec<(&'static str, u64)> {
    let weights: u64 = nn_core::io::collect_state(model)
        .iter()
        .map(|(_, p)| p.len() as u64)
        .sum();
    vec![
        ("number of training samples", samples as u64),
        ("batch size", batch_size as u64),
        ("number of epochs", epochs as u64),
        ("number of weights", weights),
        ("shuffle seed", shuffle_seed.unwrap_or(u64::MAX)),
        ("number of callbacks", callbacks as u64),
        ("batch norm synchronization", u64::from(sync_batch_norm)),
    ]
}

/// Checks that every rank is about to run the same loop: a rank holding
/// other data, another model or other options would wait forever for the
/// others at its first sum. Every rank sums each fact and its square: they
/// agree exactly when `(Σx)² = ranks · Σx²`, so every rank finds the same
/// disagreement and returns the same error.
pub(crate) fn check_ranks_agree(
    group: &dyn Collective,
    facts: &[(&str, u64)],
) -> Result<(), TrainError> {
    // In 16-bit pieces, so that squares and their sums stay exact in f64.
    let pieces = |v: u64| (0..4).map(move |k| ((v >> (16 * k)) & 0xffff) as f64);
    let mut buf: Vec<f64> = facts
        .iter()
        .flat_map(|&(_, v)| pieces(v).flat_map(|p| [p, p * p]))
        .collect();
    distributed::sum(group, &mut buf);
    let ranks = group.size() as f64;
    for (k, &(name, value)) in facts.iter().enumerate() {
        let agree = buf[k * 8..(k + 1) * 8]
            .chunks(2)
            .all(|pair| pair[0] * pair[0] == ranks * pair[1]);
        if !agree {
            return Err(TrainError::Config(format!(
                "the ranks of the data-parallel run disagree on the {name} (rank {} has {value}); \
                 every rank needs the same data length, model and options",
                group.rank()
            )));
        }
    }
    Ok(())
}

nn_core::instances!(fn reduce_metrics);
