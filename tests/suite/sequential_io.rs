//! Saving and loading macro models: bit-exact round trips, and errors that name
//! the file and the first mismatch without changing the model.

use crate::common;

use common::{scratch, write_safetensors};
use nn::io::IoError;
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

sequential! {
    pub struct Small: input(6) {
        hidden: Dense(5, activation = relu),
        Dense(3),
    }
}

sequential! {
    #[dtype(f64)]
    pub struct Small64: input(6) {
        hidden: Dense(5, activation = relu),
        Dense(3),
    }
}

fn values(m: &Small) -> Vec<(String, Vec<u32>)> {
    m.named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value().iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn save_then_load_is_bit_exact() {
    let dir = scratch("io_roundtrip");
    let path = dir.join("small.safetensors");
    let saved = Small::with_seed(1);
    saved.save(&path).unwrap();
    let mut loaded = Small::with_seed(2);
    assert_ne!(values(&loaded), values(&saved));
    loaded.load(&path).unwrap();
    assert_eq!(values(&loaded), values(&saved));
    // The write went through a temporary file that is gone now.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("small.safetensors")]
    );
    // Names and layouts are PyTorch's.
    let shapes = nn::io::tensor_shapes(&path).unwrap();
    assert_eq!(shapes["hidden.weight"], vec![5, 6]);
    assert_eq!(shapes["dense.bias"], vec![3]);
}

fn load_err(tensors: &[(&str, &ArrayD<f64>)]) -> (IoError, bool) {
    let path = scratch(&format!("io_err_{}", tensors.len())).join("w.safetensors");
    write_safetensors(&path, tensors);
    let mut m = Small64::with_seed(3);
    let before: Vec<_> = m
        .named_params()
        .iter()
        .map(|(_, p)| p.value().clone())
        .collect();
    let err = m.load(&path).unwrap_err();
    let after: Vec<_> = m
        .named_params()
        .iter()
        .map(|(_, p)| p.value().clone())
        .collect();
    (err, before == after)
}

fn z(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::zeros(IxDyn(shape))
}

#[test]
fn a_missing_key_is_named_and_nothing_is_loaded() {
    let (w, b, w2) = (z(&[5, 6]), z(&[5]), z(&[3, 5]));
    let (err, unchanged) = load_err(&[
        ("hidden.weight", &w),
        ("hidden.bias", &b),
        ("dense.weight", &w2),
    ]);
    assert!(
        matches!(&err, IoError::KeysMismatch { missing, unexpected, .. }
            if missing == &["dense.bias"] && unexpected.is_empty()),
        "{err}"
    );
    assert!(
        err.to_string().contains("w.safetensors") && err.to_string().contains("dense.bias"),
        "{err}"
    );
    assert!(unchanged);
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let (w, b, w2, b2) = (z(&[5, 6]), z(&[5]), z(&[5, 3]), z(&[3]));
    let (err, unchanged) = load_err(&[
        ("hidden.weight", &w),
        ("hidden.bias", &b),
        ("dense.weight", &w2),
        ("dense.bias", &b2),
    ]);
    assert!(
        err.to_string()
            .ends_with("tensor `dense.weight` has shape [5, 3], but the model expects [3, 5]"),
        "{err}"
    );
    assert!(
        matches!(&err, IoError::ShapeMismatch { key, expected, found, .. } if key == "dense.weight" && expected == &[3, 5] && found == &[5, 3]),
        "{err}"
    );
    assert!(unchanged);
}

#[test]
fn an_unexpected_key_is_an_error() {
    let (w, b, w2, b2, extra) = (z(&[5, 6]), z(&[5]), z(&[3, 5]), z(&[3]), z(&[1]));
    let (err, unchanged) = load_err(&[
        ("hidden.weight", &w),
        ("hidden.bias", &b),
        ("dense.weight", &w2),
        ("dense.bias", &b2),
        ("other", &extra),
    ]);
    assert!(
        matches!(&err, IoError::KeysMismatch { missing, unexpected, .. }
            if missing.is_empty() && unexpected == &["other"]),
        "{err}"
    );
    assert!(unchanged);
}

#[test]
fn a_dtype_mismatch_is_named() {
    let path = scratch("io_dtype").join("f32.safetensors");
    Small::with_seed(1).save(&path).unwrap();
    let err = Small64::with_seed(1).load(&path).unwrap_err();
    assert!(
        matches!(&err, IoError::DtypeMismatch { expected, found, .. } if expected == "F64" && found == "F32"),
        "{err}"
    );
}

#[test]
fn missing_and_corrupt_files_are_errors_naming_the_file() {
    let dir = scratch("io_missing");
    let err = Small::with_seed(1)
        .load(dir.join("nope.safetensors"))
        .unwrap_err();
    assert!(
        matches!(err, IoError::Io { .. }) && err.to_string().contains("nope.safetensors"),
        "{err}"
    );
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"not a safetensors file").unwrap();
    let err = Small::with_seed(1).load(&bad).unwrap_err();
    assert!(
        matches!(err, IoError::Format { .. }) && err.to_string().contains("bad.safetensors"),
        "{err}"
    );
}

/// Every name on either side is listed, as PyTorch's strict
/// `load_state_dict` does, and a training checkpoint (its tensors under
/// `model/` and `optim/`) is named for what it is.
#[test]
fn a_checkpoint_loaded_as_weights_is_named_with_every_key() {
    let (w, b, w2, b2, s) = (z(&[5, 6]), z(&[5]), z(&[3, 5]), z(&[3]), z(&[1]));
    let (err, unchanged) = load_err(&[
        ("model/hidden.weight", &w),
        ("model/hidden.bias", &b),
        ("model/dense.weight", &w2),
        ("model/dense.bias", &b2),
        ("optim/step", &s),
        ("optim/lr", &s),
    ]);
    let text = err.to_string();
    assert!(
        matches!(&err, IoError::KeysMismatch { missing, unexpected, .. }
            if missing.len() == 4 && unexpected.len() == 6),
        "{err}"
    );
    assert!(
        text.contains(
            "missing tensors `hidden.weight`, `hidden.bias`, `dense.weight`, `dense.bias`"
        ) && text.contains("`model/dense.bias`")
            && text.contains("this is a training checkpoint")
            && text.contains("Checkpoint::load"),
        "{text}"
    );
    assert!(unchanged);
}
