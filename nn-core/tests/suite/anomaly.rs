//! Anomaly mode names the op that first makes a NaN or ∞, forward or
//! backward, with its inputs' shapes and the line of the caller's code that
//! recorded it; off, the same code runs silently (PyTorch's behaviour).

use crate::panics;
use panics::panic_message;

use ndarray::array;
use nn_core::tape::{anomaly_mode, detect_anomaly, Tape};

#[test]
fn a_forward_nan_names_the_op_its_shapes_and_the_callers_line() {
    let _anomaly = detect_anomaly();
    let tape = Tape::<f64>::new();
    let x = tape.var(array![[4.0, -1.0, 9.0]]);
    let line = line!() + 1;
    let msg = panic_message(|| drop(x.sqrt()));
    assert!(
        msg.starts_with("anomaly: `sqrt` produced NaN (element 1"),
        "{msg}"
    );
    assert!(msg.contains("[[1, 3]]"), "{msg}");
    assert!(msg.contains(&format!("{}:{line}", file!())), "{msg}");
}

#[test]
fn a_backward_infinity_names_the_op() {
    let _anomaly = detect_anomaly();
    let tape = Tape::<f64>::new();
    // sqrt(0) is finite; its derivative 1/(2·sqrt(0)) is not.
    let x = tape.var(array![0.0, 1.0]);
    let y = x.sqrt().sum();
    let msg = panic_message(|| y.backward());
    assert!(
        msg.starts_with("anomaly: the backward of `sqrt` produced inf"),
        "{msg}"
    );
    assert!(msg.contains("gradient of its input 0"), "{msg}");
}

#[test]
fn without_anomaly_mode_nan_flows_silently_and_the_guard_turns_it_off() {
    {
        let _anomaly = detect_anomaly();
        assert!(anomaly_mode());
    }
    assert!(!anomaly_mode());
    let tape = Tape::<f64>::new();
    let y = tape.var(array![-1.0]).sqrt();
    assert!(y.value()[[0]].is_nan());
}
