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
fn floats_of_another_width_are_converted_as_pytorch_loads_them() {
    let dir = scratch("io_dtype");
    let values = |named: Vec<(String, nn::Param<f64>)>| -> Vec<f64> {
        named
            .iter()
            .flat_map(|(_, p)| p.value().iter().copied().collect::<Vec<_>>())
            .collect()
    };
    let values32 = |named: Vec<(String, nn::Param<f32>)>| -> Vec<f32> {
        named
            .iter()
            .flat_map(|(_, p)| p.value().iter().copied().collect::<Vec<_>>())
            .collect()
    };
    // f32 into f64: widened exactly. f64 into f32: rounded to nearest, as
    // `tensor.to(torch.float32)` (Rust's `as f32`).
    let (small, small64) = (Small::with_seed(1), Small64::with_seed(2));
    small.save(dir.join("f32.safetensors")).unwrap();
    small64.save(dir.join("f64.safetensors")).unwrap();
    let mut wide = Small64::with_seed(3);
    wide.load(dir.join("f32.safetensors")).unwrap();
    let widened: Vec<f64> = values32(small.named_params())
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    assert_eq!(values(wide.named_params()), widened);
    let mut narrow = Small::with_seed(3);
    narrow.load(dir.join("f64.safetensors")).unwrap();
    let rounded: Vec<f32> = values(small64.named_params())
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(values32(narrow.named_params()), rounded);

    // Half precision, from IEEE 754 encodings: 1, −2.5 and 2⁻²⁴ (F16's
    // smallest subnormal); 1, −2.5 and 0 (BF16).
    let write = |name: &str, dtype, halves: [u16; 3]| {
        let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(dtype, vec![3], &bytes).unwrap();
        let path = dir.join(name);
        std::fs::write(
            &path,
            safetensors::tensor::serialize([("w", view)], None).unwrap(),
        )
        .unwrap();
        path
    };
    let w = nn::Param::new(ArrayD::<f32>::zeros(IxDyn(&[3])));
    let params = vec![("w".to_string(), w.clone())];
    let f16 = write(
        "f16.safetensors",
        safetensors::Dtype::F16,
        [0x3C00, 0xC100, 0x0001],
    );
    nn::io::load_params(&f16, &params).unwrap();
    assert_eq!(w.value().as_slice().unwrap(), [1.0, -2.5, 2f32.powi(-24)]);
    let bf16 = write(
        "bf16.safetensors",
        safetensors::Dtype::BF16,
        [0x3F80, 0xC020, 0x0000],
    );
    nn::io::load_params(&bf16, &params).unwrap();
    assert_eq!(w.value().as_slice().unwrap(), [1.0, -2.5, 0.0]);

    // Integers are not weights: refused by name, nothing changed.
    let ints = write("i16.safetensors", safetensors::Dtype::I16, [1, 2, 3]);
    let err = nn::io::load_params(&ints, &params).unwrap_err();
    assert!(
        matches!(&err, IoError::DtypeMismatch { found, .. } if found == "I16"),
        "{err}"
    );
    assert_eq!(w.value().as_slice().unwrap(), [1.0, -2.5, 0.0]);
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
