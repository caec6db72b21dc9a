//! The attention layers' two execution paths agree, their gradients match
//! finite differences, dropout acts only in training, and misuse panics
//! naming the layer and the shapes.
//!
//! Expected numbers: the tape path for the static one (both f64, to 1e-12
//! relative to `max(1, |value|)`), and central finite differences for the
//! gradients (`nn_core::gradcheck` with its defaults, PyTorch's: `atol 1e-5`,
//! `rtol 1e-3`, step 1e-6; parameters perturbed in place the same way).

use ndarray::{ArrayD, Dimension, IxDyn};
use nn_core::layers::{
    AttentionMask, FeedForwardActivation, Layer, MultiheadAttention, PositionalEmbedding, Share,
    TransformerConfig, TransformerEncoderLayer,
};
use nn_core::rand::{rngs::StdRng, SeedableRng};
use nn_core::{gradcheck, GradcheckOptions, Param, Tape, Var};

/// Deterministic values in (-1, 1), different for each `seed`.
fn values(shape: &[usize], seed: f64) -> ArrayD<f64> {
    let mut i = 0.0;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        i += 1.0;
        (i * 0.7318 + seed * 1.913).sin() * (i * 0.291 + seed).cos()
    })
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn params(layer: &dyn Layer<f64>) -> Vec<(String, Param<f64>)> {
    let mut out = Vec::new();
    layer.visit_params(&mut |n, p| out.push((n.to_string(), p.clone())));
    out
}

fn names(layer: &dyn Layer<f64>) -> Vec<String> {
    params(layer).into_iter().map(|(n, _)| n).collect()
}

/// Takes every parameter's gradient, leaving none.
fn take_grads(layer: &dyn Layer<f64>) -> Vec<ArrayD<f64>> {
    params(layer)
        .into_iter()
        .map(|(n, p)| {
            let g = p.grad_mut().take();
            g.unwrap_or_else(|| panic!("no gradient for {n}"))
        })
        .collect()
}

/// `|a - b| <= tol · max(1, |b|)` element-wise.
fn assert_close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}: shape");
    for ((i, &x), &y) in a.indexed_iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "{what}: at {:?} {x:e} vs {y:e}",
            i.slice()
        );
    }
}

/// The tape path (`forward` and backward of `sum(y · cot)`) against the
/// static path (`forward_train` and `backward` with `cot`): outputs, input
/// gradients and parameter gradients to 1e-12; and `predict` equal to the
/// training output.
fn paths_agree(what: &str, layer: &mut dyn Layer<f64>, x: &ArrayD<f64>) {
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = layer.forward(&xv);
    let cot = values(&y.shape(), 3.0);
    y.backward_with(cot.clone());
    let (y_tape, dx_tape) = (y.value(), xv.grad().expect("input gradient"));
    let grads_tape = take_grads(layer);

    let y_static = layer.forward_train(x.view()).to_owned();
    let dx_static = layer.backward(x.view(), cot.view(), true).to_owned();
    assert_close(&format!("{what}: output"), &y_static, &y_tape, 1e-12);
    assert_close(&format!("{what}: d/dx"), &dx_static, &dx_tape, 1e-12);
    let names = names(layer);
    for ((n, gs), gt) in names.iter().zip(take_grads(layer)).zip(&grads_tape) {
        assert_close(&format!("{what}: d/d{n}"), &gs, gt, 1e-12);
    }
    assert_eq!(layer.predict(x.view()), y_static, "{what}: predict");
    // Without the input's gradient the parameters' are the same.
    layer.forward_train(x.view());
    assert!(layer.backward(x.view(), cot.view(), false).is_empty());
    for ((n, gs), gt) in names.iter().zip(take_grads(layer)).zip(&grads_tape) {
        assert_close(&format!("{what} (no dx): d/d{n}"), &gs, gt, 1e-12);
    }
}

fn encoder(
    activation: FeedForwardActivation,
    norm_first: bool,
    causal: bool,
) -> TransformerEncoderLayer<f64> {
    let config = TransformerConfig::new(8, 2)
        .dim_feedforward(12)
        .dropout(0.0)
        .activation(activation)
        .norm_first(norm_first)
        .causal(causal);
    TransformerEncoderLayer::new(config, &mut rng())
}

#[test]
fn multihead_attention_paths_agree() {
    let x = values(&[3, 5, 8], 1.0);
    for causal in [false, true] {
        let mut mha = MultiheadAttention::new(8, 2, &mut rng()).causal(causal);
        // Nonzero biases, so their gradients and effects are exercised.
        *mha.in_proj_bias.value_mut() = values(&[24], 4.0);
        *mha.out_proj_bias.value_mut() = values(&[8], 5.0);
        paths_agree(&format!("MHA causal={causal}"), &mut mha, &x);
    }
}

#[test]
fn transformer_paths_agree() {
    let x = values(&[3, 5, 8], 2.0);
    for activation in [FeedForwardActivation::Relu, FeedForwardActivation::Gelu] {
        for norm_first in [false, true] {
            for causal in [false, true] {
                let mut layer = encoder(activation, norm_first, causal);
                *layer.norm1.weight.value_mut() = values(&[8], 6.0);
                *layer.norm2.bias.value_mut() = values(&[8], 7.0);
                let what = format!("{activation:?} norm_first={norm_first} causal={causal}");
                paths_agree(&what, &mut layer, &x);
            }
        }
    }
}

#[test]
fn positional_embedding_paths_agree() {
    let mut pos = PositionalEmbedding::new(7, 4, &mut rng());
    paths_agree("PositionalEmbedding", &mut pos, &values(&[3, 5, 4], 3.0));
    paths_agree(
        "PositionalEmbedding (full)",
        &mut pos,
        &values(&[2, 7, 4], 4.0),
    );
}

#[test]
fn parameter_names_and_order_are_pytorchs() {
    let mha = MultiheadAttention::<f64>::new(8, 2, &mut rng());
    assert_eq!(
        names(&mha),
        [
            "in_proj_weight",
            "in_proj_bias",
            "out_proj.weight",
            "out_proj.bias"
        ]
    );
    let layer = encoder(FeedForwardActivation::Relu, false, false);
    assert_eq!(
        names(&layer),
        [
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
        ]
    );
    assert_eq!(
        names(&PositionalEmbedding::<f64>::new(4, 2, &mut rng())),
        ["weight"]
    );
    assert_eq!(
        (mha.type_name(), layer.type_name()),
        ("MultiHeadAttention", "TransformerEncoder")
    );
}

/// Each parameter's gradient from one backward pass of `loss` against
/// central differences of `loss` with the parameter perturbed in place.
fn check_param_grads(what: &str, params: &[(String, Param<f64>)], loss: impl Fn(bool) -> f64) {
    let opts = GradcheckOptions::default();
    for (_, p) in params {
        p.clear_grad();
    }
    loss(true);
    for (n, p) in params {
        let analytic = p
            .grad()
            .clone()
            .unwrap_or_else(|| panic!("{what}: no gradient for {n}"));
        for (i, &a) in analytic.iter().enumerate() {
            let at = |delta: f64| {
                let orig = p.value().as_slice().unwrap()[i];
                p.value_mut().as_slice_mut().unwrap()[i] = orig + delta;
                let l = loss(false);
                p.value_mut().as_slice_mut().unwrap()[i] = orig;
                l
            };
            let numeric = (at(opts.eps) - at(-opts.eps)) / (2.0 * opts.eps);
            assert!(
                (a - numeric).abs() <= opts.atol + opts.rtol * numeric.abs(),
                "{what}: d/d{n}[{i}] analytic {a:e}, finite differences {numeric:e}"
            );
        }
    }
}

/// `sum(f(x) · cot)` on a fresh tape, backpropagated when `backward`.
fn tape_loss(x: &ArrayD<f64>, f: impl Fn(&Var<f64>) -> Var<f64>, backward: bool) -> f64 {
    let tape = Tape::new();
    let y = f(&tape.constant(x.clone()));
    let loss = (&y * &tape.constant(values(&y.shape(), 9.0))).sum();
    if backward {
        loss.backward();
    }
    loss.item()
}

#[test]
fn multihead_attention_gradients_match_finite_differences() {
    let mut mha = MultiheadAttention::new(4, 2, &mut rng());
    *mha.in_proj_bias.value_mut() = values(&[12], 1.0);
    let mask = AttentionMask {
        // The first sequence's last two keys are padding, the second's first.
        key_padding_mask: Some(
            ndarray::arr2(&[[false, false, true, true], [true, false, false, false]]).into_dyn(),
        ),
        ..Default::default()
    };
    let (q, kv) = (values(&[2, 3, 4], 2.0), values(&[2, 4, 4], 3.0));
    let report = gradcheck(
        |v| mha.attend(&v[0], &v[1], &v[1], &mask),
        &[q.clone(), kv.clone()],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "MHA with key padding: {report}");
    let report = gradcheck(
        |v| mha.attend_with_weights(&v[0], &v[1], &v[1], &mask).1,
        &[q.clone(), kv.clone()],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "MHA weights with key padding: {report}");
    check_param_grads("MHA", &params(&mha), |backward| {
        tape_loss(
            &q,
            |x| {
                mha.attend(
                    x,
                    &x.tape().constant(kv.clone()),
                    &x.tape().constant(kv.clone()),
                    &mask,
                )
            },
            backward,
        )
    });
    // The static path with attention dropout, its masks replayed by reseeding.
    mha = mha.causal(true).dropout(0.3);
    check_static_with_dropout(
        "MHA (dropout 0.3)",
        &mut mha,
        &values(&[2, 4, 4], 5.0),
        |l, s| l.reseed(s),
    );
}

#[test]
fn transformer_gradients_match_finite_differences() {
    for (activation, norm_first) in [
        (FeedForwardActivation::Gelu, false),
        (FeedForwardActivation::Relu, true),
    ] {
        let config = TransformerConfig::new(4, 2)
            .dim_feedforward(6)
            .dropout(0.0)
            .activation(activation)
            .norm_first(norm_first)
            .causal(true);
        let mut layer = TransformerEncoderLayer::new(config.clone(), &mut rng());
        let what = format!("{activation:?} norm_first={norm_first}");
        let x = values(&[2, 3, 4], 4.0);
        let report = gradcheck(
            |v| layer.forward(&v[0]),
            std::slice::from_ref(&x),
            &GradcheckOptions::default(),
        );
        assert!(report.passed, "{what}: {report}");
        check_param_grads(&what, &params(&layer), |backward| {
            tape_loss(&x, |v| layer.forward(v), backward)
        });
        // The static path with every dropout on, its masks replayed by reseeding.
        layer = TransformerEncoderLayer::new(config.dropout(0.3), &mut rng());
        check_static_with_dropout(&format!("{what} (dropout 0.3)"), &mut layer, &x, |l, s| {
            l.reseed(s)
        });
    }
}

/// The static path in training with dropout, against central differences
/// of `sum(forward_train(x) · cot)` with the same masks (`reseed` before
/// each forward): the input's gradient and every parameter's.
fn check_static_with_dropout<L: Layer<f64>>(
    what: &str,
    layer: &mut L,
    x: &ArrayD<f64>,
    reseed: impl Fn(&L, u64),
) {
    let opts = GradcheckOptions::default();
    let cot = values(
        &layer
            .output_shape(&x.shape()[1..])
            .map(|s| [&[x.shape()[0]][..], &s].concat())
            .unwrap(),
        6.0,
    );
    let loss = |layer: &mut L, x: &ArrayD<f64>| {
        reseed(layer, 11);
        (&layer.forward_train(x.view()) * &cot).sum()
    };
    for (_, p) in params(layer) {
        p.clear_grad();
    }
    loss(layer, x);
    let dx = layer.backward(x.view(), cot.view(), true).to_owned();
    let close = |a: f64, numeric: f64| (a - numeric).abs() <= opts.atol + opts.rtol * numeric.abs();
    let mut xs = x.clone();
    for i in 0..x.len() {
        let orig = x.as_slice().unwrap()[i];
        xs.as_slice_mut().unwrap()[i] = orig + opts.eps;
        let plus = loss(layer, &xs);
        xs.as_slice_mut().unwrap()[i] = orig - opts.eps;
        let minus = loss(layer, &xs);
        xs.as_slice_mut().unwrap()[i] = orig;
        let numeric = (plus - minus) / (2.0 * opts.eps);
        let a = dx.as_slice().unwrap()[i];
        assert!(
            close(a, numeric),
            "{what}: d/dx[{i}] analytic {a:e}, finite differences {numeric:e}"
        );
    }
    for (n, p) in params(layer) {
        let analytic = p.grad().clone().unwrap();
        for (i, &a) in analytic.iter().enumerate() {
            let orig = p.value().as_slice().unwrap()[i];
            p.value_mut().as_slice_mut().unwrap()[i] = orig + opts.eps;
            let plus = loss(layer, x);
            p.value_mut().as_slice_mut().unwrap()[i] = orig - opts.eps;
            let minus = loss(layer, x);
            p.value_mut().as_slice_mut().unwrap()[i] = orig;
            let numeric = (plus - minus) / (2.0 * opts.eps);
            assert!(
                close(a, numeric),
                "{what}: d/d{n}[{i}] analytic {a:e}, finite differences {numeric:e}"
            );
        }
    }
}

#[test]
fn positional_embedding_gradients_match_finite_differences() {
    let pos = PositionalEmbedding::new(5, 3, &mut rng());
    let x = values(&[2, 4, 3], 5.0);
    let report = gradcheck(
        |v| pos.forward(&v[0]),
        std::slice::from_ref(&x),
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "PositionalEmbedding: {report}");
    check_param_grads("PositionalEmbedding", &params(&pos), |backward| {
        tape_loss(&x, |v| pos.forward(v), backward)
    });
    // Rows past the sequence get no gradient.
    let g = pos.weight.grad().clone().unwrap();
    assert!(g.slice(ndarray::s![4.., ..]).iter().all(|&v| v == 0.0));
}

#[test]
fn dropout_acts_only_in_training() {
    let config = TransformerConfig::new(8, 2)
        .dim_feedforward(16)
        .dropout(0.5);
    let mut layer = TransformerEncoderLayer::<f64>::new(config, &mut rng());
    let x = values(&[2, 6, 8], 1.0);
    let on_tape = |layer: &TransformerEncoderLayer<f64>| {
        layer.forward(&Tape::new().constant(x.clone())).value()
    };
    let train_tape = on_tape(&layer);
    let train_static = layer.forward_train(x.view()).to_owned();
    layer.set_training(false);
    let eval_tape = on_tape(&layer);
    let eval_static = layer.forward_train(x.view()).to_owned();
    let predict = layer.predict(x.view());
    let differs = |a: &ArrayD<f64>, b: &ArrayD<f64>| (a - b).iter().any(|d| d.abs() > 1e-3);
    assert!(
        differs(&train_tape, &eval_tape),
        "tape: training equals evaluation"
    );
    assert!(
        differs(&train_static, &predict),
        "static: training equals predict"
    );
    assert_close(
        "evaluation on the tape vs predict",
        &eval_tape,
        &predict,
        1e-12,
    );
    assert_eq!(
        eval_static, predict,
        "evaluation on the static path vs predict"
    );
    // Evaluation is deterministic; training draws new masks each step.
    assert_eq!(layer.predict(x.view()), predict);
    layer.set_training(true);
    let again = layer.forward_train(x.view()).to_owned();
    assert!(
        differs(&again, &train_static),
        "static: the same masks twice"
    );

    // Attention dropout alone.
    let mut mha = MultiheadAttention::<f64>::new(8, 2, &mut rng()).dropout(0.5);
    let y = mha.forward_train(x.view()).to_owned();
    assert!(
        differs(&y, &mha.predict(x.view())),
        "MHA: training equals predict"
    );
    mha.set_training(false);
    assert_eq!(
        mha.forward_train(x.view()).to_owned(),
        mha.predict(x.view())
    );
}

#[test]
fn shared_layers_add_their_gradients_into_the_same_parameters() {
    let mut left = encoder(FeedForwardActivation::Gelu, true, true);
    let mut right = left.share();
    assert!(left.linear1.weight.same_as(&right.linear1.weight));
    assert!(left
        .self_attn
        .in_proj_weight
        .same_as(&right.self_attn.in_proj_weight));
    let (x1, x2) = (values(&[2, 4, 8], 1.0), values(&[2, 4, 8], 2.0));
    let dy = values(&[2, 4, 8], 3.0);
    left.forward_train(x1.view());
    right.forward_train(x2.view());
    left.backward(x1.view(), dy.view(), false);
    right.backward(x2.view(), dy.view(), false);
    let shared = take_grads(&left);
    // The same two passes on the tape, one after the other.
    let tape = Tape::new();
    let y1 = left.forward(&tape.constant(x1.clone()));
    let y2 = left.forward(&tape.constant(x2.clone()));
    let dyv = tape.constant(dy.clone());
    (&(&y1 * &dyv).sum() + &(&y2 * &dyv).sum()).backward();
    for ((n, a), b) in names(&left).iter().zip(shared).zip(take_grads(&left)) {
        assert_close(&format!("shared d/d{n}"), &a, &b, 1e-12);
    }
    let pos = PositionalEmbedding::<f64>::new(4, 2, &mut rng());
    assert!(pos.share().weight.same_as(&pos.weight));
    let mha = MultiheadAttention::<f64>::new(4, 2, &mut rng());
    assert!(mha.share().out_proj_weight.same_as(&mha.out_proj_weight));
}

#[test]
fn initialization_follows_pytorch() {
    let e = 16;
    let mha = MultiheadAttention::<f64>::new(e, 4, &mut rng());
    // xavier_uniform on [3E, E]: bound √(6 / (E + 3E)); nn.Linear's U(±1/√E).
    let xavier = (6.0 / (4.0 * e as f64)).sqrt();
    let w = mha.in_proj_weight.value();
    assert!(w.iter().all(|v| v.abs() <= xavier));
    assert!(w.iter().any(|v| v.abs() > 0.9 * xavier));
    assert!(mha
        .out_proj_weight
        .value()
        .iter()
        .all(|v| v.abs() <= 1.0 / (e as f64).sqrt()));
    assert!(mha.in_proj_bias.value().iter().all(|&v| v == 0.0));
    assert!(mha.out_proj_bias.value().iter().all(|&v| v == 0.0));
    let layer = TransformerEncoderLayer::<f64>::new(
        TransformerConfig::new(e, 4).dim_feedforward(32),
        &mut rng(),
    );
    let bound2 = 1.0 / 32f64.sqrt();
    assert!(layer.linear2.bias.value().iter().all(|v| v.abs() <= bound2));
    assert!(layer.linear2.bias.value().iter().any(|&v| v != 0.0));
    assert!(layer.norm1.weight.value().iter().all(|&v| v == 1.0));
    assert!(layer.norm2.bias.value().iter().all(|&v| v == 0.0));
    let c = TransformerConfig::new(e, 4);
    assert_eq!(
        (
            c.dim_feedforward,
            c.dropout,
            c.activation,
            c.norm_first,
            c.layer_norm_eps,
            c.causal
        ),
        (2048, 0.1, FeedForwardActivation::Relu, false, 1e-5, false)
    );
    // N(0, 0.02²): the sample deviation of 4096 draws is within 5% of 0.02.
    let pos = PositionalEmbedding::<f64>::new(64, 64, &mut rng());
    let w = pos.weight.value();
    let sd = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    assert!((sd - 0.02).abs() < 0.001, "standard deviation {sd}");
}

#[test]
#[should_panic(expected = "MultiheadAttention: num_heads 3 must divide embed_dim 8")]
fn heads_that_do_not_divide_the_width_panic() {
    MultiheadAttention::<f32>::new(8, 3, &mut rng());
}

#[test]
#[should_panic(expected = "TransformerEncoderLayer: nhead 3 must divide d_model 8")]
fn transformer_heads_that_do_not_divide_the_width_panic() {
    TransformerEncoderLayer::<f32>::new(TransformerConfig::new(8, 3), &mut rng());
}

#[test]
#[should_panic(expected = "MultiheadAttention: expected input [batch, time, 8], got [2, 5, 6]")]
fn a_wrong_input_width_panics_on_the_static_path() {
    let mut mha = MultiheadAttention::<f32>::new(8, 2, &mut rng());
    mha.forward_train(ArrayD::zeros(IxDyn(&[2, 5, 6])).view());
}

#[test]
#[should_panic(
    expected = "TransformerEncoderLayer: expected input [batch, time, 8], got [2, 5, 6]"
)]
fn a_wrong_input_width_panics_on_the_tape() {
    let layer = TransformerEncoderLayer::<f32>::new(TransformerConfig::new(8, 2), &mut rng());
    layer.forward(&Tape::new().constant(ArrayD::zeros(IxDyn(&[2, 5, 6]))));
}

#[test]
#[should_panic(
    expected = "MultiheadAttention: query [2, 5, 8], key [2, 4, 8] and value [2, 3, 8] must be"
)]
fn keys_and_values_of_different_lengths_panic() {
    let mha = MultiheadAttention::<f32>::new(8, 2, &mut rng());
    let tape = Tape::new();
    let v = |t: usize| tape.constant(ArrayD::zeros(IxDyn(&[2, t, 8])));
    mha.attend(&v(5), &v(4), &v(3), &AttentionMask::default());
}

#[test]
#[should_panic(
    expected = "MultiheadAttention: key_padding_mask must be [batch, keys] = [2, 4], got [2, 5]"
)]
fn a_mask_of_the_wrong_shape_panics() {
    let mha = MultiheadAttention::<f32>::new(8, 2, &mut rng());
    let tape = Tape::new();
    let (q, kv) = (
        tape.constant(ArrayD::zeros(IxDyn(&[2, 3, 8]))),
        tape.constant(ArrayD::zeros(IxDyn(&[2, 4, 8]))),
    );
    let mask = AttentionMask {
        key_padding_mask: Some(ArrayD::from_elem(IxDyn(&[2, 5]), false)),
        ..Default::default()
    };
    mha.attend(&q, &kv, &kv, &mask);
}

#[test]
#[should_panic(
    expected = "PositionalEmbedding: expected input [batch, time <= 4, 8], got [1, 5, 8]"
)]
fn a_sequence_longer_than_the_table_panics() {
    let pos = PositionalEmbedding::<f32>::new(4, 8, &mut rng());
    pos.predict(ArrayD::zeros(IxDyn(&[1, 5, 8])).view());
}

#[test]
fn output_shapes_name_the_layer() {
    let mha = MultiheadAttention::<f32>::new(8, 2, &mut rng());
    assert_eq!(mha.output_shape(&[5, 8]), Ok(vec![5, 8]));
    assert!(mha
        .output_shape(&[5, 6])
        .unwrap_err()
        .contains("MultiheadAttention"));
    let pos = PositionalEmbedding::<f32>::new(4, 8, &mut rng());
    assert!(pos
        .output_shape(&[5, 8])
        .unwrap_err()
        .contains("PositionalEmbedding"));
}

#[test]
fn a_query_that_sees_no_key_attends_to_nothing() {
    // PyTorch's `_safe_softmax` (F.scaled_dot_product_attention and
    // `need_weights=False`): zero probabilities, so the output is out_proj's
    // bias, and every gradient stays finite.
    let mha = MultiheadAttention::<f64>::new(4, 2, &mut rng());
    *mha.out_proj_bias.value_mut() = values(&[4], 1.0);
    let mask = AttentionMask {
        key_padding_mask: Some(
            ndarray::arr2(&[[true, true, true], [false, true, false]]).into_dyn(),
        ),
        ..Default::default()
    };
    let tape = Tape::new();
    let (q, kv) = (
        tape.var(values(&[2, 2, 4], 2.0)),
        tape.var(values(&[2, 3, 4], 3.0)),
    );
    let (y, w) = mha.attend_with_weights(&q, &kv, &kv, &mask);
    let bias = mha.out_proj_bias.value().clone();
    for row in y.value().slice(ndarray::s![0, .., ..]).rows() {
        assert_eq!(
            row,
            bias.view().into_dimensionality::<ndarray::Ix1>().unwrap()
        );
    }
    assert!(w
        .value()
        .slice(ndarray::s![0, .., ..])
        .iter()
        .all(|&p| p == 0.0));
    (&y.sum() + &w.sum()).backward();
    for g in [
        q.grad().unwrap(),
        kv.grad().unwrap(),
        mha.in_proj_weight.grad().clone().unwrap(),
    ] {
        assert!(g.iter().all(|v| v.is_finite()));
    }
    let report = gradcheck(
        |v| mha.attend(&v[0], &v[1], &v[1], &mask),
        &[values(&[2, 2, 4], 2.0), values(&[2, 3, 4], 3.0)],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "fully masked rows: {report}");
}

#[test]
fn the_layers_move_between_threads() {
    fn send<L: Send>() {}
    send::<MultiheadAttention<f32>>();
    send::<TransformerEncoderLayer<f32>>();
    send::<PositionalEmbedding<f32>>();
}
