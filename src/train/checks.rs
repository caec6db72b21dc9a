//! Misconfiguration found when `fit` or `fit_graph` starts, for the training
//! and the validation data, not mid-epoch: empty data, a batch size of 0,
//! samples the model does not take, a loss that cannot take the data's
//! targets or the model's outputs, outputs that do not fit the targets,
//! unusable clipping bounds, a monitored metric that will never be logged,
//! two schedules setting the learning rate.

use nn_core::data::{Batches, Data, TargetKind};
use nn_core::loss::Loss;
use nn_core::ndarray::{ArrayViewD, Axis};
use nn_core::{Float, GraphModel};

use super::callbacks::Callback;
use super::graph::{output_names, GraphData, GraphFitOptions};
use super::model::Fit;
use super::objective::TrainLoss;
use super::TrainError;
use crate::distributed::Collective;

fn config(message: String) -> TrainError {
    TrainError::Config(message)
}

/// The data is not empty and the batch size is positive.
pub(crate) fn check_data<T: Float>(
    data: &dyn Data<T>,
    batch_size: usize,
    what: &str,
) -> Result<(), TrainError> {
    if batch_size == 0 {
        return Err(config("batch_size must be at least 1".into()));
    }
    if data.is_empty() {
        return Err(config(format!("the {what} data holds no samples")));
    }
    Ok(())
}

/// Clipping bounds are numbers ≥ 0: a negative norm bound would flip every
/// gradient, a negative value bound clamp them all to it, and NaN clip
/// nothing.
pub(crate) fn check_clipping(norm: Option<f64>, value: Option<f64>) -> Result<(), TrainError> {
    for (name, bound) in [("clip_grad_norm", norm), ("clip_grad_value", value)] {
        if let Some(b) = bound.filter(|b| b.is_nan() || *b < 0.0) {
            return Err(config(format!("{name} must be at least 0, got {b}")));
        }
    }
    Ok(())
}

/// What `fit` and `fit_custom` check of their training data before the
/// first batch: [`check_data`], then [`check_whole_batch`].
pub(crate) fn check_training_data<T: Float>(
    data: &dyn Data<T>,
    options: &super::FitOptions<'_, T>,
) -> Result<(), TrainError> {
    check_data(data, options.batch_size, "training")?;
    check_whole_batch(
        data,
        options.batch_size,
        options.distributed,
        options.drop_last,
    )
}

/// With `drop_last`, the data fills at least one global batch (the batch
/// size times the ranks of `group`): else every epoch would train on
/// nothing and report success.
pub(crate) fn check_whole_batch<T: Float>(
    data: &dyn Data<T>,
    batch_size: usize,
    group: Option<&dyn Collective>,
    drop_last: bool,
) -> Result<(), TrainError> {
    let global_batch = batch_size * group.map_or(1, |g| g.size());
    if drop_last && data.len() < global_batch {
        return Err(config(format!(
            "drop_last with {} training samples and batches of {global_batch}: \
             every batch would be dropped",
            data.len()
        )));
    }
    Ok(())
}

/// The model takes the data's samples (when it declares their shape), the
/// loss takes its kind of target, and one sample's output fits the target:
/// as many classes as the labels name, or the targets' shape. `what` names
/// the data ("training", "validation").
pub(crate) fn check_model_and_loss<T: Float, M: Fit<T>>(
    model: &mut M,
    data: &dyn Data<T>,
    loss: &TrainLoss<'_, T>,
    what: &str,
) -> Result<(), TrainError> {
    if let Some(input) = model.input_shape() {
        let sample = data.sample_shape();
        if sample != input {
            return Err(config(format!(
                "the {what} data's samples are {sample:?}, but the model takes {input:?} \
                 (its `input(…)`)"
            )));
        }
    }
    let kind = data.target_kind();
    loss.check_targets(&kind).map_err(config)?;
    let mut one = Batches::new(data, 1, None, false);
    let Some((x, _)) = one.next_batch() else {
        return Ok(());
    };
    let was_training = model.is_training();
    model.set_training(false);
    let out = model.predict_batch(x);
    model.set_training(was_training);
    if let Some(l) = loss.builtin() {
        takes_the_outputs(l, out.view()).map_err(config)?;
        output_fits("the model outputs", &out.shape()[1..], &kind, what).map_err(config)?;
    }
    Ok(())
}

/// One sample's output (`per_sample`, the batch axis left out) fits the
/// targets: one output per class the labels name, or the targets' shape.
/// `subject` starts the message ("the model outputs", "output `aux` is").
fn output_fits(
    subject: &str,
    per_sample: &[usize],
    kind: &TargetKind,
    what: &str,
) -> Result<(), String> {
    match kind {
        TargetKind::Labels { classes } => {
            let width = per_sample.last().copied().unwrap_or(1);
            if per_sample.len() != 1 || width < *classes {
                return Err(format!(
                    "{subject} {per_sample:?} per sample, but the {what} labels name \
                     {classes} classes (a classifier's last layer needs one output per class)"
                ));
            }
        }
        TargetKind::Values { shape } => {
            if per_sample != shape.as_slice() {
                return Err(format!(
                    "{subject} {per_sample:?} per sample, but the {what} targets are \
                     {shape:?} per sample"
                ));
            }
        }
    }
    Ok(())
}

/// A graph's losses, loss weights and data fit its inputs and outputs: one
/// loss per output, one weight per output or none (all 1), an input array
/// per input and targets per output. The weights, all given.
pub(crate) fn graph_counts<T: Float, M: GraphModel<T>>(
    losses: &[Loss],
    weights: &[f64],
    data: &GraphData<T>,
) -> Result<Vec<f64>, String> {
    if losses.len() != M::OUTPUTS {
        return Err(format!(
            "the model has {} outputs but {} losses were given",
            M::OUTPUTS,
            losses.len()
        ));
    }
    if !weights.is_empty() && weights.len() != M::OUTPUTS {
        return Err(format!(
            "{} loss weights for {} outputs",
            weights.len(),
            M::OUTPUTS
        ));
    }
    if data.inputs.len() != M::INPUTS || data.targets.len() != M::OUTPUTS {
        return Err(format!(
            "the model takes {} inputs and {} outputs, the data holds {} inputs and {} targets",
            M::INPUTS,
            M::OUTPUTS,
            data.inputs.len(),
            data.targets.len()
        ));
    }
    Ok(if weights.is_empty() {
        vec![1.0; M::OUTPUTS]
    } else {
        weights.to_vec()
    })
}

/// What `fit_graph` checks when it starts (`what`: "training",
/// "validation"): [`graph_counts`], the batch size, samples, each loss
/// taking its output's targets and one sample's outputs fitting them. The
/// loss weights.
pub(crate) fn check_graph<T: Float, M: GraphModel<T>>(
    model: &mut M,
    options: &GraphFitOptions<'_, T>,
    data: &GraphData<T>,
    what: &str,
) -> Result<Vec<f64>, TrainError> {
    let weights = graph_counts::<T, M>(&options.losses, &options.loss_weights, data)
        .map_err(|e| config(format!("{e} ({what} data)")))?;
    if options.batch_size == 0 {
        return Err(config("batch_size must be at least 1".into()));
    }
    if data.is_empty() {
        return Err(config(format!("the {what} data holds no samples")));
    }
    let names = output_names::<T, M>();
    fn named(name: &str) -> impl Fn(String) -> TrainError + '_ {
        move |e| config(format!("output `{name}`: {e}"))
    }
    for ((loss, targets), name) in options.losses.iter().zip(&data.targets).zip(&names) {
        TrainLoss::<T>::from(*loss)
            .check_targets(&targets.kind())
            .map_err(named(name))?;
    }
    let one: Vec<ArrayViewD<'_, T>> = data
        .inputs
        .iter()
        .map(|x| x.slice_axis(Axis(0), (0..1).into()))
        .collect();
    let was_training = model.is_training();
    model.set_training(false);
    let outs = model.predict(&one);
    model.set_training(was_training);
    for (((out, targets), name), loss) in outs
        .iter()
        .zip(&data.targets)
        .zip(&names)
        .zip(&options.losses)
    {
        takes_the_outputs(*loss, out.view()).map_err(named(name))?;
        let subject = format!("output `{name}` is");
        output_fits(&subject, &out.shape()[1..], &targets.kind(), what).map_err(config)?;
    }
    Ok(weights)
}

/// A loss that takes probabilities gets outputs in `[0, 1]` (give or take
/// rounding): logits (a model without its final softmax or sigmoid) would
/// train on the log of negative numbers, or on clipped ones, without a word.
/// And `CrossEntropy`, which applies its own softmax, does not get rows that
/// are already a distribution: a softmax twice trains, slowly, without a word.
pub(crate) fn takes_the_outputs<T: Float>(
    loss: Loss,
    outputs: ArrayViewD<'_, T>,
) -> Result<(), String> {
    if loss == Loss::CrossEntropy {
        return takes_logits(loss, outputs);
    }
    let remedy = match loss {
        Loss::SparseCategoricalCrossEntropy | Loss::CategoricalCrossEntropy | Loss::KlDivergence => {
            "end the model with a softmax, or train on logits with Loss::CrossEntropy"
        }
        Loss::BinaryCrossEntropy => {
            "end the model with a sigmoid, or train on logits with Loss::BinaryCrossEntropyWithLogits"
        }
        _ => return Ok(()),
    };
    // Not NaN or infinity: the non-finite-loss stop names those. Rounding
    // may carry a mixture of probabilities a little past 0 or 1, which the
    // losses clamp; logits stray much further.
    const SLACK: f64 = 1e-4;
    let outside = |v: &f64| v.is_finite() && !(-SLACK..=1.0 + SLACK).contains(v);
    match outputs.iter().find(|v| outside(&v.as_f64())) {
        Some(v) => Err(format!(
            "the loss {} takes probabilities, but the model outputs {v} for the first sample \
             (logits?): {remedy}",
            loss.name()
        )),
        None => Ok(()),
    }
}

/// Outputs of two or more classes whose every row is a distribution (each
/// value in `[0, 1]`, the row summing to 1) are a softmax's, not logits:
/// logits land there only by design.
fn takes_logits<T: Float>(loss: Loss, outputs: ArrayViewD<'_, T>) -> Result<(), String> {
    const SLACK: f64 = 1e-4;
    let width = outputs.shape().last().copied().unwrap_or(0);
    if outputs.ndim() < 2 || width < 2 || outputs.is_empty() {
        return Ok(());
    }
    let distribution = |row: ArrayViewD<'_, T>| {
        let values: Vec<f64> = row.iter().map(|v| v.as_f64()).collect();
        values.iter().all(|v| (0.0..=1.0).contains(v))
            && (values.iter().sum::<f64>() - 1.0).abs() <= SLACK
    };
    let last = Axis(outputs.ndim() - 1);
    if outputs
        .lanes(last)
        .into_iter()
        .all(|row| distribution(row.into_dyn()))
    {
        return Err(format!(
            "the loss {} takes logits (it applies its own softmax), but the model's outputs \
             for the first sample sum to 1 (a softmax already?): end the model without its \
             softmax, or train on probabilities with Loss::SparseCategoricalCrossEntropy \
             (labels) or Loss::CategoricalCrossEntropy (one-hot rows)",
            loss.name()
        ));
    }
    Ok(())
}

/// No callback sets the learning rate beside a per-step schedule, which
/// would overwrite the callback's rate at the next step.
pub(crate) fn check_schedules<T: Float>(
    per_step_schedule: bool,
    callbacks: &[Box<dyn Callback<T> + '_>],
) -> Result<(), TrainError> {
    if per_step_schedule && callbacks.iter().any(|cb| cb.sets_learning_rate()) {
        return Err(config(
            "`lr_schedule` sets the learning rate at every step, so a callback that sets it \
             (ScheduleEachEpoch, PlateauOnMetric) would be overwritten: use one of the two"
                .into(),
        ));
    }
    Ok(())
}

/// Every metric a callback monitors is among `logged`; else an error with the
/// closest name.
pub(crate) fn check_monitors<T: Float>(
    callbacks: &[Box<dyn Callback<T> + '_>],
    logged: &[String],
) -> Result<(), TrainError> {
    for cb in callbacks {
        for wanted in cb.monitors() {
            if logged.iter().any(|l| l == wanted) {
                continue;
            }
            let hint = suggest(wanted, logged)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(config(format!(
                "a callback monitors `{wanted}`, which this run never logs (it logs {}){hint}",
                logged
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// The logged name a user most likely meant: Keras's short names spelled
/// out (`val_acc` → `val_accuracy`), else the nearest by edit distance.
pub(crate) fn suggest<'a>(wanted: &str, logged: &'a [String]) -> Option<&'a str> {
    // Keras's other spellings, alone or after an output's name (`cls_acc`).
    const SPELLINGS: [(&str, &str); 4] = [
        ("acc", "accuracy"),
        ("mean_absolute_error", "mae"),
        ("mean_squared_error", "mse"),
        ("root_mean_squared_error", "rmse"),
    ];
    for (other, ours) in SPELLINGS {
        let Some(head) = wanted.strip_suffix(other) else {
            continue;
        };
        if head.is_empty() || head.ends_with('_') {
            let full = format!("{head}{ours}");
            if let Some(l) = logged.iter().find(|l| **l == full) {
                return Some(l);
            }
        }
    }
    logged
        .iter()
        .map(|l| (edit_distance(wanted, l), l))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, l)| l.as_str())
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use nn_core::ndarray::{arr1, Array1};

    #[test]
    fn probabilities_pass_give_or_take_rounding_and_logits_do_not() {
        let check =
            |v: Array1<f32>| takes_the_outputs(Loss::CategoricalCrossEntropy, v.into_dyn().view());
        assert!(check(arr1(&[0.0, 0.25, 1.0])).is_ok());
        // A mixture summed in f32, and 1 − q.
        assert!(check(arr1(&[1.000_000_1, -1e-8])).is_ok());
        assert!(
            check(arr1(&[f32::NAN, 0.5])).is_ok(),
            "NaN is the NaN stop's"
        );
        let err = check(arr1(&[0.2, -1.3])).unwrap_err();
        assert!(
            err.contains("outputs -1.3") && err.contains("Loss::CrossEntropy"),
            "{err}"
        );
        assert!(takes_the_outputs(Loss::Mse, arr1(&[-5.0f32]).into_dyn().view()).is_ok());
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keras_short_names_and_typos_find_their_metric() {
        let logged = names(&["loss", "accuracy", "val_loss", "val_accuracy", "lr"]);
        assert_eq!(suggest("val_acc", &logged), Some("val_accuracy"));
        assert_eq!(suggest("val_los", &logged), Some("val_loss"));
        assert_eq!(suggest("acc", &logged), Some("accuracy"));
        assert_eq!(suggest("perplexity", &logged), None);
        // After an output's name, as a graph logs them.
        let logged = names(&["loss", "val_cls_accuracy", "val_reg_mae", "val_reg_rmse"]);
        assert_eq!(suggest("val_cls_acc", &logged), Some("val_cls_accuracy"));
        let spelled = "val_reg_mean_absolute_error";
        assert_eq!(suggest(spelled, &logged), Some("val_reg_mae"));
        let spelled = "val_reg_root_mean_squared_error";
        assert_eq!(suggest(spelled, &logged), Some("val_reg_rmse"));
        assert_eq!(suggest("val_clsacc", &logged), None);
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("val_loss", "val_loss"), 0);
    }
}
