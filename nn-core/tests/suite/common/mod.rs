//! Shared test helpers: the PyTorch reference vectors and tolerance checks.

#![allow(dead_code)]

use std::path::PathBuf;

use ndarray::{ArrayD, Dimension, IxDyn};
use nn_core::Float;
use serde_json::Value;

/// `../shared/testdata/torch` beside the workspace, or `$NN_TESTDATA_DIR`.
pub fn testdata_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("NN_TESTDATA_DIR") {
        return PathBuf::from(dir);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    workspace
        .join("..")
        .join("shared")
        .join("testdata")
        .join("torch")
}

/// Reads a PyTorch reference file; a missing file fails the test (never a silent skip).
pub fn load_json(name: &str) -> Value {
    load_json_at(testdata_dir().join(name))
}

/// `../shared/testdata/keras` (the sibling of [`testdata_dir`]): reference
/// values computed by Keras itself.
pub fn keras_testdata_dir() -> PathBuf {
    testdata_dir().join("..").join("keras")
}

/// Reads a Keras reference file; a missing file fails the test.
pub fn load_keras_json(name: &str) -> Value {
    load_json_at(keras_testdata_dir().join(name))
}

fn load_json_at(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reference vectors {} are missing ({e}); they live in ../shared/testdata/ \
             beside the repository, or set NN_TESTDATA_DIR to its torch/ folder",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// `{"shape": [...], "data": [...]}` as an array of `T`.
pub fn tensor<T: Float>(v: &Value) -> ArrayD<T> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<T> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| T::lit(d.as_f64().unwrap()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("shape matches data")
}

/// The same layout holding integers (labels, indices).
pub fn int_tensor(v: &Value) -> ArrayD<usize> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<usize> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).expect("shape matches data")
}

/// Asserts `|actual - expected| <= tol * max(1, |expected|)` element-wise: relative
/// for values of magnitude ≥ 1, absolute below (where relative error is meaningless
/// for values that are exactly 0 in the reference).
pub fn assert_close<T: Float>(what: &str, actual: &ArrayD<T>, expected: &ArrayD<f64>, tol: f64) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for ((idx, &e), &a) in expected.indexed_iter().zip(actual.iter()) {
        let a = a.as_f64();
        let err = (a - e).abs();
        assert!(
            err <= tol * e.abs().max(1.0),
            "{what}: at {:?} got {a:e}, reference {e:e} (error {err:e} > tolerance {tol:e})",
            idx.slice()
        );
    }
}
