//! PyTorch interoperability of macro-declared models.
//!
//! 1. The `mlp_ce` case of `../shared/testdata/torch/ops.json` (PyTorch 2.15,
//!    float64): `Linear(8,16) → ReLU → Linear(16,4)` and cross-entropy, with its
//!    weights loaded from a safetensors file keyed like PyTorch's `state_dict`.
//! 2. `tests/fixtures/torch_mlp.safetensors`, written by PyTorch itself
//!    (`tests/fixtures/make_torch_mlp.py`), loads and reproduces PyTorch's logits.

use crate::common;

use common::{scratch, tensor, torch_testdata, write_safetensors};
use nn::io::IoError;
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

sequential! {
    /// PyTorch's `nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))`.
    #[dtype(f64)]
    pub struct MlpCe: input(8) {
        Dense(16, activation = relu),
        Dense(4),
    }
}

fn mlp_ce_case() -> serde_json::Value {
    let data = torch_testdata("ops.json");
    data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mlp_ce")
        .expect("mlp_ce case")
        .clone()
}

fn close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (x, y) in a.iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: {x:e} vs PyTorch {y:e}"
        );
    }
}

#[test]
fn mlp_ce_reproduced_through_a_macro_model_with_loaded_weights() {
    let case = mlp_ce_case();
    let inputs = &case["inputs"];
    let (w1, b1, w2, b2) = (
        tensor(&inputs["w1"]),
        tensor(&inputs["b1"]),
        tensor(&inputs["w2"]),
        tensor(&inputs["b2"]),
    );
    // PyTorch's state_dict names for that Sequential: Linear at 0 and 2.
    let path = scratch("mlp_ce").join("state_dict.safetensors");
    write_safetensors(
        &path,
        &[
            ("0.weight", &w1),
            ("0.bias", &b1),
            ("2.weight", &w2),
            ("2.bias", &b2),
        ],
    );

    let x = tensor(&case["attrs"]["x"]);
    let labels: Vec<usize> = case["int_inputs"]["y"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let expected_loss = case["output"]["data"][0].as_f64().unwrap();
    let expected = |k: &str| tensor(&case["grads"][k]);

    // Static path.
    let mut model = MlpCe::with_seed(123);
    model.load_pytorch(&path).unwrap();
    model.forward_train(x.view());
    let loss = model.backward_loss(Loss::CrossEntropy, &Target::Labels(&labels));
    assert!(
        (loss - expected_loss).abs() <= 1e-9 * expected_loss.abs(),
        "loss {loss} vs {expected_loss}"
    );
    close(
        "w1",
        model.dense.weight.grad().as_ref().unwrap(),
        &expected("w1"),
        1e-9,
    );
    close(
        "b1",
        model.dense.bias.as_ref().unwrap().grad().as_ref().unwrap(),
        &expected("b1"),
        1e-9,
    );
    close(
        "w2",
        model.dense_1.weight.grad().as_ref().unwrap(),
        &expected("w2"),
        1e-9,
    );
    close(
        "b2",
        model
            .dense_1
            .bias
            .as_ref()
            .unwrap()
            .grad()
            .as_ref()
            .unwrap(),
        &expected("b2"),
        1e-9,
    );

    // Tape path on a second copy.
    let mut tape_model = MlpCe::with_seed(9);
    tape_model.load_pytorch(&path).unwrap();
    let tape = Tape::new();
    let l = cross_entropy(
        &tape_model.forward(&tape.constant(x.clone())),
        &labels,
        Reduction::Mean,
    );
    l.backward();
    assert!((l.item() - expected_loss).abs() <= 1e-9 * expected_loss.abs());
    close(
        "tape w1",
        tape_model.dense.weight.grad().as_ref().unwrap(),
        &expected("w1"),
        1e-9,
    );
    close(
        "tape w2",
        tape_model.dense_1.weight.grad().as_ref().unwrap(),
        &expected("w2"),
        1e-9,
    );
}

#[test]
fn a_pytorch_file_with_a_wrong_shape_is_refused_and_changes_nothing() {
    let case = mlp_ce_case();
    let inputs = &case["inputs"];
    let path = scratch("mlp_ce_bad").join("state_dict.safetensors");
    let wrong = ArrayD::<f64>::zeros(IxDyn(&[4, 15]));
    write_safetensors(
        &path,
        &[
            ("0.weight", &tensor(&inputs["w1"])),
            ("0.bias", &tensor(&inputs["b1"])),
            ("2.weight", &wrong),
            ("2.bias", &tensor(&inputs["b2"])),
        ],
    );
    let mut model = MlpCe::with_seed(1);
    let before = model.dense.weight.value().clone();
    let err = model.load_pytorch(&path).unwrap_err();
    assert!(
        matches!(&err, IoError::ShapeMismatch { key, expected, found, .. } if key == "2.weight" && expected == &[4, 16] && found == &[4, 15]),
        "{err}"
    );
    assert!(err.to_string().contains("state_dict.safetensors"), "{err}");
    assert_eq!(
        *model.dense.weight.value(),
        before,
        "a failed load changed the model"
    );
}

sequential! {
    /// The model of `tests/fixtures/make_torch_mlp.py`:
    /// `nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 5), nn.Softmax(-1))`.
    pub struct TorchMlp: input(3, 4) {
        Flatten,
        Dense(16, activation = tanh),
        Dropout(0.1),
        Dense(5, activation = softmax),
    }
}

#[test]
fn weights_saved_by_pytorch_give_pytorchs_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut model = TorchMlp::with_seed(0);
    model
        .load_pytorch(dir.join("torch_mlp.safetensors"))
        .unwrap();
    // The same script saved an input batch and PyTorch's outputs (eval mode).
    let io = std::fs::read(dir.join("torch_mlp_io.safetensors")).unwrap();
    let io = safetensors::SafeTensors::deserialize(&io).unwrap();
    let read = |name: &str| {
        let v = io.tensor(name).unwrap();
        let data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        ArrayD::from_shape_vec(IxDyn(v.shape()), data).unwrap()
    };
    let (x, expected) = (read("x"), read("probs"));
    model.eval();
    let probs = model.predict(x.view());
    assert_eq!(probs.shape(), expected.shape());
    for (a, b) in probs.iter().zip(expected.iter()) {
        assert!((a - b).abs() <= 1e-5, "{a} vs PyTorch {b}");
    }
}
