//! What `fit` and `fit_graph` do on a rank of a data-parallel run
//! ([`FitOptions::distributed`](super::FitOptions::distributed)): the setup
//! every rank must agree on, the gradient average of every step, logs that
//! hold over all the ranks, and the errors and stops every rank shares (a
//! rank leaving alone would leave the others waiting at their next sum).

use nn_core::{Float, Parameters};
use nn_optim::Optimizer;

use super::callbacks::{Callback, Muted};
use super::fit::Verbosity;
use super::metrics::Metric;
use super::TrainError;
use crate::distributed::{self, Buckets, Collective};

/// The settings of a run every rank must share, besides the model's size.
pub(crate) struct RunSettings {
    pub samples: usize,
    pub batch_size: usize,
    pub epochs: usize,
    pub shuffle_seed: Option<u64>,
    pub sync_batch_norm: bool,
    pub bucket_mb: f64,
    pub shard_optimizer: bool,
}

/// Sets this rank up for a run: on every rank but 0 silent, with the
/// root-only callbacks (those writing files) muted, so files are written
/// once while every rank keeps the same callbacks (a checkpoint's state fits
/// them all); then checks that every rank agrees on `settings`, the model's
/// size, the callbacks' number and the `extra` facts, and that `bucket_mb`
/// is a size (after agreeing, so that a bad value stops every rank).
pub(crate) fn join_run<'a, T: Float>(
    group: Option<&dyn Collective>,
    model: &dyn Parameters<T>,
    settings: &RunSettings,
    extra: &[(&'static str, u64)],
    verbosity: &mut Verbosity,
    callbacks: Vec<Box<dyn Callback<T> + 'a>>,
) -> Result<Vec<Box<dyn Callback<T> + 'a>>, TrainError> {
    let Some(g) = group else {
        check_bucket_size(settings.bucket_mb)?;
        return Ok(callbacks);
    };
    let callbacks: Vec<Box<dyn Callback<T> + 'a>> = if g.is_root() {
        // `mpirun` gives its ranks a terminal even when its own output goes
        // to a pipe or a file: redrawn bars would fill a log.
        if *verbosity == Verbosity::Auto {
            *verbosity = Verbosity::Lines;
        }
        callbacks
    } else {
        *verbosity = Verbosity::Silent;
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
    };
    let weights: u64 = nn_core::io::collect_state(model)
        .iter()
        .map(|(_, p)| p.len() as u64)
        .sum();
    let mut facts = vec![
        ("number of training samples", settings.samples as u64),
        ("batch size", settings.batch_size as u64),
        ("number of epochs", settings.epochs as u64),
        ("number of weights", weights),
        ("shuffle seed", settings.shuffle_seed.unwrap_or(u64::MAX)),
        ("number of callbacks", callbacks.len() as u64),
        (
            "batch norm synchronization",
            u64::from(settings.sync_batch_norm),
        ),
        // Other buckets would send other messages.
        ("gradient bucket size", settings.bucket_mb.to_bits()),
        // Sharded ranks send shares where the others wait for whole sums.
        ("optimizer sharding", u64::from(settings.shard_optimizer)),
    ];
    facts.extend_from_slice(extra);
    check_ranks_agree(g, &facts)?;
    check_bucket_size(settings.bucket_mb)?;
    Ok(callbacks)
}

/// Refuses a `bucket_mb` that is not a size.
fn check_bucket_size(bucket_mb: f64) -> Result<(), TrainError> {
    if bucket_mb.is_nan() || bucket_mb < 0.0 {
        return Err(TrainError::Config(format!(
            "bucket_mb must be a size in MiB, 0 or more (f64::INFINITY for one sum after backward), got {bucket_mb}"
        )));
    }
    Ok(())
}

/// `result` on every rank alike: when any rank failed, every rank returns
/// an error (its own, or one saying another rank failed), so none waits for
/// the others at a later sum. Called at the same points on every rank.
pub(crate) fn agree<R>(
    group: Option<&dyn Collective>,
    result: Result<R, TrainError>,
) -> Result<R, TrainError> {
    let Some(g) = group else { return result };
    let mut failed = [f64::from(u8::from(result.is_err()))];
    distributed::sum(g, &mut failed);
    agree_from(g, result, failed[0])
}

/// `result`, or when it is fine but `failed` ranks failed, the error of a
/// rank stopping with them.
fn agree_from<R>(
    g: &dyn Collective,
    result: Result<R, TrainError>,
    failed: f64,
) -> Result<R, TrainError> {
    match result {
        Ok(_) if failed > 0.0 => Err(TrainError::Config(format!(
            "{} other rank(s) of the data-parallel run stopped with an error (their \
             own errors say which); rank {} stops with them",
            failed as usize,
            g.rank()
        ))),
        other => other,
    }
}

/// Checks that every rank resumed at the same place (each reads the
/// checkpoint itself: a rank that found none, or another, would run other
/// steps than the rest).
pub(crate) fn check_resumed_alike(
    group: Option<&dyn Collective>,
    epoch: usize,
    step: usize,
    history: &super::History,
) -> Result<(), TrainError> {
    let Some(g) = group else { return Ok(()) };
    check_ranks_agree(
        g,
        &[
            ("epoch to resume from", epoch as u64),
            ("step to resume from", step as u64),
            (
                "whether the resumed run had ended",
                u64::from(history.stopped.is_some()),
            ),
        ],
    )
}

/// `stop` on every rank alike: a stop any rank asks for (`Some(reason)`)
/// stops every rank, the others with a reason naming it.
pub(crate) fn agree_to_stop(
    group: Option<&dyn Collective>,
    stop: Option<String>,
) -> Option<String> {
    let Some(g) = group else { return stop };
    let mut asked = [f64::from(u8::from(stop.is_some()))];
    distributed::sum(g, &mut asked);
    match stop {
        None if asked[0] > 0.0 => Some(stopped_with_another(g)),
        stop => stop,
    }
}

/// The reason a rank stops when another asked to.
fn stopped_with_another(g: &dyn Collective) -> String {
    format!(
        "another rank of the data-parallel run stopped (rank {} stops with it)",
        g.rank()
    )
}

/// A batch's end on every rank alike: when any rank kept an error
/// (`failure`), every rank returns one (as [`agree`]); otherwise a stop any
/// rank asks for stops every rank (as [`agree_to_stop`]). One message.
pub(crate) fn agree_on_batch(
    group: Option<&dyn Collective>,
    failure: Option<TrainError>,
    stop: Option<String>,
) -> Result<Option<String>, TrainError> {
    let Some(g) = group else {
        return failure.map_or(Ok(stop), Err);
    };
    let mut flags = [
        f64::from(u8::from(failure.is_some())),
        f64::from(u8::from(stop.is_some())),
    ];
    distributed::sum(g, &mut flags);
    if flags[0] > 0.0 {
        let failed = failure.map_or(Ok(()), Err);
        return agree_from(g, failed, flags[0]).map(|()| None);
    }
    Ok(match stop {
        None if flags[1] > 0.0 => Some(stopped_with_another(g)),
        stop => stop,
    })
}

/// Refuses `shard_optimizer` for an optimizer that does not say it is
/// element-wise (on one process too: the run it prepares would fail), or a
/// model with a trainable parameter not laid out row-major (its shares
/// could not be cut out of it).
pub(crate) fn check_shardable<T: Float>(
    shard_optimizer: bool,
    optimizer: &dyn Optimizer<T>,
    model: &dyn Parameters<T>,
) -> Result<(), TrainError> {
    if !shard_optimizer {
        return Ok(());
    }
    if !optimizer.is_elementwise() {
        return Err(TrainError::Config(
            "shard_optimizer needs an element-wise optimizer (one whose update of an element \
             depends on that element alone, as every nn-optim optimizer's does), and this one \
             does not declare itself so: Optimizer::is_elementwise returns false by default; \
             an optimizer whose update is element-wise overrides it to return true"
                .to_string(),
        ));
    }
    let mut not_row_major = None;
    model.visit_params(&mut |name, p| {
        if p.is_trainable() && !p.value().is_standard_layout() && not_row_major.is_none() {
            not_row_major = Some(name.to_string());
        }
    });
    match not_row_major {
        Some(name) => Err(TrainError::Config(format!(
            "shard_optimizer cuts each parameter into shares in row-major order, but \
             parameter `{name}` is laid out otherwise (make it with .as_standard_layout())"
        ))),
        None => Ok(()),
    }
}

/// The group whose ranks split the optimizer's work, if they do.
pub(crate) fn sharding(
    group: Option<&dyn Collective>,
    shard_optimizer: bool,
) -> Option<&dyn Collective> {
    group.filter(|g| shard_optimizer && g.size() > 1)
}

/// The optimizer's step: the whole of it, or with `shards` each rank's
/// share, the shares then exchanged.
pub(crate) fn optimizer_step<T: Float>(
    optimizer: &mut dyn Optimizer<T>,
    params: &dyn Parameters<T>,
    shards: Option<&dyn Collective>,
) {
    match shards {
        None => optimizer.step(params),
        Some(g) => {
            optimizer.step_share(params, distributed::share_of(g));
            distributed::gather_parameters(g, params);
        }
    }
}

/// With `shards`, puts the optimizer's state together from the ranks'
/// shares (every rank calls it at the same points).
pub(crate) fn gather_optimizer_state<T: Float>(
    optimizer: &mut dyn Optimizer<T>,
    shards: Option<&dyn Collective>,
) -> Result<(), TrainError> {
    let Some(g) = shards else { return Ok(()) };
    distributed::gather_optimizer_state(g, optimizer).map_err(|e| {
        TrainError::Config(format!(
            "the optimizer's state, put together from the ranks' shares, is refused: {e}"
        ))
    })
}

/// One step's gradient sums (see [`averaged_step`]), in buckets of about
/// `bucket_mb` MiB; with `sharded`, this rank's share of each gradient only.
pub(crate) fn step_sums<'g, T: Float>(
    group: &'g dyn Collective,
    params: &dyn Parameters<T>,
    samples: usize,
    bucket_mb: f64,
    sharded: bool,
) -> Buckets<'g, T> {
    Buckets::new(
        group,
        params,
        samples as f64,
        bucket_mb * (1 << 20) as f64,
        2,
        sharded,
    )
}

/// Runs `backward` (the step's backward pass, returning this rank's mean
/// loss over its `samples`) while `sums` starts a bucket of gradients as
/// soon as backward reports its parameters finished; then makes every
/// trainable parameter's gradient the mean gradient of the whole batch (each
/// rank's mean weighted by its samples, as one process training on the
/// whole batch has it) and returns the whole batch's mean loss. The loss and
/// the sample count travel with the last bucket.
pub(crate) fn averaged_step<T: Float>(
    mut sums: Buckets<'_, T>,
    samples: usize,
    backward: impl FnOnce() -> f64,
) -> f64 {
    let loss = {
        let mut ready = |p: &dyn std::any::Any| sums.ready(p);
        distributed::with_gradients_ready(&mut ready, backward)
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed::ThreadGroup;

    #[test]
    fn ranks_print_lines_not_bars_and_only_rank_0_prints() {
        let settings = RunSettings {
            samples: 10,
            batch_size: 2,
            epochs: 1,
            shuffle_seed: None,
            sync_batch_norm: false,
            bucket_mb: 1.0,
            shard_optimizer: false,
        };
        let model: Vec<(String, nn_core::Param<f32>)> = Vec::new();
        let chosen = ThreadGroup::run(2, |g| {
            let mut verbosity = Verbosity::Auto;
            join_run::<f32>(Some(g), &model, &settings, &[], &mut verbosity, Vec::new()).unwrap();
            verbosity
        });
        assert_eq!(chosen, [Verbosity::Lines, Verbosity::Silent]);
    }
}
