//! Checkpoints and resume: a run stopped after any epoch and resumed with
//! `resume_from` ends with the weights, History and callback state of the
//! run that was never stopped (Adam, SGD with momentum and RMSprop, with
//! Dropout and BatchNorm); and a run killed (`SIGKILL`) at random moments —
//! mid-batch, mid-checkpoint — and restarted with the same options until it
//! finishes writes final weights byte-identical to the uninterrupted run's.
//! Every checkpoint left on disk loads, or is reported corrupt.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use nn::ndarray::{ArrayD, IxDyn};
use nn::optim::{PlateauMode, ReduceLrOnPlateau, StepLr};
use nn::prelude::*;
use nn::train::{Checkpoint, CsvLogger, EarlyStopping, PlateauOnMetric, ScheduleEachEpoch};

sequential! {
    /// Dropout and BatchNorm: both must resume exactly.
    struct Net: input(16) {
        Dense(256, activation = relu),
        BatchNorm,
        Dropout(0.3),
        Dense(256, activation = relu),
        Dropout(0.2),
        Dense(4),
    }
}

fn data() -> Dataset<f32> {
    let n = 480;
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 16]), |i| {
        (((i[0] * 16 + i[1]) * 2654435761) % 1000) as f32 / 500.0 - 1.0
    });
    let labels = (0..n)
        .map(|i| ((x[[i, 0]] + x[[i, 3]] > 0.0) as usize) * 2 + (x[[i, 7]] > 0.2) as usize)
        .collect();
    Dataset::new(x, labels)
}

fn optimizer(kind: &str) -> Box<dyn Optimizer<f32>> {
    match kind {
        "adam" => Box::new(
            Adam::new(AdamConfig {
                lr: 3e-3,
                ..Default::default()
            })
            .unwrap(),
        ),
        "sgd" => Box::new(
            Sgd::new(SgdConfig {
                lr: 0.05,
                momentum: 0.9,
                nesterov: true,
                ..Default::default()
            })
            .unwrap(),
        ),
        "rmsprop" => Box::new(
            RmsProp::new(RmsPropConfig {
                lr: 1e-3,
                momentum: 0.5,
                centered: true,
                ..Default::default()
            })
            .unwrap(),
        ),
        other => panic!("unknown optimizer {other}"),
    }
}

/// The run under test: `epochs` epochs, checkpointing into and resuming
/// from `dir` when given, with stateful callbacks and an epoch schedule.
fn train(kind: &str, epochs: usize, dir: Option<&Path>, model: &mut Net) -> nn::train::History {
    try_train(kind, epochs, dir, model).unwrap()
}

/// [`train`], its error returned.
fn try_train(
    kind: &str,
    epochs: usize,
    dir: Option<&Path>,
    model: &mut Net,
) -> Result<nn::train::History, nn::train::TrainError> {
    let data = data();
    let (train, val) = data.split(0.25);
    let mut opt = optimizer(kind);
    let csv = dir.map(|d| d.join("log.csv"));
    let mut callbacks: Vec<Box<dyn nn::train::Callback<f32>>> = vec![
        Box::new(EarlyStopping::new("val_loss", 100)),
        Box::new(ScheduleEachEpoch::new(StepLr::new(2, 0.5).unwrap())),
        Box::new(PlateauOnMetric::new(
            ReduceLrOnPlateau::new(PlateauMode::Min, 0.7, 0).unwrap(),
            "val_loss",
        )),
    ];
    if let Some(csv) = csv {
        callbacks.push(Box::new(CsvLogger::new(csv)));
    }
    fit(
        model,
        &mut *opt,
        &train,
        FitOptions {
            epochs,
            batch_size: 16,
            loss: Loss::CrossEntropy.into(),
            validation: Some(&val),
            callbacks,
            verbosity: Verbosity::Silent,
            checkpoint_dir: dir.map(Path::to_path_buf),
            resume_from: dir.map(Path::to_path_buf),
            ..Default::default()
        },
    )
}

fn weights(model: &Net) -> Vec<(String, ArrayD<f32>)> {
    model
        .named_state()
        .into_iter()
        .map(|(n, p)| {
            let v = p.value().clone();
            (n, v)
        })
        .collect()
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nn_crash_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Drops timings, which differ between runs, from a History.
fn without_timings(mut h: nn::train::History) -> nn::train::History {
    for e in &mut h.epochs {
        (e.seconds, e.samples_per_sec) = (0.0, 0.0);
    }
    h
}

#[test]
fn a_run_resumed_after_any_epoch_ends_as_the_uninterrupted_run() {
    for kind in ["adam", "sgd", "rmsprop"] {
        let mut reference = Net::with_seed(5);
        let full = train(kind, 5, None, &mut reference);
        for stop_after in [1, 3] {
            let dir = tempdir(&format!("{kind}_{stop_after}"));
            let mut first = Net::with_seed(5);
            train(kind, stop_after, Some(&dir), &mut first);
            // A new process would start from a fresh model: a different seed
            // shows that everything comes from the checkpoint.
            let mut resumed = Net::with_seed(99);
            let history = train(kind, 5, Some(&dir), &mut resumed);
            assert_eq!(
                weights(&resumed),
                weights(&reference),
                "{kind} after {stop_after}"
            );
            assert_eq!(
                without_timings(history),
                without_timings(full.clone()),
                "{kind}"
            );
            let csv = std::fs::read_to_string(dir.join("log.csv")).unwrap();
            assert_eq!(
                csv.lines().count(),
                6,
                "a header and one row per epoch:\n{csv}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn a_corrupt_or_mismatched_checkpoint_is_an_error_naming_the_file() {
    let dir = tempdir("corrupt");
    let mut model = Net::with_seed(1);
    train("adam", 1, Some(&dir), &mut model);
    let path = Checkpoint::<f32>::path_in(&dir);
    let bytes = std::fs::read(&path).unwrap();

    // One flipped byte in the data: the checksum catches it.
    let mut flipped = bytes.clone();
    let k = flipped.len() - 100;
    flipped[k] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = Checkpoint::<f32>::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("checkpoint.safetensors") && err.contains("checksum"),
        "{err}"
    );

    // Truncated.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Checkpoint::<f32>::load(&dir).unwrap_err().to_string();
    assert!(err.contains("not a usable checkpoint"), "{err}");

    // Another element type, named as such, the path said once.
    std::fs::write(&path, &bytes).unwrap();
    let err = Checkpoint::<f64>::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("not a usable checkpoint: it holds F32 tensors")
            && err.contains("this run trains in F64"),
        "{err}"
    );
    assert_eq!(err.matches("checkpoint.safetensors").count(), 1, "{err}");

    // Intact (its checksum recomputed) but with a rate no schedule can use.
    let mut odd = Checkpoint::<f32>::load(&dir).unwrap().unwrap();
    odd.lr_base = f64::NAN;
    odd.save(&dir).unwrap();
    let err = Checkpoint::<f32>::load(&dir).unwrap_err().to_string();
    assert!(err.contains("`lr_base` is NaN"), "{err}");
    std::fs::write(&path, &bytes).unwrap();

    // The checkpoint's file where its directory belongs: an error, not a
    // fresh start that saves over the checkpoint it was to continue.
    let mut fresh = Net::with_seed(3);
    let data = data();
    let err = fit(
        &mut fresh,
        &mut Adam::new(AdamConfig::default()).unwrap(),
        &data,
        FitOptions {
            loss: Loss::CrossEntropy.into(),
            checkpoint_dir: Some(dir.clone()),
            resume_from: Some(path.clone()),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("checkpoint.safetensors: not a directory"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the checkpoint changed"
    );

    // Resuming with an optimizer of another kind changes nothing and says why.
    let mut other = Net::with_seed(2);
    let before = weights(&other);
    let err = fit(
        &mut other,
        &mut Sgd::new(SgdConfig::default()).unwrap(),
        &data,
        FitOptions {
            loss: Loss::CrossEntropy.into(),
            resume_from: Some(dir.clone()),
            callbacks: vec![
                Box::new(EarlyStopping::new("val_loss", 100)),
                Box::new(ScheduleEachEpoch::new(StepLr::new(2, 0.5).unwrap())),
                Box::new(PlateauOnMetric::new(
                    ReduceLrOnPlateau::new(PlateauMode::Min, 0.7, 0).unwrap(),
                    "val_loss",
                )),
                Box::new(CsvLogger::new(dir.join("log.csv"))),
            ],
            validation: Some(&data),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("does not fit this run: cannot load Adam state into SGD"),
        "{err}"
    );
    assert_eq!(weights(&other), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_csv_log_changed_since_the_checkpoint_is_not_padded_with_zeros() {
    let dir = tempdir("csv");
    let log = dir.join("log.csv");
    train("adam", 2, Some(&dir), &mut Net::with_seed(1));
    let written = std::fs::read(&log).unwrap();

    // Cut shorter than the checkpoint recorded: an error naming the log,
    // which is left as it was.
    std::fs::write(&log, &written[..written.len() / 2]).unwrap();
    let err = try_train("adam", 3, Some(&dir), &mut Net::with_seed(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("log.csv") && err.contains("fewer than"),
        "{err}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), &written[..written.len() / 2]);

    // Rewritten since, longer, its rows not where the checkpoint's ended.
    let mut other = written.clone();
    other.insert(0, b'#');
    std::fs::write(&log, &other).unwrap();
    let err = try_train("adam", 3, Some(&dir), &mut Net::with_seed(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not end a row"), "{err}");
    assert_eq!(std::fs::read(&log).unwrap(), other);

    // Removed: a new log, its header and the epochs from here on.
    std::fs::remove_file(&log).unwrap();
    train("adam", 3, Some(&dir), &mut Net::with_seed(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(
        lines[0].starts_with("epoch") && lines[1].starts_with('3'),
        "{text:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tape model whose dropout draws from its tapes' random sources
/// (`Var::dropout`), not from a layer's.
#[derive(Module)]
struct TapeDropout {
    hidden: nn::layers::Dense<f32, 16, 64, nn::activation::Relu>,
    out: nn::layers::Dense<f32, 64, 4>,
}

impl TapeDropout {
    fn new(seed: u64) -> Self {
        use nn::rand::SeedableRng;
        let mut rng = nn::rand::rngs::StdRng::seed_from_u64(seed);
        let glorot = nn::init::Initializer::GlorotUniform;
        let zeros = nn::init::Initializer::Zeros;
        TapeDropout {
            hidden: nn::layers::Dense::new(Default::default(), true, glorot, zeros, &mut rng),
            out: nn::layers::Dense::new(Default::default(), true, glorot, zeros, &mut rng),
        }
    }

    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        self.out.forward(&self.hidden.forward(x).dropout(0.4, true))
    }
}

#[test]
fn a_tape_model_drawing_from_its_tapes_resumes_exactly() {
    let data = data();
    let run = |epochs: usize, dir: Option<&Path>, seed: u64| {
        let mut model = TapeDropout::new(seed);
        let mut opt = optimizer("adam");
        fit(
            &mut model,
            &mut *opt,
            &data,
            FitOptions {
                epochs,
                batch_size: 16,
                loss: Loss::CrossEntropy.into(),
                verbosity: Verbosity::Silent,
                checkpoint_dir: dir.map(Path::to_path_buf),
                resume_from: dir.map(Path::to_path_buf),
                ..Default::default()
            },
        )
        .unwrap();
        nn::module::Module::named_state(&model)
            .into_iter()
            .map(|(n, p)| (n, p.value().clone()))
            .collect::<Vec<_>>()
    };
    let full = run(4, None, 5);
    let dir = tempdir("tape_dropout");
    run(2, Some(&dir), 5);
    // Tapes made in between (as a new process would not have made them)
    // must not change the masks the resumed epochs draw.
    for _ in 0..3 {
        let _ = nn::Tape::<f32>::new();
    }
    assert_eq!(run(4, Some(&dir), 99), full);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child process of the kill test: runs (or resumes) the run in
/// `$NN_CRASH_DIR` to the end and writes its final weights there. Run by
/// itself, it trains uninterrupted and checks the run learns.
#[test]
fn child_run_to_the_end() {
    let dir = std::env::var_os("NN_CRASH_DIR").map(PathBuf::from);
    let mut model = Net::with_seed(5);
    let history = train("adam", 6, dir.as_deref(), &mut model);
    match dir {
        Some(dir) => model.save(dir.join("final.safetensors")).unwrap(),
        None => {
            let loss = history.metric("loss");
            assert!(loss[5].unwrap() < loss[0].unwrap(), "{loss:?}");
        }
    }
}

fn child(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &common::harness_name(module_path!(), "child_run_to_the_end"),
        "--test-threads",
        "1",
    ])
    .env("NN_CRASH_DIR", dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

#[test]
fn runs_killed_at_random_moments_finish_byte_identical() {
    // The uninterrupted run, in a child of its own, and how long it takes.
    let clean = tempdir("clean");
    std::fs::create_dir_all(&clean).unwrap();
    let start = Instant::now();
    assert!(child(&clean).status().unwrap().success());
    let span = start.elapsed();
    let want = std::fs::read(clean.join("final.safetensors")).unwrap();

    // Trials: kill the run at "random" moments (a fixed LCG sequence spread
    // over the uninterrupted run's duration) and restart it, until it
    // finishes; its final weights must be the uninterrupted run's, bytes
    // and all. Repeat until at least 20 runs died mid-way.
    let dir = tempdir("killed");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let (mut kills, mut trials) = (0, 0);
    while kills < 20 {
        trials += 1;
        assert!(trials <= 40, "only {kills} kills in 40 trials");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for _ in 0..4 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let fraction = (state >> 33) as f64 / (1u64 << 31) as f64;
            let mut process = child(&dir).spawn().unwrap();
            std::thread::sleep(span.mul_f64(fraction * 0.6));
            if process.try_wait().unwrap().is_none() {
                process.kill().unwrap();
                kills += 1;
            }
            process.wait().unwrap();
            // Whatever the kill left: a checkpoint that loads, or none yet.
            if let Err(e) = Checkpoint::<f32>::load(&dir) {
                panic!("a checkpoint left after a kill does not load: {e}");
            }
        }
        // Restarted until done.
        assert!(child(&dir).status().unwrap().success());
        let got = std::fs::read(dir.join("final.safetensors")).unwrap();
        assert!(
            got == want,
            "trial {trials}: the resumed run's weights differ from the uninterrupted run's"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    }
    eprintln!("{kills} kills over {trials} trials; a clean run takes {span:?}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&clean);
}
