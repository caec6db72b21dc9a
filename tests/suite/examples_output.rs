//! The examples as a user runs them, with stdout piped: plain lines (no
//! progress-bar escapes), one per epoch, and the promised last line.

use std::path::PathBuf;
use std::process::Command;

/// The example's binary, built by `cargo test` beside the test binaries (or built now).
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = deps
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building example {name}");
    }
    path
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn mnist_prints_plain_epoch_lines_when_piped_and_ends_with_the_accuracy() {
    let out = run("mnist", &["--epochs", "2", "--batch-size", "256"]);
    assert!(
        !out.contains('\x1b'),
        "terminal escapes in piped output:\n{out}"
    );
    assert!(out.contains("Model: \"mlp\""), "{out}");
    let epochs: Vec<&str> = out.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(epochs.len(), 2, "{out}");
    assert!(
        epochs[0].starts_with("Epoch 1/2 - loss: ") && epochs[0].contains(" - val_accuracy: "),
        "{out}"
    );
    let last = out.lines().last().unwrap();
    let accuracy: f64 = last
        .strip_prefix("test accuracy: ")
        .expect("the last line")
        .parse()
        .unwrap();
    assert!(accuracy > 0.9, "{last}");
}

#[test]
fn mnist_lstm_reads_rows_and_learns_in_one_epoch() {
    let out = run("mnist_lstm", &["--epochs", "1"]);
    assert!(out.contains("lstm (LSTM)"), "{out}");
    assert!(out.contains("(None, 128)"), "{out}");
    let last = out.lines().last().unwrap();
    let accuracy: f64 = last
        .strip_prefix("test accuracy: ")
        .expect("the last line")
        .parse()
        .unwrap();
    // PyTorch's one epoch of the same model (torch_anchor.py lstm): 0.93.
    assert!(accuracy > 0.9, "{last}");
}

#[test]
fn examples_answer_help() {
    for name in [
        "mnist",
        "mnist_cnn",
        "xor",
        "activations",
        "research",
        "resnet",
        "functional",
        "mnist_lstm",
        "mnist_transformer",
    ] {
        let out = run(name, &["--help"]);
        assert!(
            out.contains("Usage: cargo run --release --example"),
            "{name}: {out}"
        );
    }
}

#[test]
fn functional_trains_two_branches_and_shows_three_equal_declarations() {
    let out = run("functional", &["--epochs", "1", "--limit", "6000"]);
    assert!(out.contains("Connected to"), "{out}");
    assert!(out.contains("concatenate[0][0]"), "{out}");
    for line in [
        "activation = relu vs Activation(\"relu\"): largest difference 0",
        "activation = relu vs nn::activation::relu: largest difference 0",
    ] {
        assert!(out.contains(line), "{out}");
    }
    let last = out.lines().last().unwrap();
    let accuracy: f64 = last
        .strip_prefix("test accuracy: ")
        .expect("the last line")
        .parse()
        .unwrap();
    assert!(accuracy > 0.8, "{last}");
}

#[test]
fn xor_shows_that_dense_alone_cannot_learn_it() {
    let out = run("xor", &["--epochs", "300"]);
    let acc = |prefix: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split_whitespace()
            .nth(
                line.split_whitespace()
                    .position(|w| w == "accuracy")
                    .unwrap()
                    + 1,
            )
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(acc("linear only") <= 0.75, "{out}");
    assert_eq!(acc("with relu"), 1.0, "{out}");
}

#[test]
fn regression_gets_within_half_the_noise_of_the_best_possible() {
    let out = run("regression", &[]);
    let lines: Vec<&str> = out.lines().collect();
    let value = |line: &str, prefix: &str| -> f64 {
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected `{prefix}…`, got `{line}`"))
            .parse()
            .unwrap()
    };
    let variance = value(lines[lines.len() - 2], "noise variance: ");
    let mse = value(lines[lines.len() - 1], "test mse: ");
    // The noise's variance on the test set is the lowest mean squared error
    // any model can reach there (σ = 0.1: about 0.01).
    assert!((0.008..0.012).contains(&variance), "{variance}");
    assert!(
        mse <= 1.5 * variance,
        "test mse {mse} vs noise variance {variance}"
    );
}

#[test]
fn activations_study_prints_a_row_per_activation_and_draws_their_curves() {
    let dir = std::env::temp_dir().join(format!("nn-activation-study-{}", std::process::id()));
    let out = run(
        "activations",
        &[
            "--train",
            "--epochs",
            "2",
            "--limit",
            "6000",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    let header = out
        .lines()
        .position(|l| l.starts_with("activation  test accuracy"))
        .unwrap_or_else(|| panic!("no table:\n{out}"));
    let rows: Vec<(&str, f64)> = out.lines().collect::<Vec<_>>()[header + 1..header + 5]
        .iter()
        .map(|row| {
            let mut cells = row.split_whitespace();
            let name = cells.next().unwrap();
            (name, cells.next().unwrap().parse().unwrap())
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(names, ["relu", "sigmoid", "tanh", "linear"], "{out}");
    // Two epochs on 6,000 images: relu is well past chance (0.89 when measured).
    assert!(rows[0].1 > 0.8, "{out}");
    let png = std::fs::read(dir.join("activation_study.png")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}
