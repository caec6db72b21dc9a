//! Helpers shared by the end-to-end tests.

#![allow(dead_code)]

pub mod first_step;
pub mod graphs;
pub mod parallel;
pub mod paths;
pub mod scripted;

use std::path::PathBuf;

use nn::ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// `../shared/testdata/torch` beside the repository, or `$NN_TESTDATA_DIR`.
pub fn torch_testdata(name: &str) -> Value {
    let dir = std::env::var("NN_TESTDATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/torch")
        });
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "PyTorch reference vectors {} are missing ({e}); set NN_TESTDATA_DIR",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("valid JSON")
}

/// `{"shape": [...], "data": [...]}` as an `f64` array.
pub fn tensor(v: &Value) -> ArrayD<f64> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap())
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

/// A fresh scratch directory under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `f64` tensors as a safetensors file (as PyTorch's `save_file` would).
pub fn write_safetensors(path: &std::path::Path, tensors: &[(&str, &ArrayD<f64>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, a)| {
            (
                n.to_string(),
                a.shape().to_vec(),
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes.iter().map(|(n, s, b)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, s.clone(), b).unwrap(),
        )
    });
    std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
}

/// The harness's name for `test` in the module `module` (pass
/// `module_path!()`): its path below the test crate, for a test that runs
/// itself again as a child process with `--exact`.
pub fn harness_name(module: &str, test: &str) -> String {
    match module.split_once("::") {
        Some((_, below)) => format!("{below}::{test}"),
        None => test.to_string(),
    }
}
