//! Models from parts: a `sequential!` model inside another by name, and
//! `Residual` blocks (identity and projection shortcuts, nested in each
//! other and in nested models). Both paths agree (f64, 1e-12: outputs, every
//! parameter's gradient and the input's), the tape's input gradient passes
//! `gradcheck` (central finite differences), parameters and buffers carry
//! PyTorch-style prefixed names, and `summary()` shows a nested model as one
//! row (Keras's layout) or expanded.
//!
//! Expected values are the tape's (itself checked against PyTorch and finite
//! differences in nn-core's tests) and finite differences; parameter counts
//! follow Keras's formulas, spelled out where asserted.

use crate::common;

use nn::prelude::*;

use common::paths::{close, grads, input};

fn paths_agree<M: Model<f64> + Layer<f64>>(make: impl Fn() -> M, in_shape: &[usize]) {
    common::paths::paths_agree(make, in_shape, 1e-12)
}

sequential! {
    /// A block of 8 features: dense, layer norm, and a skip connection.
    #[dtype(f64)]
    pub struct Block: input(8) {
        Dense(8, activation = tanh),
        norm: LayerNorm,
        Residual { Dense(8, activation = elu) },
    }
}

sequential! {
    /// A softmax classifier head (the fused loss gradient sees through it).
    #[dtype(f64)]
    pub struct Head: input(8) {
        Dense(3),
        Activation("softmax"),
    }
}

sequential! {
    /// Every way to compose: a nested model named and unnamed, residual
    /// blocks with dropout and batch norm, a projection, a residual inside a
    /// residual, a nested model inside a residual, and a nested head.
    #[dtype(f64)]
    pub struct Net: input(6) {
        Dense(8, activation = tanh),
        block: Block,
        Block,
        res: Residual {
            Dense(8, activation = tanh),
            BatchNorm,
            Dropout(0.25),
            Dense(8),
        },
        Residual { Residual { Dense(8, activation = sigmoid) }, Block },
        proj: Residual(shortcut = Dense(5)) {
            Dense(5, activation = elu),
            LayerNorm,
        },
        Dense(8, activation = tanh),
        head: Head -> (3),
    }
}

sequential! {
    /// A residual CNN: identity blocks and a strided projection block with
    /// batch norm in both branches.
    #[dtype(f64)]
    pub struct ResCnn: input(2, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same", activation = tanh),
        Residual {
            Conv2d(4, kernel = 3, padding = "same"),
            BatchNorm,
            Activation(tanh),
            Conv2d(4, kernel = 3, padding = "same"),
        },
        down: Residual(shortcut = { Conv2d(6, kernel = 1, stride = 2), BatchNorm }) {
            Conv2d(6, kernel = 3, stride = 2, padding = 1),
            BatchNorm,
        },
        Activation(tanh),
        GlobalAvgPool,
        Dense(3),
    }
}

sequential! {
    /// Nested models and a residual block without dropout, for gradcheck.
    #[dtype(f64)]
    pub struct Smooth: input(6) {
        Dense(8, activation = tanh),
        block: Block,
        Residual { Dense(8, activation = softplus), BatchNorm },
        head: Head -> (3),
    }
}

#[test]
fn nested_and_residual_models_agree_between_paths() {
    paths_agree(|| Net::with_seed(7), &[5, 6]);
    paths_agree(|| ResCnn::with_seed(7), &[3, 2, 6, 6]);
    paths_agree(|| Block::with_seed(7), &[4, 8]);
}

#[test]
fn the_tape_gradient_of_the_input_passes_gradcheck() {
    let opts = GradcheckOptions::default();
    let smooth = Smooth::with_seed(3);
    let report = gradcheck(|v| smooth.forward(&v[0]), &[input::<f64>(&[4, 6])], &opts);
    assert!(report.passed, "Smooth: {report}");
    let cnn = ResCnn::with_seed(3);
    let report = gradcheck(
        |v| cnn.forward(&v[0]),
        &[input::<f64>(&[2, 2, 6, 6])],
        &opts,
    );
    assert!(report.passed, "ResCnn: {report}");
}

#[test]
fn the_fused_softmax_gradient_sees_through_a_nested_head() {
    let x = input::<f64>(&[6, 6]);
    let labels = [0usize, 2, 1, 1, 0, 2];
    let (mut fused, reference) = (Smooth::with_seed(1), Smooth::with_seed(1));
    assert!(Layer::softmax_output(&fused));
    fused.forward_train(x.view());
    let loss = fused.backward_loss(
        Loss::SparseCategoricalCrossEntropy,
        &Target::Labels(&labels),
    );
    let tape = Tape::new();
    let probs = reference.forward(&tape.constant(x.clone()));
    let l = sparse_categorical_cross_entropy(&probs, &labels, Reduction::Mean);
    l.backward();
    assert!((loss - l.item()).abs() < 1e-12);
    let (a, b) = (grads(&fused), grads(&reference));
    for (name, g) in &a {
        close(name, g, &b[name], 1e-12);
    }
}

#[test]
fn parameters_and_buffers_are_named_by_field_path() {
    let m = Net::with_seed(0);
    let params: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    for name in [
        "dense.weight",
        // A nested model: its own names under the field.
        "block.dense.weight",
        "block.norm.weight",
        "block.residual.dense.weight",
        "block_1.dense.weight",
        // A residual block: the body's layers directly under it…
        "res.dense.weight",
        "res.batch_norm.weight",
        "res.dense_1.bias",
        "residual.residual.dense.weight",
        "residual.block.norm.bias",
        // …the projection under `shortcut.`.
        "proj.shortcut.dense.weight",
        "proj.dense.weight",
        "proj.layer_norm.weight",
        "head.dense.weight",
    ] {
        assert!(params.contains(&name.to_string()), "{name} in {params:?}");
    }
    let buffers: Vec<String> = m.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        ["res.batch_norm.running_mean", "res.batch_norm.running_var"]
    );
    let cnn = ResCnn::with_seed(0);
    let buffers: Vec<String> = cnn.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        [
            "residual.batch_norm.running_mean",
            "residual.batch_norm.running_var",
            "down.batch_norm.running_mean",
            "down.batch_norm.running_var",
            "down.shortcut.batch_norm.running_mean",
            "down.shortcut.batch_norm.running_var",
        ]
    );
    // Names are stable, and unique.
    let again: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(params, again);
    let mut unique = params.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), params.len());
}

#[test]
fn a_nested_model_is_a_layer_and_a_sublayer() {
    use nn::layers::Sublayer;
    let b = Block::with_seed(0);
    assert_eq!(Layer::type_name(&b), "Block");
    assert_eq!(Layer::output_shape(&b, &[8]), Ok(vec![8]));
    assert!(Layer::output_shape(&b, &[7]).is_err());
    assert_eq!(<Block as Sublayer<f64>>::NAME, "Block");
    assert_eq!(<Head as Sublayer<f64>>::OUTPUT_SHAPE, &[3]);
    // Dense 8·8 + 8 = 72, LayerNorm 2·8 = 16, the residual's Dense 72: 160.
    const { assert!(Block::PARAM_COUNT == 160) };
    assert_eq!(<Block as Sublayer<f64>>::PARAM_COUNT, Some(160));
    // Dense 6·8 + 8 = 56; two blocks, 320; res: Dense 72, BatchNorm γ and β
    // 16, Dense 72 = 160; residual: its inner residual's Dense 72 and a block
    // 160 = 232; proj: Dense 8·5 + 5 = 45, LayerNorm 10, shortcut Dense 45 =
    // 100; Dense 5·8 + 8 = 48; head 8·3 + 3 = 27: 943 trainable. BatchNorm's
    // running mean and variance (2·8) are buffers.
    const { assert!(Net::PARAM_COUNT == 943) };
    let net = Net::with_seed(0);
    assert_eq!(net.param_count(), 943);
    assert_eq!(Layer::non_trainable_count(&net), 16);
}

sequential! {
    /// An encoder of 64 features to 32, for the summary.
    pub struct Encoder: input(64) {
        Dense(32, activation = relu),
        BatchNorm,
    }
}

sequential! {
    /// A nested model and a projected residual block, for the summary.
    pub struct Tower: input(784) {
        Dense(64, activation = relu),
        encoder: Encoder -> (32),
        Residual(shortcut = Dense(16)) {
            Dense(16, activation = relu),
            Dense(16),
        },
        Dense(10),
    }
}

// Keras's counts: Dense 784·64 + 64 = 50,240; the encoder's Dense 64·32 + 32
// = 2,080 and BatchNorm γ, β (64 trainable) and running mean and variance
// (64 non-trainable): 2,208; the residual's Dense 32·16 + 16 = 528 and
// 16·16 + 16 = 272, its shortcut 32·16 + 16 = 528: 1,328; Dense 16·10 + 10 =
// 170. Trainable 53,882 (× 4 bytes = 210.48 KB), non-trainable 64 (256 B).
const COLLAPSED: &str = "\
Model: \"tower\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 64)             │        50,240 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ encoder (Encoder)               │ (None, 32)             │         2,208 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ residual (Residual)             │ (None, 16)             │         1,328 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │           170 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 53,946 (210.73 KB)
 Trainable params: 53,882 (210.48 KB)
 Non-trainable params: 64 (256.00 B)";

const EXPANDED: &str = "\
Model: \"tower\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 64)             │        50,240 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ encoder (Encoder)               │ (None, 32)             │         2,208 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│   └ dense (Dense)               │ (None, 32)             │         2,080 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│   └ batch_norm (BatchNorm)      │ (None, 32)             │           128 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ residual (Residual)             │ (None, 16)             │         1,328 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│   └ dense (Dense)               │ (None, 16)             │           528 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│   └ dense_1 (Dense)             │ (None, 16)             │           272 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│   └ shortcut (Sequential)       │ (None, 16)             │           528 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│     └ dense (Dense)             │ (None, 16)             │           528 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │           170 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 53,946 (210.73 KB)
 Trainable params: 53,882 (210.48 KB)
 Non-trainable params: 64 (256.00 B)";

#[test]
fn summary_shows_a_nested_model_as_one_row_or_expanded() {
    let m = Tower::with_seed(0);
    assert_eq!(m.summary().to_string(), COLLAPSED);
    assert_eq!(m.summary().expanded().to_string(), EXPANDED);
    const { assert!(Tower::PARAM_COUNT == 53_882) };
}

sequential! {
    /// A residual stage: two 3×3 convolutions with batch norm, and a skip.
    pub struct Stage: input(16, 14, 14) {
        Residual {
            Conv2d(16, kernel = 3, padding = "same"),
            BatchNorm,
            ReLU,
            Conv2d(16, kernel = 3, padding = "same"),
            BatchNorm,
        },
        ReLU,
    }
}

sequential! {
    /// The composition example as the README shows it.
    pub struct ResNet: input(1, 28, 28) {
        Conv2d(16, kernel = 3, stride = 2, padding = 1, activation = relu),
        stage1: Stage,
        down: Residual(shortcut = { Conv2d(32, kernel = 1, stride = 2), BatchNorm }) {
            Conv2d(32, kernel = 3, stride = 2, padding = 1),
            BatchNorm,
            ReLU,
            Conv2d(32, kernel = 3, padding = "same"),
            BatchNorm,
        },
        ReLU,
        GlobalAvgPool,
        Dense(10, activation = softmax),
    }
}

#[test]
fn the_readme_example_names_its_parts() {
    let model = ResNet::with_seed(0);
    let s = model.summary();
    assert_eq!(s.rows.len(), 6);
    assert_eq!(s.rows[1].type_name, "Stage");
    assert_eq!(
        s.rows[2].children.len(),
        6,
        "down: five body layers and the shortcut"
    );
    let state: Vec<String> = model.named_state().into_iter().map(|(n, _)| n).collect();
    for name in [
        "stage1.residual.conv2d.weight",
        "stage1.residual.batch_norm_1.running_var",
        "down.conv2d.weight",
        "down.batch_norm.running_mean",
        "down.shortcut.conv2d.weight",
        "down.shortcut.batch_norm.bias",
    ] {
        assert!(state.contains(&name.to_string()), "{name} in {state:?}");
    }
    let mut m = model;
    let x = input::<f32>(&[2, 1, 28, 28]);
    let p = m.forward_train(x.view()).to_owned();
    assert_eq!(p.shape(), &[2, 10]);
}

sequential! {
    /// A field named with a Rust keyword.
    #[dtype(f64)]
    pub struct Keyworded: input(3) {
        r#type: Dense(2),
    }
}

#[test]
fn raw_field_names_are_saved_without_the_prefix() {
    // PyTorch would name the attribute `type`; `r#` is Rust's spelling only.
    let m = Keyworded::with_seed(0);
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["type.weight", "type.bias"]);
    assert!(m.summary().to_string().contains("type (Dense)"));
}
