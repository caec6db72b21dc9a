//! Mutation testing of the MNIST loader: fuzzing on stable Rust (`cargo
//! fuzz` needs nightly).
//!
//! Each case starts from a small valid MNIST (the first 20 training and 10
//! test images of the real data in `../shared/data/mnist`, or synthetic
//! 28×28 images if that is absent), mutates one or two of its four files with
//! a few seeded random edits, writes them (each plain or gzip-compressed,
//! again at random) into a scratch directory and calls [`Mnist::load`] on it.
//! The edits: bit flips; bytes set to 0, 255 or random; truncation; ranges
//! deleted, duplicated or inserted; header dimensions set to edge values (0,
//! 27, 29, 2^31, 2^32 - 1, …); magic number bytes changed; another file's
//! bytes put in place; and, for a gzip file, the same edits on the compressed
//! stream, or garbage or a second gzip member appended after it.
//!
//! Every case must
//! - not panic (checked with `catch_unwind`);
//! - return either a valid `Mnist` (each set non-empty, samples `[28, 28]`,
//!   pixels in `[0, 1]`, one label per image, every label < 10) or an error
//!   whose message names the file (or directory) it is about;
//! - allocate at most 64 MiB at once on its thread (the files are under
//!   1 MB), measured by the peak-counting allocator in `tests/peak/`.
//!
//! The edits themselves are in `tests/mnist_mutate/`.
//!
//! # Running it
//!
//! By default 500 cases run, in a fraction of a second (dev profile), as part
//! of `cargo test`:
//!
//! ```text
//! cargo test -p nn-core --test mnist_mutations
//! ```
//!
//! At length, set `NN_MUTATIONS`; `--nocapture` shows progress and, at the
//! end, how many cases loaded and how often each kind of error came up. The
//! time goes into gzip and the file system, optimised in the dev profile too,
//! so `--release` gains little: about 6,000 cases a second per thread with
//! the files in memory (`NN_MUTATION_DIR=/dev/shm`; 3 million took 9 minutes
//! on one core), 2,500 on an idle disk, far fewer on one busy with builds.
//!
//! ```text
//! NN_MUTATIONS=1000000 NN_MUTATION_DIR=/dev/shm cargo test --release -p nn-core --test mnist_mutations -- --nocapture
//! ```
//!
//! Other knobs:
//! - `NN_MUTATION_SEED=7`: another sequence of cases (default 0). Case `i` of
//!   seed `s` is the same on every machine and thread count.
//! - `NN_MUTATION_THREADS=4`: worker threads (default: every core).
//! - `NN_MUTATION_CASE=12345`: replay one case: print its edits and the
//!   loader's answer, and leave its files in
//!   `target/tmp/mnist_mutations/replay` (or under `NN_MUTATION_DIR`) to
//!   inspect or to load by hand.
//! - `NN_MUTATION_DIR=/dev/shm`: where the cases' files are written (default
//!   `target/tmp`). Each case rewrites a file or two, so on a disk busy with
//!   builds a run can be ten times slower than in memory.
//!
//! A failing case stops the run and prints its seed, number, edits and
//! where its files are left; `NN_MUTATION_SEED=… NN_MUTATION_CASE=…` replays
//! it.

mod mnist_fixtures;
mod mnist_mutate;
mod peak;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use mnist_mutate::{base_files, mutate, Base};
use nn_core::data::mnist::{Mnist, MnistError, FILES};
use peak::peak_during;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Cases run by plain `cargo test`.
const DEFAULT_CASES: usize = 500;
/// The most one load may hold allocated at once.
const PEAK_LIMIT: usize = 64 << 20;

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

#[test]
fn mutated_files_load_or_fail_cleanly_within_bounded_memory() {
    let base = base_files();
    let seed = env_number("NN_MUTATION_SEED").unwrap_or(0);
    if let Some(case) = env_number("NN_MUTATION_CASE") {
        replay(&base, seed, case);
        return;
    }
    let cases = env_number("NN_MUTATIONS").map_or(DEFAULT_CASES, |n| n as usize);
    let threads = env_number("NN_MUTATION_THREADS")
        .map(|n| n as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, cases.max(1));

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let failure = Mutex::new(None::<String>);
    let tally = Mutex::new(Tally::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (base, next, failed, failure, tally) = (&base, &next, &failed, &failure, &tally);
            s.spawn(move || {
                // The process id keeps a dev and a release run apart.
                let name = format!("mnist_mutations/{}-{t}", std::process::id());
                let mut dir = Scratch::new(&name);
                let mut local = Tally::default();
                while !failed.load(Ordering::Relaxed) {
                    let case = next.fetch_add(1, Ordering::Relaxed);
                    if case >= cases {
                        break;
                    }
                    let (edits, outcome) = run_case(base, seed, case as u64, &mut dir);
                    match outcome {
                        Ok(passed) => local.add(passed),
                        Err(why) => {
                            failed.store(true, Ordering::Relaxed);
                            *failure.lock().unwrap() = Some(format!(
                                "case {case} (NN_MUTATION_SEED={seed} NN_MUTATION_CASE={case} to replay; its files are in {}): {why}\nedits:\n  {}",
                                dir.dir.display(),
                                edits.join("\n  ")
                            ));
                        }
                    }
                    if t == 0 && case % 100_000 == 0 && case > 0 {
                        eprintln!("{case} cases, {:.0?}", start.elapsed());
                    }
                }
                tally.lock().unwrap().merge(local);
                // A failing case's files stay, to look at.
                if !failed.load(Ordering::Relaxed) {
                    let _ = std::fs::remove_dir_all(&dir.dir);
                }
            });
        }
    });
    if let Some(failure) = failure.into_inner().unwrap() {
        panic!("{failure}");
    }
    let tally = tally.into_inner().unwrap();
    eprintln!(
        "{} cases (seed {seed}, {threads} threads) in {:.1?}: {} loaded, {} errors; no panic, peak allocation at most {} bytes",
        tally.cases,
        start.elapsed(),
        tally.loaded,
        tally.cases - tally.loaded,
        tally.peak
    );
    for (kind, n) in &tally.errors {
        eprintln!("{n:>10}  {kind}");
    }
    assert_eq!(tally.cases, cases);
}

/// What the cases came to.
#[derive(Default)]
struct Tally {
    cases: usize,
    loaded: usize,
    peak: usize,
    /// Error messages with paths dropped and numbers replaced by `N`.
    errors: BTreeMap<String, usize>,
}

/// One case's passing outcome: the loader's answer, and its peak allocation.
struct Passed {
    error: Option<String>,
    peak: usize,
}

impl Tally {
    fn add(&mut self, passed: Passed) {
        self.cases += 1;
        self.peak = self.peak.max(passed.peak);
        match passed.error {
            None => self.loaded += 1,
            Some(e) => *self.errors.entry(e).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.cases += other.cases;
        self.loaded += other.loaded;
        self.peak = self.peak.max(other.peak);
        for (e, n) in other.errors {
            *self.errors.entry(e).or_default() += n;
        }
    }
}

fn replay(base: &Base, seed: u64, case: u64) {
    let mut scratch = Scratch::new("mnist_mutations/replay");
    let (edits, outcome) = run_case(base, seed, case, &mut scratch);
    let dir = &scratch.dir;
    eprintln!("case {case} of seed {seed}, in {}:", dir.display());
    for e in &edits {
        eprintln!("  {e}");
    }
    match Mnist::load(dir) {
        Ok(m) => eprintln!("loaded: {} + {} images", m.train.len(), m.test.len()),
        Err(e) => eprintln!("error: {e}"),
    }
    if let Err(why) = outcome {
        panic!("{why}");
    }
}

/// Builds case `case` into `dir` and loads it: the edits made, and the
/// outcome (`Err` says what broke a promise).
fn run_case(
    base: &Base,
    seed: u64,
    case: u64,
    scratch: &mut Scratch,
) -> (Vec<String>, Result<Passed, String>) {
    let mut rng = StdRng::seed_from_u64(seed ^ case.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (files, gz, edits) = mutate(base, &mut rng);
    scratch.write(&files, gz);
    let dir = scratch.dir.as_path();
    let (answer, peak) = peak_during(|| catch_unwind(AssertUnwindSafe(|| Mnist::load(dir))));
    let outcome = match answer {
        Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
        Ok(Ok(mnist)) => check_valid(&mnist).map(|()| None),
        Ok(Err(e)) => check_error(&e, dir).map(Some),
    };
    let outcome = outcome.and_then(|error| {
        if peak < PEAK_LIMIT {
            Ok(Passed { error, peak })
        } else {
            Err(format!(
                "{peak} bytes allocated at once (limit {PEAK_LIMIT})"
            ))
        }
    });
    (edits, outcome)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(not a string)".into())
}

/// A loaded MNIST must be one: 28×28 digits, labelled 0–9.
fn check_valid(mnist: &Mnist) -> Result<(), String> {
    for (name, set) in [("train", &mnist.train), ("test", &mnist.test)] {
        let n = set.len();
        let shape = set.inputs().shape().to_vec();
        let problem = if n == 0 {
            Some("no images".to_string())
        } else if shape != [n, 28, 28] {
            Some(format!("inputs of shape {shape:?}"))
        } else if set.labels().len() != n {
            Some(format!("{} labels for {n} images", set.labels().len()))
        } else if let Some(l) = set.labels().iter().find(|&&l| l >= 10) {
            Some(format!("label {l}"))
        } else if !set.inputs().iter().all(|p| (0.0..=1.0).contains(p)) {
            Some("a pixel outside [0, 1]".into())
        } else {
            None
        };
        if let Some(p) = problem {
            return Err(format!("loaded an invalid {name} set: {p}"));
        }
    }
    Ok(())
}

/// An error must name where it happened; its message, made generic, is
/// returned for the tally.
fn check_error(e: &MnistError, dir: &Path) -> Result<String, String> {
    let msg = e.to_string();
    let dir_name = dir.display().to_string();
    if !msg.contains(&dir_name) {
        return Err(format!("the error does not name the file: {msg}"));
    }
    // Numbers (decimal, or hex like `0x00000d03`) become `N`.
    let mut generic = String::new();
    let mut in_number = false;
    for c in msg.replace(&dir_name, "").chars() {
        in_number = c.is_ascii_digit() || (in_number && (c == 'x' || c.is_ascii_hexdigit()));
        if !in_number {
            generic.push(c);
        } else if !generic.ends_with('N') {
            generic.push('N');
        }
    }
    Ok(generic)
}

/// A worker's directory, and what it last wrote there: a file is rewritten
/// only when it changes, as most stay the same from case to case.
struct Scratch {
    dir: PathBuf,
    on_disk: [Option<(bool, Vec<u8>)>; 4],
}

impl Scratch {
    /// `name` under `$NN_MUTATION_DIR`, else under the target's scratch space.
    fn new(name: &str) -> Scratch {
        let dir = match std::env::var_os("NN_MUTATION_DIR") {
            Some(root) => {
                let dir = PathBuf::from(root).join(name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                dir
            }
            None => mnist_fixtures::scratch(name),
        };
        Scratch {
            dir,
            on_disk: Default::default(),
        }
    }

    /// Writes `files` (in the order of [`FILES`]), named `.gz` where `gz` says.
    fn write(&mut self, files: &[Vec<u8>], gz: [bool; 4]) {
        for (f, bytes) in files.iter().enumerate() {
            let wanted = (gz[f], bytes.clone());
            if self.on_disk[f].as_ref() == Some(&wanted) {
                continue;
            }
            let (plain, zipped) = (
                self.dir.join(FILES[f]),
                self.dir.join(format!("{}.gz", FILES[f])),
            );
            let (keep, other) = if gz[f] {
                (zipped, plain)
            } else {
                (plain, zipped)
            };
            let _ = std::fs::remove_file(other);
            std::fs::write(keep, bytes).unwrap();
            self.on_disk[f] = Some(wanted);
        }
    }
}
