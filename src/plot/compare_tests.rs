use super::*;
use crate::plot::tests::scratch;
use crate::train::EpochLogs;

/// A run that logged `val_accuracy` (and the loss) once per value.
fn run(val_accuracy: &[f64]) -> History {
    History {
        epochs: (1..)
            .zip(val_accuracy)
            .map(|(epoch, &a)| EpochLogs {
                epoch,
                loss: 1.0 - a,
                val_metrics: vec![("val_accuracy".into(), a)],
                ..Default::default()
            })
            .collect(),
        stopped: None,
    }
}

/// The text of every `<text>` element of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            Some(
                t.split_once('>')?
                    .1
                    .split_once("</text>")?
                    .0
                    .trim()
                    .to_string(),
            )
        })
        .collect()
}

fn plot_message(result: Result<(), TrainError>) -> String {
    match result {
        Err(TrainError::Plot { message, .. }) => message,
        other => panic!("expected a plot error, got {other:?}"),
    }
}

#[test]
fn svg_names_every_run_and_labels_both_axes() {
    let (relu, sigmoid) = (run(&[0.9, 0.95, 0.97]), run(&[0.8, 0.85, 0.88, 0.9, 0.91]));
    let path = scratch("runs.svg");
    Comparison::new("val_accuracy")
        .run("relu", &relu)
        .run("sigmoid", &sigmoid)
        .title("Hidden activations")
        .draw(&path)
        .unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let texts = svg_texts(&svg);
    for text in [
        "relu",
        "sigmoid",
        "epoch",
        "val_accuracy",
        "Hidden activations",
    ] {
        assert!(texts.iter().any(|t| t == text), "no {text} in {texts:?}");
    }
    // Each run in its own palette colour.
    for colour in &PALETTE[..2] {
        let hex = format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
        assert!(svg.contains(&hex), "no line in {hex}");
    }
}

#[test]
fn compare_draws_a_png_for_other_extensions_and_titles_with_the_metric() {
    let (a, b) = (run(&[0.5]), run(&[0.6, 0.7]));
    let path = scratch("runs.png");
    compare(&path, &[("one epoch", &a), ("two", &b)], "loss").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");

    let svg = scratch("title.svg");
    compare(&svg, &[("a", &a)], "loss").unwrap();
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    std::fs::remove_file(&svg).unwrap();
    // The title and the y axis's label.
    assert_eq!(
        texts.iter().filter(|t| *t == "loss").count(),
        2,
        "{texts:?}"
    );
}

#[test]
fn a_run_without_the_metric_is_an_error_naming_both_and_writes_nothing() {
    let (relu, tanh) = (run(&[0.9]), run(&[0.8]));
    let path = scratch("missing.svg");
    let message = plot_message(compare(
        &path,
        &[("relu", &relu), ("tanh", &tanh)],
        "val_top5",
    ));
    assert!(message.contains("`relu`"), "{message}");
    assert!(message.contains("`val_top5`"), "{message}");
    assert!(
        message.contains("val_accuracy"),
        "lists what it has: {message}"
    );
    assert!(!path.exists());
}

#[test]
fn no_runs_or_a_run_without_epochs_is_an_error() {
    let path = scratch("empty.svg");
    let message = plot_message(compare(&path, &[], "val_accuracy"));
    assert!(message.contains("no runs"), "{message}");
    let empty = History::default();
    let message = plot_message(compare(&path, &[("early", &empty)], "val_accuracy"));
    assert!(message.contains("`early` has no epochs"), "{message}");
    assert!(!path.exists());
}

#[test]
fn ranges_pad_the_data_and_survive_a_single_value() {
    let line = |points: Vec<(f64, f64)>| Line {
        name: String::new(),
        points,
    };
    let (x, y) = ranges(&[line(vec![(1.0, 0.5), (4.0, 0.9)])]);
    assert!(x.start < 1.0 && x.end > 4.0, "{x:?}");
    assert!(y.start < 0.5 && y.end > 0.9, "{y:?}");
    let (x, y) = ranges(&[line(vec![(1.0, 0.7)])]);
    assert!(x.start < 1.0 && x.end > 1.0, "{x:?}");
    assert!(y.start < 0.7 && y.end > 0.7, "{y:?}");
    let (x, y) = ranges(&[line(vec![])]);
    assert!(x.start < x.end && y.start < y.end);
}
