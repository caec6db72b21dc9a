//! A state file that `OptimizerState::save` could not have written is an
//! error naming the file, never a panic or a silently different state.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use common::scratch;
use ndarray::{ArrayD, IxDyn};
use nn_core::io::save_tensors;
use nn_optim::OptimizerState;

/// Writes a file with `tensors` and `meta`, and returns `load`'s error.
fn load_error(dir: &Path, tensors: &[(&str, &[usize])], meta: &[(&str, &str)]) -> String {
    let path = dir.join("optim.safetensors");
    let tensors: Vec<(String, ArrayD<f32>)> = tensors
        .iter()
        .map(|(name, shape)| (name.to_string(), ArrayD::zeros(IxDyn(shape))))
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    save_tensors(&path, &tensors, Some(meta)).unwrap();
    let err = OptimizerState::<f32>::load(&path)
        .expect_err("a malformed file was accepted")
        .to_string();
    assert!(
        err.contains("optim.safetensors"),
        "not naming the file: {err}"
    );
    err
}

const GOOD: [(&str, &str); 3] = [("optimizer", "Adam"), ("lr", "1e-3"), ("w/step", "2")];

#[test]
fn garbage_metadata_is_an_error() {
    let dir = scratch("garbage_metadata");
    let w: &[(&str, &[usize])] = &[("w/exp_avg", &[2])];
    let with = |key: &str, value: &str| {
        let mut meta: Vec<(&str, &str)> = GOOD.iter().filter(|(k, _)| *k != key).copied().collect();
        meta.push((key, value));
        load_error(&dir, w, &meta)
    };
    assert!(with("w/step", "two").contains("step of `w` is not a number: two"));
    assert!(with("w/step", "-1").contains("step of `w` is not a number: -1"));
    for lr in ["NaN", "inf", "-infinity", "fast"] {
        assert!(with("lr", lr).contains(&format!("`lr` metadata is not a finite number: {lr}")));
    }
    assert!(with("format", "pt").contains("unexpected metadata `format`"));
    assert!(with("/step", "1").contains("unexpected metadata `/step`"));
    let no_lr = load_error(&dir, w, &[GOOD[0], GOOD[2]]);
    assert!(no_lr.contains("no `lr` metadata"), "{no_lr}");
    let no_name = load_error(&dir, w, &[GOOD[1], GOOD[2]]);
    assert!(no_name.contains("no `optimizer` metadata"), "{no_name}");
}

#[test]
fn tensors_not_named_param_slash_buffer_are_an_error() {
    let dir = scratch("tensor_names");
    for name in ["exp_avg", "/exp_avg", "w/"] {
        let err = load_error(&dir, &[(name, &[2])], &GOOD);
        assert!(
            err.contains(&format!("tensor `{name}` is not `param/buffer`")),
            "{err}"
        );
    }
    let err = load_error(&dir, &[("v/exp_avg", &[2])], &GOOD);
    assert!(
        err.contains("tensor `v/exp_avg` has no `v/step` metadata"),
        "{err}"
    );
}

#[test]
fn a_zero_sized_tensor_with_huge_dimensions_is_an_error() {
    // Valid safetensors (no elements, so no bytes), but ndarray refuses the
    // shape: its non-zero dimensions overflow `isize`.
    // Written by hand: ndarray cannot even make such an array to save.
    let path = scratch("huge_dims").join("optim.safetensors");
    let huge = 1u64 << 40;
    let header = serde_json::json!({
        "__metadata__": {"optimizer": "Adam", "lr": "1e-3", "w/step": "2"},
        "w/exp_avg": {"dtype": "F32", "shape": [0, huge, huge], "data_offsets": [0, 0]},
    })
    .to_string();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = OptimizerState::<f32>::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("optim.safetensors") && err.contains("w/exp_avg"),
        "{err}"
    );
}

#[test]
fn parameter_names_with_slashes_round_trip() {
    let dir = scratch("slashes");
    let path = dir.join("optim.safetensors");
    let mut state = OptimizerState::<f32> {
        optimizer: "SGD".into(),
        lr: 0.1,
        ..Default::default()
    };
    let st = state.params.entry("block/0/weight".into()).or_default();
    st.step = 3;
    st.buffers
        .insert("momentum_buffer".into(), ArrayD::ones(IxDyn(&[2, 2])));
    state.params.entry("frozen".into()).or_default().step = 1;
    state.save(&path).unwrap();
    assert_eq!(OptimizerState::load(&path).unwrap(), state);
}
