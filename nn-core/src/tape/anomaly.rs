//! Anomaly mode, as PyTorch's `torch.autograd.detect_anomaly`: while on, the
//! first op whose forward pass turns finite inputs into NaN or ∞, or whose
//! backward pass turns a finite gradient into one, panics with the op's
//! name, its inputs' shapes and the line of your code that recorded it.
//! Off by default: the checks read every value.
//!
//! ```should_panic
//! use nn_core::tape::{detect_anomaly, Tape};
//! use ndarray::array;
//!
//! let _anomaly = detect_anomaly();
//! let tape = Tape::<f64>::new();
//! let x = tape.var(array![4.0, -1.0]);
//! let y = x.sqrt(); // panics: "anomaly: `sqrt` … produced NaN … recorded at src/…"
//! ```

use std::cell::Cell;
use std::panic::Location;

use ndarray::ArrayD;

use crate::Float;

thread_local! {
    /// How many [`AnomalyGuard`]s are alive on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Turns anomaly mode on for this thread until the guard is dropped.
#[must_use = "anomaly mode is on only while the guard lives"]
pub fn detect_anomaly() -> AnomalyGuard {
    DEPTH.with(|d| d.set(d.get() + 1));
    AnomalyGuard { _private: () }
}

/// Whether anomaly mode is on for this thread.
pub fn anomaly_mode() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Keeps anomaly mode on; see [`detect_anomaly`].
pub struct AnomalyGuard {
    _private: (),
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// The first value that is not finite, with its index.
fn first_bad<T: Float>(a: &ArrayD<T>) -> Option<(usize, T)> {
    a.iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
        .map(|(i, &v)| (i, v))
}

fn shapes<T: Float>(inputs: &[&ArrayD<T>]) -> String {
    let s: Vec<String> = inputs.iter().map(|a| format!("{:?}", a.shape())).collect();
    s.join(", ")
}

/// In anomaly mode, panics when `output` has a NaN or ∞ that finite `inputs` made.
pub(super) fn check_forward<T: Float>(
    op: &str,
    inputs: &[&ArrayD<T>],
    output: &ArrayD<T>,
    at: &Location<'_>,
) {
    if inputs.iter().any(|a| first_bad(a).is_some()) {
        return;
    }
    if let Some((i, v)) = first_bad(output) {
        panic!(
            "anomaly: `{op}` produced {v:?} (element {i} of its output {:?}) from finite inputs of shapes [{}]; recorded at {at}",
            output.shape(),
            shapes(inputs)
        );
    }
}

/// In anomaly mode, panics when the backward of `op` turned a finite output
/// gradient `dy` into a NaN or ∞ input gradient.
pub(super) fn check_backward<T: Float>(
    op: &str,
    inputs: &[&ArrayD<T>],
    dy: &ArrayD<T>,
    grads: &[Option<ArrayD<T>>],
    at: &Location<'_>,
) {
    if first_bad(dy).is_some() {
        return;
    }
    for (k, g) in grads.iter().enumerate() {
        if let Some((i, v)) = g.as_ref().and_then(first_bad) {
            panic!(
                "anomaly: the backward of `{op}` produced {v:?} (element {i}) in the gradient of its input {k} from a finite output gradient; inputs of shapes [{}]; recorded at {at}",
                shapes(inputs)
            );
        }
    }
}
