//! PyTorch's weights load by name into sequence models and give PyTorch's
//! outputs: the `state_dict`s of an LSTM classifier and of a
//! `TransformerEncoderLayer`, written by PyTorch itself
//! (`tests/fixtures/make_torch_seq.py`), beside the outputs PyTorch computed
//! from them (float32, eval mode; tolerance 1e-5).

use std::path::{Path, PathBuf};

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

sequential! {
    /// `LstmClassifier` of the fixture script: `lstm` = `nn.LSTM(6, 8,
    /// batch_first=True)`, whose last output feeds `head` = `nn.Linear(8, 3)`.
    pub struct LstmClassifier: input(5, 6) {
        lstm: LSTM(8),
        head: Dense(3),
    }
}

sequential! {
    /// `Encoder` of the fixture script: `layer` =
    /// `nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
    /// activation="gelu", batch_first=True)`.
    pub struct Encoder: input(5, 8) {
        layer: TransformerEncoder(heads = 2, dim_feedforward = 16, dropout = 0.1, activation = gelu),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A float32 tensor of a safetensors file.
fn read(path: &Path, name: &str) -> ArrayD<f32> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let v = file.tensor(name).unwrap();
    let data: Vec<f32> = v
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(v.shape()), data).unwrap()
}

fn close(what: &str, ours: &ArrayD<f32>, torch: &ArrayD<f32>) {
    assert_eq!(ours.shape(), torch.shape(), "{what}");
    for (a, b) in ours.iter().zip(torch.iter()) {
        assert!((a - b).abs() <= 1e-5, "{what}: {a} vs PyTorch {b}");
    }
}

/// Loads `torch_<name>.safetensors` by name and checks `predict` and the tape
/// against PyTorch's output for `torch_<name>_io.safetensors`'s input.
fn reproduces<M: Model<f32>>(mut model: M, name: &str) {
    model
        .load(fixture(&format!("torch_{name}.safetensors")))
        .unwrap();
    let io = fixture(&format!("torch_{name}_io.safetensors"));
    let (x, y) = (read(&io, "x"), read(&io, "y"));
    model.eval();
    close(&format!("{name}: predict"), &model.predict(x.view()), &y);
    let taped = model.forward(&Tape::new().constant(x)).value();
    close(&format!("{name}: tape"), &taped, &y);
}

#[test]
fn an_lstm_classifier_loads_pytorchs_state_dict_by_name() {
    let names: Vec<String> = LstmClassifier::with_seed(0)
        .named_params()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    // PyTorch's state_dict keys, in its order (printed by the script).
    assert_eq!(
        names,
        [
            "lstm.weight_ih_l0",
            "lstm.weight_hh_l0",
            "lstm.bias_ih_l0",
            "lstm.bias_hh_l0",
            "head.weight",
            "head.bias"
        ]
    );
    reproduces(LstmClassifier::with_seed(0), "lstm");
}

#[test]
fn a_transformer_encoder_layer_loads_pytorchs_state_dict_by_name() {
    let names: Vec<String> = Encoder::with_seed(0)
        .named_params()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let torch = [
        "self_attn.in_proj_weight",
        "self_attn.in_proj_bias",
        "self_attn.out_proj.weight",
        "self_attn.out_proj.bias",
        "linear1.weight",
        "linear1.bias",
        "linear2.weight",
        "linear2.bias",
        "norm1.weight",
        "norm1.bias",
        "norm2.weight",
        "norm2.bias",
    ];
    let torch: Vec<String> = torch.iter().map(|n| format!("layer.{n}")).collect();
    assert_eq!(names, torch);
    reproduces(Encoder::with_seed(0), "encoder");
}
