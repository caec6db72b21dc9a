//! The TensorBoard callback end to end: a small model trains with it, and the
//! event files read back (with `nn::train::read_events`, every CRC checked)
//! hold the history's values at Keras's steps and tags, histograms that
//! describe the parameters and their gradients, and nothing else; a corrupt
//! byte is caught. `tests/tensorboard_check.py` reads the same files with
//! TensorBoard's own reader: set `NN_TENSORBOARD_KEEP=DIR` to keep a copy.

use crate::common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use common::scratch;
use nn::ndarray::array;
use nn::prelude::*;
use nn::train::{
    event_files, read_events, BatchLogs, Callback, Context, Control, EpochLogs, Event,
    EventFileError, History, TensorBoard, TrainError,
};

sequential! {
    pub struct Net: input(2) {
        Dense(8, activation = relu),
        Dense(2),
    }
}

const EPOCHS: usize = 3;
/// 8 samples in batches of 2: 4 optimizer steps per epoch.
const STEPS_PER_EPOCH: usize = 4;
const BATCH_PERIOD: usize = 2;

fn training_data() -> Dataset<f32> {
    let x = array![
        [0.0f32, 0.0],
        [0.0, 1.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.1, 0.0],
        [0.0, 0.9],
        [0.9, 0.1],
        [1.0, 0.9]
    ];
    Dataset::new(x.into_dyn(), vec![0, 1, 1, 0, 0, 1, 1, 0])
}

fn validation_data() -> Dataset<f32> {
    let x = array![[0.1f32, 0.1], [0.1, 0.9], [0.9, 0.0], [0.9, 0.9]];
    Dataset::new(x.into_dyn(), vec![0, 1, 1, 0])
}

/// A parameter's or gradient's size and sum.
#[derive(Clone, Debug)]
struct Summary {
    len: usize,
    sum: f64,
}

fn summarize<'a>(values: impl Iterator<Item = &'a f32>) -> Summary {
    let (mut len, mut sum) = (0, 0.0f64);
    for v in values {
        len += 1;
        sum += f64::from(*v);
    }
    Summary { len, sum }
}

/// A summary of each parameter (or of its gradient), by the parameter's name.
type ByParameter = Vec<(String, Summary)>;

/// What one epoch left in the parameters.
struct EpochSeen {
    /// The gradients of the epoch's last batch.
    gradients: ByParameter,
    /// The weights at the epoch's end.
    weights: ByParameter,
}

/// What the training loop itself showed the callbacks, to compare the files with.
#[derive(Default)]
struct Seen {
    /// `(step, loss, lr)` of every batch.
    batches: Vec<(usize, f64, f64)>,
    /// The gradients of the latest batch.
    latest_gradients: ByParameter,
    epochs: Vec<EpochSeen>,
}

/// Records what the loop shows; runs before the TensorBoard callback.
struct Recorder(Rc<RefCell<Seen>>);

impl Callback<f32> for Recorder {
    fn on_before_optimizer_step(
        &mut self,
        _batch: &BatchLogs,
        ctx: &mut Context<'_, f32>,
    ) -> Result<(), TrainError> {
        let mut gradients = Vec::new();
        ctx.params.visit_params(&mut |name, p| {
            if let Some(g) = p.grad().as_ref() {
                gradients.push((name.to_string(), summarize(g.iter())));
            }
        });
        self.0.borrow_mut().latest_gradients = gradients;
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        batch: &BatchLogs,
        _ctx: &mut Context<'_, f32>,
    ) -> Result<Control, TrainError> {
        self.0
            .borrow_mut()
            .batches
            .push((batch.step, batch.loss, batch.lr));
        Ok(Control::Continue)
    }

    fn on_epoch_end(
        &mut self,
        _logs: &EpochLogs,
        ctx: &mut Context<'_, f32>,
    ) -> Result<Control, TrainError> {
        let mut weights = Vec::new();
        ctx.params.visit_params(&mut |name, p| {
            weights.push((name.to_string(), summarize(p.value().iter())));
        });
        let mut seen = self.0.borrow_mut();
        let gradients = seen.latest_gradients.clone();
        seen.epochs.push(EpochSeen { gradients, weights });
        Ok(Control::Continue)
    }
}

/// One logged training run, shared by the tests below.
struct Run {
    log_dir: PathBuf,
    history: History,
    seen: Seen,
    train: Vec<Event>,
    validation: Vec<Event>,
}

/// The one event file in `dir`, and its events.
fn only_event_file(dir: &Path) -> (PathBuf, Vec<Event>) {
    let files = event_files(dir).unwrap();
    assert_eq!(files.len(), 1, "{}: {files:?}", dir.display());
    let events = read_events(&files[0]).unwrap();
    (files[0].clone(), events)
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let log_dir = scratch("tensorboard_logs");
        let (data, val) = (training_data(), validation_data());
        let seen = Rc::new(RefCell::new(Seen::default()));
        let mut model = Net::with_seed(0);
        let mut opt = Adam::new(AdamConfig {
            lr: 0.01,
            ..Default::default()
        })
        .unwrap();
        let history = fit(
            &mut model,
            &mut opt,
            &data,
            FitOptions {
                epochs: EPOCHS,
                batch_size: 2,
                loss: Loss::CrossEntropy.into(),
                validation: Some(&val),
                callbacks: vec![
                    Box::new(Recorder(seen.clone())),
                    Box::new(
                        TensorBoard::new(&log_dir)
                            .histogram_freq(1)
                            .update_freq_batches(BATCH_PERIOD),
                    ),
                ],
                verbosity: Verbosity::Silent,
                ..Default::default()
            },
        )
        .unwrap();
        if let Some(keep) = std::env::var_os("NN_TENSORBOARD_KEEP") {
            copy_logs(&log_dir, Path::new(&keep));
        }
        let (_, train) = only_event_file(&log_dir.join("train"));
        let (_, validation) = only_event_file(&log_dir.join("validation"));
        let seen = Rc::try_unwrap(seen).ok().unwrap().into_inner();
        Run {
            log_dir,
            history,
            seen,
            train,
            validation,
        }
    })
}

/// Copies `train/` and `validation/` of `from` into `to`, for
/// `tests/tensorboard_check.py` (copies only: nothing in `to` is removed).
fn copy_logs(from: &Path, to: &Path) {
    for split in ["train", "validation"] {
        std::fs::create_dir_all(to.join(split)).unwrap();
        for file in event_files(from.join(split)).unwrap() {
            std::fs::copy(&file, to.join(split).join(file.file_name().unwrap())).unwrap();
        }
    }
}

/// `(step, value)` of every event holding `tag`.
fn series(events: &[Event], tag: &str) -> Vec<(i64, f32)> {
    events
        .iter()
        .filter_map(|e| Some((e.step, e.scalar(tag)?)))
        .collect()
}

fn tags(events: &[Event]) -> BTreeSet<String> {
    events
        .iter()
        .flat_map(|e| e.summary.iter().map(|v| v.tag.clone()))
        .collect()
}

fn epoch_series(values: impl Iterator<Item = f64>) -> Vec<(i64, f32)> {
    values
        .enumerate()
        .map(|(e, v)| (e as i64, v as f32))
        .collect()
}

#[test]
fn each_file_starts_with_its_version_and_times_increase() {
    let run = run();
    for events in [&run.train, &run.validation] {
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert!(events[0].summary.is_empty());
        assert!(events[1..].iter().all(|e| e.file_version.is_none()));
        // Seconds since 1970, written during this test run.
        assert!(events[0].wall_time > 1.6e9, "{}", events[0].wall_time);
        assert!(events.windows(2).all(|w| w[0].wall_time <= w[1].wall_time));
    }
}

#[test]
fn files_are_laid_out_as_keras_lays_them_out() {
    let run = run();
    for split in ["train", "validation"] {
        let (path, _) = only_event_file(&run.log_dir.join(split));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // events.out.tfevents.<seconds>.<host>.<pid>.<n>
        let rest = name.strip_prefix("events.out.tfevents.").unwrap();
        let seconds: u64 = rest.split('.').next().unwrap().parse().unwrap();
        assert!(seconds > 1_600_000_000, "{name}");
        let pid = std::process::id().to_string();
        assert!(
            rest.rsplit('.').nth(1) == Some(pid.as_str()),
            "{name}: no pid {pid}"
        );
    }
}

#[test]
fn epoch_scalars_equal_the_history_at_epoch_steps() {
    let run = run();
    let epochs = &run.history.epochs;
    assert_eq!(epochs.len(), EPOCHS);
    let train = |f: fn(&EpochLogs) -> f64| epoch_series(epochs.iter().map(f));
    assert_eq!(series(&run.train, "epoch_loss"), train(|e| e.loss));
    assert_eq!(
        series(&run.train, "epoch_accuracy"),
        train(|e| e.accuracy().unwrap())
    );
    assert_eq!(series(&run.train, "epoch_learning_rate"), train(|e| e.lr));
    // Validation under the same tags, `val_` dropped, in its own file.
    assert_eq!(
        series(&run.validation, "epoch_loss"),
        train(|e| e.val_loss.unwrap())
    );
    assert_eq!(
        series(&run.validation, "epoch_accuracy"),
        train(|e| e.val_accuracy().unwrap())
    );
    assert_eq!(
        tags(&run.validation),
        BTreeSet::from(["epoch_loss".into(), "epoch_accuracy".into()])
    );
}

/// With a short last batch (8 samples in batches of 3: 3, 3, 2), each
/// batch's loss counts by its samples in the running mean, as in Keras's
/// loss tracker: the third step logs (3·l₀ + 3·l₁ + 2·l₂) / 8, the epoch's
/// loss.
#[test]
fn the_running_batch_loss_weights_each_batch_by_its_samples() {
    let log_dir = scratch("tensorboard_uneven");
    let seen = Rc::new(RefCell::new(Seen::default()));
    let history = fit(
        &mut Net::with_seed(1),
        &mut Adam::new(AdamConfig::default()).unwrap(),
        &training_data(),
        FitOptions {
            batch_size: 3,
            loss: Loss::CrossEntropy.into(),
            callbacks: vec![
                Box::new(Recorder(seen.clone())),
                Box::new(TensorBoard::new(&log_dir).update_freq_batches(1)),
            ],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let losses: Vec<f64> = seen.borrow().batches.iter().map(|b| b.1).collect();
    assert_eq!(losses.len(), 3);
    let want = [
        losses[0],
        (losses[0] + losses[1]) / 2.0,
        (3.0 * losses[0] + 3.0 * losses[1] + 2.0 * losses[2]) / 8.0,
    ];
    let (_, events) = only_event_file(&log_dir.join("train"));
    let logged: Vec<f32> = series(&events, "batch_loss").iter().map(|e| e.1).collect();
    let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_eq!(logged, want32);
    assert!((want[2] - history.epochs[0].loss).abs() <= 1e-6 * want[2]);
}

#[test]
fn batch_scalars_are_logged_every_second_step() {
    let run = run();
    // Keras's running mean over the epoch's batches so far (all of 2
    // samples here, so the plain mean), which the epoch's last batch ends
    // at the epoch's loss.
    let running: Vec<f64> = run
        .seen
        .batches
        .chunks(STEPS_PER_EPOCH)
        .flat_map(|epoch| {
            (1..=epoch.len()).map(|n| epoch[..n].iter().map(|b| b.1).sum::<f64>() / n as f64)
        })
        .collect();
    for (epoch, logs) in run.history.epochs.iter().enumerate() {
        let last = running[(epoch + 1) * STEPS_PER_EPOCH - 1];
        assert!(
            (last - logs.loss).abs() <= 1e-6 * logs.loss.abs(),
            "epoch {epoch}: {last} against {}",
            logs.loss
        );
    }
    let expected: Vec<(i64, f32)> = run
        .seen
        .batches
        .iter()
        .zip(&running)
        .filter(|((step, _, _), _)| step.is_multiple_of(BATCH_PERIOD))
        .map(|(&(step, _, _), &mean)| (step as i64, mean as f32))
        .collect();
    let steps: Vec<i64> = expected.iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, [0, 2, 4, 6, 8, 10]);
    assert_eq!(run.seen.batches.len(), EPOCHS * STEPS_PER_EPOCH);
    assert_eq!(series(&run.train, "batch_loss"), expected);
    let rates: Vec<(i64, f32)> = run
        .seen
        .batches
        .iter()
        .filter(|(step, _, _)| step.is_multiple_of(BATCH_PERIOD))
        .map(|&(step, _, lr)| (step as i64, lr as f32))
        .collect();
    assert_eq!(series(&run.train, "batch_learning_rate"), rates);
}

#[test]
fn histograms_describe_weights_and_last_gradients_each_epoch() {
    let run = run();
    assert_eq!(run.seen.epochs.len(), EPOCHS);
    for (epoch, EpochSeen { gradients, weights }) in run.seen.epochs.iter().enumerate() {
        let events: Vec<&Event> = run
            .train
            .iter()
            .filter(|e| e.step == epoch as i64)
            .collect();
        let histogram = |tag: &str| {
            events
                .iter()
                .find_map(|e| e.histogram(tag))
                .unwrap_or_else(|| panic!("epoch {epoch}: no histogram {tag}"))
        };
        let gradient_tags = gradients
            .iter()
            .map(|(name, s)| (format!("{name}_grad"), s));
        let weight_tags = weights.iter().map(|(name, s)| (name.clone(), s));
        for (tag, expected) in weight_tags.chain(gradient_tags) {
            let h = histogram(&tag);
            assert_eq!(h.num, expected.len as f64, "epoch {epoch}, {tag}");
            // Summed in the same order in f64: exactly equal.
            assert_eq!(h.sum, expected.sum, "epoch {epoch}, {tag}");
            assert_eq!(h.bucket_counts.iter().sum::<f64>(), h.num, "{tag}");
            assert_eq!(h.bucket_limits.len(), h.bucket_counts.len(), "{tag}");
            assert!(*h.bucket_limits.last().unwrap() >= h.max, "{tag}");
            assert!(h.min <= h.max && h.sum_squares >= 0.0, "{tag}");
        }
    }
    // Both layers' weights and biases, and their gradients.
    let first = &run.seen.epochs[0];
    assert_eq!((first.weights.len(), first.gradients.len()), (4, 4));
}

#[test]
fn nothing_else_is_logged() {
    let run = run();
    let EpochSeen { gradients, weights } = &run.seen.epochs[0];
    let mut expected: BTreeSet<String> = [
        "epoch_loss",
        "epoch_accuracy",
        "epoch_learning_rate",
        "batch_loss",
        "batch_learning_rate",
    ]
    .map(String::from)
    .into();
    expected.extend(weights.iter().map(|(n, _)| n.clone()));
    expected.extend(gradients.iter().map(|(n, _)| format!("{n}_grad")));
    assert_eq!(tags(&run.train), expected);
}

#[test]
fn a_corrupt_byte_is_detected() {
    let run = run();
    let (path, _) = only_event_file(&run.log_dir.join("train"));
    let bytes = std::fs::read(&path).unwrap();
    let dir = scratch("tensorboard_corrupt");
    for at in [0, 10, 20, bytes.len() / 2, bytes.len() - 1] {
        let corrupt_path = dir.join(format!("events.out.tfevents.corrupt.{at}"));
        let mut corrupt = bytes.clone();
        corrupt[at] ^= 0x40;
        std::fs::write(&corrupt_path, &corrupt).unwrap();
        match read_events(&corrupt_path) {
            Err(e @ EventFileError::Corrupt { .. }) => {
                assert!(
                    e.to_string().contains(&*corrupt_path.to_string_lossy()),
                    "{e}"
                );
            }
            other => panic!("byte {at} flipped: {other:?}"),
        }
    }
    // A file cut short, as one still being written may be.
    let cut = dir.join("events.out.tfevents.cut");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let err = read_events(&cut).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

fn fit_with(callback: TensorBoard, validation: bool) -> Result<History, TrainError> {
    let (data, val) = (training_data(), validation_data());
    let mut model = Net::with_seed(1);
    let mut opt = Sgd::new(SgdConfig::default()).unwrap();
    fit(
        &mut model,
        &mut opt,
        &data,
        FitOptions {
            epochs: 1,
            batch_size: 4,
            loss: Loss::CrossEntropy.into(),
            validation: validation.then_some(&val as &dyn Data<f32>),
            callbacks: vec![Box::new(callback)],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
}

#[test]
fn without_validation_there_is_no_validation_directory() {
    let dir = scratch("tensorboard_no_validation");
    fit_with(TensorBoard::new(&dir), false).unwrap();
    let (_, events) = only_event_file(&dir.join("train"));
    assert!(!dir.join("validation").exists());
    // Per-epoch scalars only, by default: no batches, no histograms.
    assert_eq!(
        tags(&events),
        BTreeSet::from([
            "epoch_loss".into(),
            "epoch_accuracy".into(),
            "epoch_learning_rate".into()
        ])
    );
}

#[test]
fn throughput_is_logged_on_request() {
    let dir = scratch("tensorboard_throughput");
    let history = fit_with(TensorBoard::new(&dir).write_throughput(true), true).unwrap();
    let (_, events) = only_event_file(&dir.join("train"));
    let epoch = &history.epochs[0];
    assert_eq!(
        series(&events, "epoch_samples_per_sec"),
        [(0, epoch.samples_per_sec as f32)]
    );
    assert_eq!(
        series(&events, "epoch_seconds"),
        [(0, epoch.seconds as f32)]
    );
}

#[test]
fn histograms_without_gradients_on_request() {
    let dir = scratch("tensorboard_no_grads");
    fit_with(
        TensorBoard::new(&dir).histogram_freq(1).write_grads(false),
        false,
    )
    .unwrap();
    let (_, events) = only_event_file(&dir.join("train"));
    let tags = tags(&events);
    assert!(tags.iter().any(|t| t.ends_with(".weight")), "{tags:?}");
    assert!(!tags.iter().any(|t| t.ends_with("_grad")), "{tags:?}");
}

#[test]
fn a_second_run_opens_new_files() {
    let dir = scratch("tensorboard_two_runs");
    fit_with(TensorBoard::new(&dir), true).unwrap();
    fit_with(TensorBoard::new(&dir), true).unwrap();
    assert_eq!(event_files(dir.join("train")).unwrap().len(), 2);
    assert_eq!(event_files(dir.join("validation")).unwrap().len(), 2);
}

#[test]
fn a_zero_batch_period_is_refused() {
    let dir = scratch("tensorboard_zero_period");
    let err = fit_with(TensorBoard::new(&dir).update_freq_batches(0), false).unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    assert!(err.to_string().contains("update_freq_batches"), "{err}");
}

#[test]
fn an_unwritable_log_dir_is_an_error_naming_it() {
    let dir = scratch("tensorboard_unwritable");
    // A file where the log directory should go.
    let blocker = dir.join("logs");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let err = fit_with(TensorBoard::new(&blocker), false).unwrap_err();
    match &err {
        TrainError::File { path, .. } => assert_eq!(path, &blocker.join("train")),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains(&*blocker.to_string_lossy()),
        "{err}"
    );
}

#[test]
fn reading_a_missing_file_names_it() {
    let path = scratch("tensorboard_missing").join("events.out.tfevents.none");
    let err = read_events(&path).unwrap_err();
    assert!(matches!(err, EventFileError::Io { .. }), "{err}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}
