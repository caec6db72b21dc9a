//! A `#[derive(Module)]` model and the same architecture written in PyTorch:
//! the same `state_dict` names, and PyTorch's weights give PyTorch's outputs.
//!
//! Every expected number comes from `tests/fixtures/make_torch_derived.py`
//! (PyTorch 2.15, float32), which defines the model, runs three train-mode
//! passes so BatchNorm's running statistics move, and writes
//! - `tests/fixtures/torch_derived.safetensors`: its `state_dict` as PyTorch
//!   keeps it (`num_batches_tracked` included, int64);
//! - `tests/fixtures/torch_derived_io.safetensors`: an input `x`, the output
//!   `y` in eval mode, the output `y_train` of one more train-mode pass, and
//!   the running statistics that pass leaves (`after_train.<name>`).
//!
//! Regenerate (CI has no Python; the fixtures are committed):
//! `/path/to/venv/bin/python tests/fixtures/make_torch_derived.py`
//! (a venv with `torch safetensors numpy`); it prints the `state_dict` keys
//! that [`TORCH_STATE_DICT_KEYS`] lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nn::io::IoError;
use nn::layers::{BatchNorm, Conv2d, Dense, Padding};
use nn::module::Module;
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use nn::rand::rngs::StdRng;
use nn::rand::SeedableRng;

/// The keys of the PyTorch model's `state_dict`, in its order, as
/// `make_torch_derived.py` printed them. PyTorch puts `scale`, the model's
/// own parameter, before its sub-modules' entries although `__init__`
/// assigns it last.
const TORCH_STATE_DICT_KEYS: &[&str] = &[
    "scale",
    "stem.weight",
    "stem.bias",
    "bn.weight",
    "bn.bias",
    "bn.running_mean",
    "bn.running_var",
    "bn.num_batches_tracked",
    "blocks.0.conv1.weight",
    "blocks.0.conv1.bias",
    "blocks.0.bn1.weight",
    "blocks.0.bn1.bias",
    "blocks.0.bn1.running_mean",
    "blocks.0.bn1.running_var",
    "blocks.0.bn1.num_batches_tracked",
    "blocks.0.conv2.weight",
    "blocks.0.conv2.bias",
    "blocks.0.bn2.weight",
    "blocks.0.bn2.bias",
    "blocks.0.bn2.running_mean",
    "blocks.0.bn2.running_var",
    "blocks.0.bn2.num_batches_tracked",
    "blocks.1.conv1.weight",
    "blocks.1.conv1.bias",
    "blocks.1.bn1.weight",
    "blocks.1.bn1.bias",
    "blocks.1.bn1.running_mean",
    "blocks.1.bn1.running_var",
    "blocks.1.bn1.num_batches_tracked",
    "blocks.1.conv2.weight",
    "blocks.1.conv2.bias",
    "blocks.1.bn2.weight",
    "blocks.1.bn2.bias",
    "blocks.1.bn2.running_mean",
    "blocks.1.bn2.running_var",
    "blocks.1.bn2.num_batches_tracked",
    "proj.weight",
    "proj.bias",
    "head.weight",
    "head.bias",
];

/// PyTorch's `Block`: `relu(x + bn2(conv2(relu(bn1(conv1(x))))))`.
#[derive(Module)]
struct Block {
    conv1: Conv2d<f32, 4, 4, 3, 3>,
    bn1: BatchNorm<f32, 4>,
    conv2: Conv2d<f32, 4, 4, 3, 3>,
    bn2: BatchNorm<f32, 4>,
}

impl Block {
    fn new(rng: &mut StdRng) -> Self {
        Block {
            conv1: Conv2d::init(Padding::Explicit(1, 1), rng),
            bn1: BatchNorm::default(),
            conv2: Conv2d::init(Padding::Explicit(1, 1), rng),
            bn2: BatchNorm::default(),
        }
    }

    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        let h = self.bn1.forward(&self.conv1.forward(x)).relu();
        (x + &self.bn2.forward(&self.conv2.forward(&h))).relu()
    }
}

/// PyTorch's `Net`, its fields in the order `__init__` assigns them.
/// `scale` is declared last, yet named first: PyTorch's `state_dict` lists a
/// module's own parameters before its children's, and so does the derive.
#[derive(Module)]
struct Net {
    stem: Conv2d<f32, 1, 4, 3, 3>,
    bn: BatchNorm<f32, 4>,
    blocks: Vec<Block>,
    proj: Option<Dense<f32, 4, 4>>,
    head: Dense<f32, 4, 10>,
    scale: Param<f32>,
}

impl Net {
    fn new(seed: u64, use_proj: bool) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Net {
            scale: Param::new(ArrayD::ones(IxDyn(&[10]))),
            stem: Conv2d::init(Padding::Explicit(1, 1), &mut rng),
            bn: BatchNorm::default(),
            blocks: vec![Block::new(&mut rng), Block::new(&mut rng)],
            proj: use_proj.then(|| Dense::init(&mut rng)),
            head: Dense::init(&mut rng),
        }
    }

    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        let mut h = self.bn.forward(&self.stem.forward(x)).relu();
        for block in &self.blocks {
            h = block.forward(&h);
        }
        let mut h = h.global_avg_pool();
        if let Some(proj) = &self.proj {
            h = &h + &proj.forward(&h).relu();
        }
        &self.head.forward(&h) * &x.tape().param(&self.scale)
    }

    fn run(&self, x: &ArrayD<f32>) -> ArrayD<f32> {
        let tape = Tape::new();
        self.forward(&tape.constant(x.clone())).value()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The float32 tensors of a safetensors file, and the names of the others.
fn read_f32(path: &Path) -> (BTreeMap<String, ArrayD<f32>>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (mut floats, mut others) = (BTreeMap::new(), Vec::new());
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            others.push(name);
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        floats.insert(
            name,
            ArrayD::from_shape_vec(IxDyn(view.shape()), data).unwrap(),
        );
    }
    others.sort();
    (floats, others)
}

fn io() -> BTreeMap<String, ArrayD<f32>> {
    read_f32(&fixture("torch_derived_io.safetensors")).0
}

fn close(what: &str, ours: &ArrayD<f32>, torch: &ArrayD<f32>) {
    assert_eq!(ours.shape(), torch.shape(), "{what}");
    for (a, b) in ours.iter().zip(torch.iter()) {
        assert!((a - b).abs() <= 1e-5, "{what}: {a} vs PyTorch {b}");
    }
}

fn loaded() -> Net {
    let mut net = Net::new(0, true);
    net.load(fixture("torch_derived.safetensors")).unwrap();
    net
}

#[test]
fn names_are_pytorchs_state_dict_keys_in_its_order() {
    let net = Net::new(0, true);
    let ours: Vec<String> = net.named_state().into_iter().map(|(n, _)| n).collect();
    // Everything PyTorch saves but `num_batches_tracked`, which the loaders
    // skip (`nn::io`'s `pytorch_only`): the step counter PyTorch's BatchNorm
    // reads only when its momentum is `None`.
    let expected: Vec<&str> = TORCH_STATE_DICT_KEYS
        .iter()
        .copied()
        .filter(|k| !k.ends_with(".num_batches_tracked"))
        .collect();
    assert_eq!(ours, expected);

    // Parameters and buffers are apart, as `named_parameters` and `named_buffers`.
    let mut buffers = Vec::new();
    Module::visit_buffers(&net, &mut |n, _| buffers.push(n.to_string()));
    let running = |k: &&str| k.contains(".running_");
    assert_eq!(
        buffers,
        expected.iter().copied().filter(running).collect::<Vec<_>>()
    );
    let mut params = Vec::new();
    Module::visit_params(&net, &mut |n, _| params.push(n.to_string()));
    let trained: Vec<&str> = expected.into_iter().filter(|k| !running(k)).collect();
    assert_eq!(params, trained);

    // The file PyTorch wrote holds exactly those keys.
    let (floats, others) = read_f32(&fixture("torch_derived.safetensors"));
    let mut all: Vec<&str> = floats.keys().map(String::as_str).collect();
    all.extend(others.iter().map(String::as_str));
    all.sort();
    let mut listed = TORCH_STATE_DICT_KEYS.to_vec();
    listed.sort();
    assert_eq!(all, listed, "the list above is the fixture's");
    assert!(others.iter().all(|k| k.ends_with(".num_batches_tracked")));
}

#[test]
fn pytorch_weights_give_pytorchs_outputs_in_eval_mode() {
    let mut net = loaded();
    Module::set_training(&mut net, false);
    let io = io();
    close("y", &net.run(&io["x"]), &io["y"]);
    // Evaluation leaves the running statistics alone.
    let before = net.bn.running_var.value().clone();
    net.run(&io["x"]);
    assert_eq!(*net.bn.running_var.value(), before);
}

#[test]
fn a_train_mode_pass_matches_pytorchs_output_and_running_statistics() {
    // Models start in training mode, as in PyTorch.
    let net = loaded();
    let io = io();
    close("y_train", &net.run(&io["x"]), &io["y_train"]);
    for (name, p) in net.named_state() {
        if let Some(torch) = io.get(&format!("after_train.{name}")) {
            close(&name, &p.value(), torch);
        }
    }
    assert!(io.contains_key("after_train.blocks.1.bn2.running_var"));
}

#[test]
fn loading_sets_every_tensor_and_saving_writes_them_back_unchanged() {
    let net = loaded();
    let (torch, _) = read_f32(&fixture("torch_derived.safetensors"));
    for (name, p) in net.named_state() {
        assert_eq!(*p.value(), torch[&name], "{name}");
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("derive_module_torch");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    net.save(&path).unwrap();
    let (saved, others) = read_f32(&path);
    assert!(others.is_empty());
    assert_eq!(saved.len(), torch.len());
    for (name, t) in &torch {
        assert_eq!(saved[name], *t, "{name}");
    }

    // And a fresh model loads what was saved into PyTorch's outputs.
    let mut again = Net::new(7, true);
    again.load(&path).unwrap();
    Module::set_training(&mut again, false);
    let io = io();
    close("y after a round trip", &again.run(&io["x"]), &io["y"]);
}

#[test]
fn without_the_optional_part_the_pytorch_file_is_refused_by_name() {
    let mut net = Net::new(0, false);
    let names: Vec<String> = net.named_state().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.starts_with("proj.")), "{names:?}");
    let before = net.head.weight.value().clone();
    let err = net.load(fixture("torch_derived.safetensors")).unwrap_err();
    assert!(
        matches!(&err, IoError::KeysMismatch { missing, unexpected, .. }
            if missing.is_empty() && unexpected == &["proj.bias", "proj.weight"]),
        "{err}"
    );
    assert_eq!(
        *net.head.weight.value(),
        before,
        "a refused load changed nothing"
    );
}
