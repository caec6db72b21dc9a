//! `sequential!` models of sequences: images cut into `Patches`, `Dense` on
//! each step of a sequence, `GlobalAvgPool1d`, and the recurrent and
//! attention layers. Both paths agree (f64, 1e-12: outputs, every
//! parameter's gradient and the input's; the expected values are the tape's,
//! which nn-core checks against PyTorch's `seq.json` and finite
//! differences), and the macro's shapes and parameter counts are the layers'
//! own (counts by PyTorch's formulas, spelled out where asserted).

use crate::common;

use nn::prelude::*;

use common::paths::paths_agree;

sequential! {
    /// Patches of a 4×6 image, embedded per step, pooled over steps.
    #[dtype(f64)]
    pub struct Tokens: input(4, 6) {
        Patches(2),
        embed: Dense(5, activation = tanh),
        GlobalAvgPool1d,
        Dense(3),
    }
}

sequential! {
    /// Every recurrent layer, stacked: sequences out, then the last output.
    #[dtype(f64)]
    pub struct Recurrent: input(5, 3) {
        rnn: SimpleRNN(4, activation = relu, return_sequences = true),
        gru: GRU(3, return_sequences = true, num_layers = 2, dropout = 0.3),
        both: Bidirectional(LSTM(4, return_sequences = true)),
        last: LSTM(2, bidirectional = true),
        Dense(3),
    }
}

sequential! {
    /// Tokens (as indices) embedded, positions added, attention and an
    /// encoder layer of each norm placement, then a tanh RNN's last output.
    #[dtype(f64)]
    pub struct Attention: input(6) {
        Embedding(11, 8),
        PositionalEmbedding,
        attn: MultiHeadAttention(heads = 2, key_dim = 4, causal = true),
        post: TransformerEncoder(heads = 4, dim_feedforward = 12, dropout = 0.0),
        pre: TransformerEncoder(heads = 2, dim_feedforward = 6, dropout = 0.0, activation = gelu, norm_first = true, causal = true),
        SimpleRNN(3),
    }
}

sequential! {
    /// Token 0 pads (PyTorch's `padding_idx`).
    #[dtype(f64)]
    pub struct Padded: input(5) {
        Embedding(7, 3, padding_idx = 0),
        Flatten,
        Dense(2),
    }
}

/// PyTorch's `nn.Embedding(padding_idx=0)`: the padding row starts at zero
/// and gets no gradient, on the static path and the tape alike; the other
/// rows get theirs.
#[test]
fn the_padding_tokens_row_is_zero_and_gets_no_gradient() {
    let x = nn::ndarray::array![[0.0, 3.0, 0.0, 5.0, 1.0], [2.0, 0.0, 0.0, 6.0, 3.0]].into_dyn();
    let (tape_model, mut static_model) = (Padded::with_seed(2), Padded::with_seed(2));
    let row = |m: &Padded, r: usize| -> Vec<f64> {
        let state = m.named_params();
        let table = state[0].1.value();
        table
            .index_axis(nn::ndarray::Axis(0), r)
            .iter()
            .copied()
            .collect()
    };
    assert_eq!(row(&static_model, 0), [0.0; 3]);
    let out = tape_model.forward(&Tape::new().constant(x.clone()));
    let cot = common::paths::input::<f64>(&out.shape());
    out.backward_with(cot.clone());
    static_model.forward_train(x.view());
    static_model.backward(cot.view());
    for model in [&tape_model, &static_model] {
        let grad = model.named_params()[0].1.grad().clone().unwrap();
        let grad = grad.into_dimensionality::<nn::ndarray::Ix2>().unwrap();
        assert!(grad.row(0).iter().all(|&g| g == 0.0), "{grad}");
        for used in [1, 2, 3, 5, 6] {
            assert!(
                grad.row(used).iter().any(|&g| g != 0.0),
                "row {used}: {grad}"
            );
        }
        assert!(
            grad.row(4).iter().all(|&g| g == 0.0),
            "token 4 is not in the batch"
        );
    }
    let (a, b) = (
        common::paths::grads(&static_model),
        common::paths::grads(&tape_model),
    );
    for (name, g) in &a {
        common::paths::close(name, g, &b[name], 1e-12);
    }
}

#[test]
fn recurrent_layers_agree_between_paths() {
    paths_agree(|| Recurrent::with_seed(5), &[2, 5, 3], 1e-12);
}

#[test]
fn attention_layers_agree_between_paths() {
    // Token indices: whole numbers below the vocabulary of 11.
    let make = || Attention::with_seed(5);
    let x = nn::ndarray::ArrayD::from_shape_fn(nn::ndarray::IxDyn(&[3, 6]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64
    });
    let (mut tape_model, mut static_model) = (make(), make());
    let out = tape_model.forward(&Tape::new().constant(x.clone()));
    let cot = common::paths::input::<f64>(&out.shape());
    out.backward_with(cot.clone());
    let y = static_model.forward_train(x.view()).to_owned();
    static_model.backward(cot.view());
    common::paths::close("output", &y, &out.value(), 1e-12);
    let (a, b) = (
        common::paths::grads(&static_model),
        common::paths::grads(&tape_model),
    );
    for (name, g) in &a {
        common::paths::close(name, g, &b[name], 1e-12);
    }
    tape_model.eval();
    static_model.eval();
    common::paths::close(
        "predict",
        &static_model.predict(x.view()),
        &out.value(),
        1e-12,
    );
}

#[test]
fn shapes_and_parameter_counts_are_pytorchs() {
    // PyTorch's formula per layer and direction: gates·H·(in + H) + 2·gates·H.
    let rnn = 4 * (3 + 4) + 2 * 4;
    let gru = (3 * 3 * (4 + 3) + 2 * 3 * 3) + (3 * 3 * (3 + 3) + 2 * 3 * 3);
    let both = 2 * (4 * 4 * (3 + 4) + 2 * 4 * 4);
    let last = 2 * (4 * 2 * (8 + 2) + 2 * 4 * 2);
    assert_eq!(
        Recurrent::PARAM_COUNT,
        rnn + gru + both + last + (4 * 3 + 3)
    );
    assert_eq!(
        Recurrent::with_seed(0).param_count(),
        Recurrent::PARAM_COUNT
    );
    let summary = Recurrent::with_seed(0).summary().to_string();
    for row in ["(None, 5, 4)", "(None, 5, 3)", "(None, 5, 8)", "(None, 4)"] {
        assert!(summary.contains(row), "{row}: {summary}");
    }
    // Attention: in_proj 3E·E + 3E, out_proj E·E + E; an encoder layer adds
    // its two linear maps and two norms.
    let attn = 4 * 8 * 8 + 4 * 8;
    let encoder = |ff: usize| attn + (ff * 8 + ff) + (8 * ff + 8) + 4 * 8;
    let expected = 11 * 8 + 6 * 8 + attn + encoder(12) + encoder(6) + (3 * (8 + 3) + 2 * 3);
    assert_eq!(Attention::PARAM_COUNT, expected);
    assert_eq!(Attention::with_seed(0).param_count(), expected);
}

#[test]
fn patches_dense_per_step_and_pooling_agree_between_paths() {
    paths_agree(|| Tokens::with_seed(3), &[2, 4, 6], 1e-12);
}

#[test]
fn dense_on_a_sequence_maps_every_step_alike() {
    // 6 patches of 2×2 pixels: (6, 4) → (6, 5); Dense(5) holds 4·5 + 5.
    assert_eq!(Tokens::OUTPUT_SHAPE, &[3]);
    let model = Tokens::with_seed(3);
    let summary = model.summary().to_string();
    assert!(summary.contains("(None, 6, 5)"), "{summary}");
    assert_eq!(model.param_count(), (4 * 5 + 5) + (5 * 3 + 3));
}

#[test]
fn predicting_no_samples_gives_outputs_of_no_rows() {
    // A PyTorch module returns `[0, …]` for an empty batch: the shape of
    // the outputs, with no rows.
    let mut recurrent = Recurrent::with_seed(5);
    let none = nn::ndarray::ArrayD::<f64>::zeros(nn::ndarray::IxDyn(&[0, 5, 3]));
    let out = nn::train::predict(&mut recurrent, none.view(), 4);
    let one = recurrent.predict(nn::ndarray::ArrayD::zeros(nn::ndarray::IxDyn(&[1, 5, 3])).view());
    assert_eq!(out.shape()[0], 0);
    assert_eq!(out.shape()[1..], one.shape()[1..]);

    let mut attention = Attention::with_seed(5);
    let none = nn::ndarray::ArrayD::<f64>::zeros(nn::ndarray::IxDyn(&[0, 6]));
    let out = nn::train::predict(&mut attention, none.view(), 4);
    let one = attention.predict(nn::ndarray::ArrayD::zeros(nn::ndarray::IxDyn(&[1, 6])).view());
    assert_eq!(out.shape()[0], 0);
    assert_eq!(out.shape()[1..], one.shape()[1..]);
}
