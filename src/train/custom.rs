//! Keras's overridable `train_step`: a [`TrainStep`] does one batch its own
//! way (several models, several optimizers, several losses — a GAN), and
//! [`fit_custom`] gives it the rest of `fit`: epochs, shuffled batches,
//! progress, validation, callbacks, the NaN stop and the [`History`].

use nn_core::data::Data;
use nn_core::loss::Target;
use nn_core::ndarray::ArrayViewD;
use nn_core::{Float, Parameters};
use nn_optim::Optimizer;

use super::callbacks::{BatchLogs, Callback, Context};
use super::checks;
use super::data_parallel;
use super::epochs::{run_epochs, Trainer, Validation};
use super::fit::{logged_names, FitOptions};
use super::history::History;
use super::TrainError;
use crate::distributed::Collective;

/// One batch of training done your way. `train_step` returns the batch's
/// values by name (`loss` among them: it is the epoch's `loss`, and a NaN
/// stops training); they are averaged over the epoch (weighted by batch size)
/// and logged under those names.
///
/// ```
/// use nn::prelude::*;
/// use nn::train::{fit_custom, TrainStep};
/// use nn::ndarray::{ArrayD, ArrayViewD, IxDyn};
///
/// sequential! { struct Net: input(2) { Dense(1) } }
///
/// /// Mean squared error plus an L1 penalty on the outputs, by hand.
/// struct Step { net: Net, opt: Sgd }
///
/// impl TrainStep<f32> for Step {
///     fn train_step(&mut self, x: ArrayViewD<'_, f32>, target: &Target<'_, f32>) -> Vec<(String, f32)> {
///         let Target::Values(y) = target else { unreachable!() };
///         let out = self.net.forward_train(x).to_owned();
///         let diff = &out - y;
///         let n = diff.len() as f32;
///         let mse = diff.mapv(|d| d * d).sum() / n;
///         let l1 = out.mapv(f32::abs).sum() / n;
///         let grad = diff.mapv(|d| 2.0 * d / n) + out.mapv(|o| 0.01 * o.signum() / n);
///         self.net.backward(grad.view());
///         self.opt.step(&self.net);
///         self.opt.zero_grad(&self.net);
///         vec![("loss".into(), mse + 0.01 * l1), ("mse".into(), mse)]
///     }
///     fn parts(&mut self) -> (&dyn Parameters<f32>, &mut dyn Optimizer<f32>) {
///         (&self.net, &mut self.opt)
///     }
/// }
///
/// let x = ArrayD::from_shape_fn(IxDyn(&[64, 2]), |i| (i[0] + i[1]) as f32 / 64.0);
/// let y = x.sum_axis(nn::ndarray::Axis(1)).insert_axis(nn::ndarray::Axis(1));
/// let data = Dataset::with_values(x, y);
/// let mut step = Step { net: Net::with_seed(0), opt: Sgd::new(SgdConfig { lr: 0.1, ..Default::default() }).unwrap() };
/// let history = fit_custom(&mut step, &data, FitOptions { epochs: 3, verbosity: Verbosity::Silent, ..Default::default() })?;
/// assert!(history.last().unwrap().get("mse").is_some());
/// # Ok::<(), nn::train::TrainError>(())
/// ```
pub trait TrainStep<T: Float> {
    /// Forward, losses, backward and optimizer steps for one batch; returns
    /// its values by name, `loss` among them.
    fn train_step(&mut self, x: ArrayViewD<'_, T>, target: &Target<'_, T>) -> Vec<(String, T)>;

    /// One validation batch, in evaluation mode (Keras's `test_step`): its
    /// values by name, logged with `val_` in front. By default nothing, and no
    /// validation is logged.
    fn test_step(&mut self, _x: ArrayViewD<'_, T>, _target: &Target<'_, T>) -> Vec<(String, T)> {
        Vec::new()
    }

    /// What callbacks see: the parameters (what a checkpoint saves) and the
    /// optimizer (whose rate a schedule sets), e.g. `(&self.net, &mut self.opt)`.
    fn parts(&mut self) -> (&dyn Parameters<T>, &mut dyn Optimizer<T>);

    /// Training or evaluation mode (dropout, batch statistics).
    fn set_training(&mut self, _training: bool) {}

    /// Restarts the models' random draws (dropout) from `seed`, at the start
    /// of every epoch (see [`Fit::reseed`](super::Fit::reseed)).
    fn reseed(&self, _seed: u64) {}
}

/// Named values averaged over samples.
#[derive(Default)]
struct Means {
    sums: Vec<(String, f64)>,
    seen: usize,
}

impl Means {
    fn add<T: Float>(&mut self, values: &[(String, T)], n: usize) {
        for (name, v) in values {
            let v = v.as_f64() * n as f64;
            match self.sums.iter_mut().find(|(s, _)| s == name) {
                Some(slot) => slot.1 += v,
                None => self.sums.push((name.clone(), v)),
            }
        }
        self.seen += n;
    }

    fn means(&self) -> Vec<(String, f64)> {
        let n = self.seen.max(1) as f64;
        self.sums.iter().map(|(k, v)| (k.clone(), v / n)).collect()
    }
}

struct Custom<'s, 'g, S> {
    step: &'s mut S,
    running: Means,
    names: Option<Vec<String>>,
    group: Option<&'g dyn Collective>,
}

impl<T: Float, S: TrainStep<T>> Trainer<T> for Custom<'_, '_, S> {
    fn context(&mut self) -> Context<'_, T> {
        let (params, optimizer) = self.step.parts();
        Context { params, optimizer }
    }

    fn set_training(&mut self, training: bool) {
        self.step.set_training(training);
    }

    fn begin_epoch(&mut self) {
        self.running = Means::default();
    }

    fn reseed(&mut self, seed: u64) {
        self.step.reseed(seed);
    }

    fn lr_base(&self) -> f64 {
        0.0
    }

    fn set_lr_base(&mut self, _base: f64) {}

    fn set_step(&mut self, _step: usize) -> f64 {
        self.step.parts().1.learning_rate()
    }

    fn batch(
        &mut self,
        x: ArrayViewD<'_, T>,
        target: &Target<'_, T>,
        logs: &mut BatchLogs,
        _callbacks: &mut [Box<dyn Callback<T> + '_>],
    ) -> Result<Option<f64>, TrainError> {
        let values = self.step.train_step(x, target);
        let Some(loss) = values.iter().find(|(n, _)| n == "loss") else {
            return Err(TrainError::Config(format!(
                "train_step returned no `loss` (it returned {})",
                values
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        logs.loss = loss.1.as_f64();
        if let Some(group) = self.group {
            // The whole batch's loss, so every rank stops at the same step.
            let all =
                data_parallel::weighted_means(group, &[(String::new(), logs.loss)], logs.size);
            logs.loss = all[0].1;
        }
        if self.names.is_none() {
            self.names = Some(values.iter().map(|(n, _)| n.clone()).collect());
        }
        self.running.add(&values, logs.size);
        Ok(Some(logs.loss))
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        self.running
            .means()
            .into_iter()
            .filter(|(n, _)| n != "loss")
            .collect()
    }

    fn validate(&mut self, data: &dyn Data<T>, batch_size: usize) -> Validation {
        self.step.set_training(false);
        let mut means = Means::default();
        let mut batches = nn_core::data::Batches::new(data, batch_size, None, false);
        while let Some((x, y)) = batches.next_batch() {
            let n = y.len();
            means.add(&self.step.test_step(x, &y), n);
        }
        self.step.set_training(true);
        let all = means.means();
        let loss = all.iter().find(|(n, _)| n == "loss")?.1;
        Some((loss, all.into_iter().filter(|(n, _)| n != "loss").collect()))
    }

    fn metric_names(&self, validation: bool) -> Option<Vec<String>> {
        let names = self.names.clone()?;
        Some(logged_names(
            names.into_iter().filter(|n| n != "loss"),
            validation,
        ))
    }
}

/// Trains with your own [`TrainStep`], everything else as [`fit`](super::fit)
/// does: `options`' epochs, batch size, shuffling, validation, progress and
/// callbacks. The step owns its losses, metrics, clipping and schedules, so
/// `options.loss`, `metrics`, `clip_grad_*` and `lr_schedule` must be left
/// at their defaults (an error otherwise). Callbacks' gradient hook
/// ([`Callback::on_before_optimizer_step`]) does not run: the step steps.
/// With `options.distributed`, the step averages its gradients over the
/// ranks itself ([`crate::distributed::average_gradients`]) before stepping.
///
/// Monitored metrics are checked against the names the first batch returns
/// (and their `val_` twins when validating).
pub fn fit_custom<T: Float, S: TrainStep<T>, D: Data<T>>(
    step: &mut S,
    data: &D,
    options: FitOptions<'_, T>,
) -> Result<History, TrainError> {
    let data: &dyn Data<T> = data;
    checks::check_training_data(data, &options)?;
    if !options.metrics.is_empty()
        || options.clip_grad_norm.is_some()
        || options.clip_grad_value.is_some()
        || options.lr_schedule.is_some()
        || options.loss.builtin() != Some(nn_core::loss::Loss::SparseCategoricalCrossEntropy)
    {
        return Err(TrainError::Config(
            "fit_custom's train step owns its loss, metrics, clipping and schedule; \
             leave those options at their defaults"
                .into(),
        ));
    }
    if options.shard_optimizer {
        return Err(TrainError::Config(
            "fit_custom's train step owns its optimizer's step, so shard_optimizer cannot \
             split it; a sharded step calls average_gradient_shares, step_share and \
             gather_parameters itself (see nn::distributed)"
                .into(),
        ));
    }
    let mut trainer = Custom {
        step,
        running: Means::default(),
        names: None,
        group: options.distributed,
    };
    run_epochs(&mut trainer, data, options)
}
