//! The recurrent layers (`SimpleRNN`, `LSTM`, `GRU`) on both paths.
//!
//! Where expected values come from:
//! - the static path's outputs and gradients (`forward_train`, `backward`):
//!   the tape path (`forward`, then backward of `(y * dy).sum()`), to 1e-12
//!   relative-or-absolute (`common::assert_close`);
//! - `predict`: the static path's output, exactly (the same kernels; a
//!   row alone gives its bits in the batch);
//! - the tape's gradients: central finite differences (`gradcheck`,
//!   PyTorch's default tolerances), for the inputs, the initial states and
//!   every parameter;
//! - parameter names, layouts and counts: PyTorch's `named_parameters` of
//!   `nn.LSTM(3, 4, num_layers=2, bidirectional=True)`, whose sizes follow
//!   from the layouts `[G·H, in]`, `[G·H, H]`, `[G·H]` given beside the test;
//! - the initialization bound: PyTorch's `U(-1/√H, 1/√H)`.

use crate::common;

use std::collections::BTreeMap;

use common::assert_close;
use ndarray::{ArrayD, IxDyn};
use nn_core::layers::{
    Cell, Gru, GruCell, Layer, Lstm, LstmCell, Recurrent, RecurrentConfig, RnnCell, Share,
    SimpleRnn,
};
use nn_core::{gradcheck, GradcheckOptions, Tape, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOL: f64 = 1e-12;

fn rng() -> StdRng {
    StdRng::seed_from_u64(20260312)
}

fn uniform(rng: &mut StdRng, shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(-1.0..1.0))
}

fn stacked(return_sequences: bool) -> RecurrentConfig {
    RecurrentConfig::new(3, 4)
        .num_layers(2)
        .bidirectional(true)
        .return_sequences(return_sequences)
}

/// Every parameter's gradient by name, then cleared.
fn take_grads<C: Cell>(layer: &Recurrent<f64, C>) -> BTreeMap<String, ArrayD<f64>> {
    let mut grads = BTreeMap::new();
    layer.visit_params(&mut |n, p| {
        let g = p.grad().clone();
        grads.insert(
            n.to_string(),
            g.unwrap_or_else(|| panic!("no gradient for {n}")),
        );
        p.clear_grad();
    });
    grads
}

/// What [`tape_run`] found.
struct TapeRun {
    y: ArrayD<f64>,
    dy: ArrayD<f64>,
    dx: ArrayD<f64>,
    grads: BTreeMap<String, ArrayD<f64>>,
}

/// The tape's output `y` and the gradients of `(y * dy).sum()` for `x` and
/// every parameter (cleared afterwards), `dy` made for `y`'s shape.
fn tape_run<C: Cell>(
    layer: &Recurrent<f64, C>,
    x: &ArrayD<f64>,
    dy: impl FnOnce(&[usize]) -> ArrayD<f64>,
) -> TapeRun {
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = layer.forward(&xv);
    let dy = dy(&y.shape());
    (&y * &tape.constant(dy.clone())).sum().backward();
    TapeRun {
        y: y.value(),
        dy,
        dx: xv.grad().expect("dx"),
        grads: take_grads(layer),
    }
}

fn paths_agree<C: Cell>(cell: C, config: RecurrentConfig) {
    let mut rng = rng();
    let mut layer: Recurrent<f64, C> = Recurrent::new(cell, config, &mut rng);
    let name = layer.type_name();
    let x = uniform(&mut rng, &[3, 5, 3]);
    let TapeRun { y, dy, dx, grads } = tape_run(&layer, &x, |s| uniform(&mut rng, s));
    let mut want = vec![3];
    want.extend(layer.output_shape(&[5, 3]).unwrap());
    assert_eq!(y.shape(), want.as_slice(), "{name}: output shape");

    let ys = layer.forward_train(x.view()).to_owned();
    assert_close(&format!("{name} static output"), &ys, &y, TOL);
    assert_close(
        &format!("{name} output()"),
        &layer.output().to_owned(),
        &y,
        TOL,
    );
    let dxs = layer.backward(x.view(), dy.view(), true).to_owned();
    assert_close(&format!("{name} static dx"), &dxs, &dx, TOL);
    for (n, g) in take_grads(&layer) {
        assert_close(&format!("{name} static d/d{n}"), &g, &grads[&n], TOL);
    }
    // Without the input's gradient: an empty view, the same parameter gradients.
    layer.forward_train(x.view());
    assert!(layer.backward(x.view(), dy.view(), false).is_empty());
    for (n, g) in take_grads(&layer) {
        assert_close(
            &format!("{name} static d/d{n} (no dx)"),
            &g,
            &grads[&n],
            TOL,
        );
    }
    assert_eq!(layer.predict(x.view()), ys, "{name}: predict");
    // Its buffers, kept between calls, follow the batch (a row alone gives
    // its bits in the batch) and are then sized for the batch again.
    let first = ndarray::Slice::from(..1);
    assert_eq!(
        layer.predict(x.slice_axis(ndarray::Axis(0), first)),
        ys.slice_axis(ndarray::Axis(0), first),
        "{name}: predict one row"
    );
    assert_eq!(layer.predict(x.view()), ys, "{name}: predict again");
}

#[test]
fn paths_agree_for_every_cell_stacked_and_bidirectional() {
    for return_sequences in [true, false] {
        let config = stacked(return_sequences);
        paths_agree(RnnCell::Tanh, config.clone());
        paths_agree(RnnCell::Relu, config.clone());
        paths_agree(LstmCell, config.clone());
        paths_agree(GruCell, config);
    }
}

/// One layer, one direction: with `return_sequences` off the static path
/// keeps no per-step output at all (the final state is the output).
#[test]
fn paths_agree_for_every_cell_as_a_single_layer() {
    for return_sequences in [true, false] {
        let config = RecurrentConfig::new(3, 4).return_sequences(return_sequences);
        paths_agree(RnnCell::Tanh, config.clone());
        paths_agree(LstmCell, config.clone());
        paths_agree(GruCell, config);
    }
}

/// Without `return_sequences` the output is the top layer's final hidden
/// states: the forward direction's last step and the reverse direction's
/// first step of the sequence output (Keras's last output, PyTorch's `h_n`).
/// A batch large enough that the kernel splits it between threads (each part
/// running the recurrence on its rows) gives, row by row, what that row alone
/// gives: the output and the input's gradient exactly, the parameters'
/// gradients (sums over the rows) to rounding.
fn batch_parts_agree_with_single_rows<C: Cell>(cell: C) {
    let mut rng = rng();
    let config = RecurrentConfig::new(5, 64).bidirectional(true);
    let layer: Recurrent<f64, C> = Recurrent::new(cell, config, &mut rng);
    let name = layer.type_name();
    // b·t·gates·H·H / 64 is past the kernel's threshold (2^16) for every cell.
    let (b, t) = (96, 12);
    let x = uniform(&mut rng, &[b, t, 5]);
    let whole = tape_run(&layer, &x, |s| uniform(&mut rng, s));
    let mut summed: BTreeMap<String, ArrayD<f64>> = BTreeMap::new();
    for i in 0..b {
        let row = x.slice(ndarray::s![i..i + 1, .., ..]).to_owned().into_dyn();
        let dy_row = whole
            .dy
            .slice(ndarray::s![i..i + 1, .., ..])
            .to_owned()
            .into_dyn();
        let one = tape_run(&layer, &row, |_| dy_row);
        let y_row = whole
            .y
            .slice(ndarray::s![i..i + 1, .., ..])
            .to_owned()
            .into_dyn();
        assert_eq!(one.y, y_row, "{name}: row {i} output");
        let dx_row = whole
            .dx
            .slice(ndarray::s![i..i + 1, .., ..])
            .to_owned()
            .into_dyn();
        assert_close(&format!("{name}: row {i} dx"), &one.dx, &dx_row, TOL);
        for (n, g) in one.grads {
            *summed
                .entry(n)
                .or_insert_with(|| ArrayD::zeros(g.raw_dim())) += &g;
        }
    }
    for (n, g) in &whole.grads {
        assert_close(
            &format!("{name}: d/d{n} over the batch"),
            &summed[n],
            g,
            1e-10,
        );
    }
}

#[test]
fn a_batch_split_between_threads_matches_its_rows_one_by_one() {
    batch_parts_agree_with_single_rows(LstmCell);
    batch_parts_agree_with_single_rows(GruCell);
    batch_parts_agree_with_single_rows(RnnCell::Relu);
}

#[test]
fn the_last_output_is_the_final_hidden_state_of_each_direction() {
    let layer = |rs| Gru::<f64>::new(GruCell, stacked(rs), &mut rng());
    let (seq, last) = (layer(true), layer(false));
    let x = uniform(&mut rng(), &[2, 5, 3]);
    let tape = Tape::new();
    let xv = tape.constant(x);
    let (all, y) = (seq.forward(&xv).value(), last.forward(&xv).value());
    assert_eq!(y.shape(), &[2, 8]);
    for b in 0..2 {
        for j in 0..4 {
            assert_eq!(y[[b, j]], all[[b, 4, j]], "forward direction at t = T-1");
            assert_eq!(
                y[[b, 4 + j]],
                all[[b, 0, 4 + j]],
                "reverse direction at t = 0"
            );
        }
    }
    let out = seq.forward_with_state(&xv, None, None).h_n.value();
    assert_eq!(
        out.shape(),
        &[4, 2, 4],
        "[layers * directions, batch, hidden]"
    );
    for b in 0..2 {
        for j in 0..4 {
            assert_eq!(out[[2, b, j]], y[[b, j]]);
            assert_eq!(out[[3, b, j]], y[[b, 4 + j]]);
        }
    }
}

/// Every output of `forward_with_state` (the sequence, `h_n`, `c_n`) side by
/// side, flattened: what `gradcheck` differentiates.
fn flat_outputs(out: nn_core::layers::RecurrentOutput<f64>) -> Var<f64> {
    let flat = |v: &Var<f64>| v.reshape(&[v.shape().iter().product()]);
    let mut parts = vec![flat(&out.output), flat(&out.h_n)];
    parts.extend(out.c_n.as_ref().map(flat));
    Var::concat(&parts.iter().collect::<Vec<_>>(), 0)
}

/// Finite differences for the input and the initial states of a stacked
/// bidirectional layer.
fn gradcheck_layer<C: Cell>(cell: C) {
    let mut rng = rng();
    let config = RecurrentConfig::new(2, 3).num_layers(2).bidirectional(true);
    let layer = Recurrent::<f64, C>::new(cell, config, &mut rng);
    let mut inputs = vec![uniform(&mut rng, &[2, 3, 2]), uniform(&mut rng, &[4, 2, 3])];
    if C::CELL_STATE {
        inputs.push(uniform(&mut rng, &[4, 2, 3]));
    }
    let report = gradcheck(
        |v| flat_outputs(layer.forward_with_state(&v[0], Some(&v[1]), v.get(2))),
        &inputs,
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "{}: {report}", layer.type_name());
}

/// Finite differences for every input of one run (`Var::recurrent`): the
/// sequence, the four parameters and the initial states, in both directions.
fn gradcheck_run<C: Cell>(cell: C) {
    let mut rng = rng();
    let (b, t, i, h, g) = (2, 3, 2, 3, C::GATES);
    for reverse in [false, true] {
        let mut inputs = vec![
            uniform(&mut rng, &[b, t, i]),
            uniform(&mut rng, &[g * h, i]),
            uniform(&mut rng, &[g * h, h]),
            uniform(&mut rng, &[g * h]),
            uniform(&mut rng, &[g * h]),
            uniform(&mut rng, &[1, b, h]),
        ];
        if C::CELL_STATE {
            inputs.push(uniform(&mut rng, &[1, b, h]));
        }
        let report = gradcheck(
            |v| {
                let w = [&v[1], &v[2], &v[3], &v[4]];
                flat_outputs(v[0].recurrent(&cell, w, Some(&v[5]), v.get(6), reverse))
            },
            &inputs,
            &GradcheckOptions::default(),
        );
        assert!(
            report.passed,
            "{} (reverse {reverse}): {report}",
            cell.name()
        );
    }
}

#[test]
fn gradients_match_finite_differences() {
    for cell in [RnnCell::Tanh, RnnCell::Relu] {
        gradcheck_layer(cell);
        gradcheck_run(cell);
    }
    gradcheck_layer(LstmCell);
    gradcheck_run(LstmCell);
    gradcheck_layer(GruCell);
    gradcheck_run(GruCell);
}

/// Names, layouts and counts of PyTorch's `nn.LSTM(3, 4, num_layers=2,
/// bidirectional=True).named_parameters()`; PyTorch's initialization bound.
#[test]
fn parameters_are_named_and_shaped_as_in_pytorch() {
    let lstm: Lstm<f64> = Lstm::new(LstmCell, stacked(true), &mut rng());
    let mut seen = Vec::new();
    lstm.visit_params(&mut |n, p| {
        let bound = 1.0 / 2.0; // 1 / √H, H = 4
        assert!(
            p.value().iter().all(|v| v.abs() <= bound),
            "{n} within ±1/√H"
        );
        seen.push((n.to_string(), p.shape()));
    });
    let mut want = Vec::new();
    for l in 0..2 {
        for suffix in ["", "_reverse"] {
            // Layer 1 reads both directions of layer 0: 2 · 4 features.
            let input = if l == 0 { 3 } else { 8 };
            want.push((format!("weight_ih_l{l}{suffix}"), vec![16, input]));
            want.push((format!("weight_hh_l{l}{suffix}"), vec![16, 4]));
            want.push((format!("bias_ih_l{l}{suffix}"), vec![16]));
            want.push((format!("bias_hh_l{l}{suffix}"), vec![16]));
        }
    }
    assert_eq!(seen, want);
    // 2 · (16·3 + 16·4 + 2·16) + 2 · (16·8 + 16·4 + 2·16)
    assert_eq!(lstm.param_count(), 2 * 144 + 2 * 224);
    assert_eq!(lstm.type_name(), "LSTM");
    let rnn: SimpleRnn<f32> = SimpleRnn::new(RnnCell::Relu, RecurrentConfig::new(3, 4), &mut rng());
    let gru: Gru<f32> = Gru::new(GruCell, RecurrentConfig::new(3, 4), &mut rng());
    assert_eq!((rnn.type_name(), gru.type_name()), ("SimpleRNN", "GRU"));
    assert_eq!(rnn.param_count(), 4 * 3 + 4 * 4 + 2 * 4);
    assert_eq!(gru.param_count(), 12 * 3 + 12 * 4 + 2 * 12);
}

#[test]
fn output_shapes_follow_the_config_and_explain_a_mismatch() {
    let layer = |rs| Gru::<f32>::new(GruCell, stacked(rs), &mut rng());
    assert_eq!(layer(true).output_shape(&[7, 3]), Ok(vec![7, 8]));
    assert_eq!(layer(false).output_shape(&[7, 3]), Ok(vec![8]));
    let err = layer(true).output_shape(&[7, 2]).unwrap_err();
    assert_eq!(
        err,
        "GRU expects input shape [steps, 3] (steps at least 1), got [7, 2]"
    );
    assert!(layer(true).output_shape(&[3]).is_err());
    assert!(layer(true).output_shape(&[0, 3]).is_err());
}

/// A frozen parameter gets no gradient on either path; the others get the
/// same gradients as when nothing is frozen.
#[test]
fn frozen_parameters_get_no_gradient() {
    let mut rng = rng();
    let mut layer: Lstm<f64> = Lstm::new(LstmCell, stacked(true), &mut rng);
    let x = uniform(&mut rng, &[2, 4, 3]);
    let TapeRun { dy, dx, grads, .. } = tape_run(&layer, &x, |s| uniform(&mut rng, s));
    let mut frozen = None;
    layer.visit_params(&mut |n, p| {
        if n == "weight_hh_l1_reverse" {
            p.set_trainable(false);
            frozen = Some(p.clone());
        }
    });
    let frozen = frozen.expect("weight_hh_l1_reverse");
    layer.forward_train(x.view());
    let dxs = layer.backward(x.view(), dy.view(), true).to_owned();
    assert_close("dx with a frozen weight", &dxs, &dx, TOL);
    layer.visit_params(&mut |n, p| match p.grad().as_ref() {
        None => assert!(p.same_as(&frozen), "{n} has no gradient"),
        Some(g) => assert_close(&format!("d/d{n}"), g, &grads[n], TOL),
    });
    assert!(frozen.grad().is_none());
}

/// Two instances sharing parameters, each with its own buffers: their
/// gradients add up to the tape's for both inputs.
#[test]
fn shared_layers_add_their_gradients() {
    let mut rng = rng();
    let mut a: SimpleRnn<f64> = SimpleRnn::new(RnnCell::Tanh, stacked(false), &mut rng);
    let mut b = a.share();
    let (x1, x2) = (uniform(&mut rng, &[2, 3, 3]), uniform(&mut rng, &[4, 5, 3]));
    let (dy1, dy2) = (uniform(&mut rng, &[2, 8]), uniform(&mut rng, &[4, 8]));
    let g1 = tape_run(&a, &x1, |_| dy1.clone()).grads;
    let g2 = tape_run(&a, &x2, |_| dy2.clone()).grads;
    a.forward_train(x1.view());
    b.forward_train(x2.view());
    a.backward(x1.view(), dy1.view(), false);
    b.backward(x2.view(), dy2.view(), false);
    for (n, g) in take_grads(&b) {
        assert_close(&format!("shared d/d{n}"), &g, &(&g1[&n] + &g2[&n]), TOL);
    }
}

#[test]
#[should_panic(
    expected = "LSTM: expected input of shape [batch, steps, 3] (steps at least 1), got [2, 5, 2]"
)]
fn static_input_of_the_wrong_size_panics() {
    let mut layer: Lstm<f32> = Lstm::new(LstmCell, RecurrentConfig::new(3, 4), &mut rng());
    layer.forward_train(ArrayD::zeros(IxDyn(&[2, 5, 2])).view());
}

#[test]
#[should_panic(
    expected = "SimpleRNN: expected input [batch, steps, 3] (steps at least 1), got [5, 3]"
)]
fn tape_input_without_a_batch_axis_panics() {
    let layer: SimpleRnn<f32> =
        SimpleRnn::new(RnnCell::Tanh, RecurrentConfig::new(3, 4), &mut rng());
    layer.forward(&Tape::new().constant(ArrayD::zeros(IxDyn(&[5, 3]))));
}

#[test]
#[should_panic(
    expected = "GRU: h0 must be [num_layers * directions, batch, hidden] = [4, 2, 4], got [1, 2, 4]"
)]
fn initial_state_of_the_wrong_shape_panics() {
    let layer: Gru<f32> = Gru::new(GruCell, stacked(true), &mut rng());
    let tape = Tape::new();
    let x = tape.constant(ArrayD::zeros(IxDyn(&[2, 5, 3])));
    let h0 = tape.constant(ArrayD::zeros(IxDyn(&[1, 2, 4])));
    layer.forward_with_state(&x, Some(&h0), None);
}

#[test]
#[should_panic(expected = "GRU: c0 given, but only an LSTM has a cell state")]
fn a_cell_state_for_a_gru_panics() {
    let layer: Gru<f32> = Gru::new(GruCell, RecurrentConfig::new(3, 4), &mut rng());
    let tape = Tape::new();
    let x = tape.constant(ArrayD::zeros(IxDyn(&[2, 5, 3])));
    let c0 = tape.constant(ArrayD::zeros(IxDyn(&[1, 2, 4])));
    layer.forward_with_state(&x, None, Some(&c0));
}

#[test]
#[should_panic(
    expected = "LSTM: weight_ih must be [16, 3] for input [2, 5, 3] and hidden size 4, got [16, 2]"
)]
fn a_run_with_misshapen_weights_panics() {
    let tape = Tape::<f32>::new();
    let zeros = |s: &[usize]| tape.var(ArrayD::zeros(IxDyn(s)));
    let (x, w_ih, w_hh, b) = (
        zeros(&[2, 5, 3]),
        zeros(&[16, 2]),
        zeros(&[16, 4]),
        zeros(&[16]),
    );
    x.recurrent(&LstmCell, [&w_ih, &w_hh, &b, &b], None, None, false);
}

#[test]
#[should_panic(
    expected = "SimpleRNN: backward needs the output gradient of the last forward_train, shape [2, 8], got [2, 5, 8]"
)]
fn an_output_gradient_of_the_wrong_shape_panics() {
    let mut layer: SimpleRnn<f32> = SimpleRnn::new(RnnCell::Tanh, stacked(false), &mut rng());
    let x = ArrayD::zeros(IxDyn(&[2, 5, 3]));
    layer.forward_train(x.view());
    layer.backward(x.view(), ArrayD::zeros(IxDyn(&[2, 5, 8])).view(), true);
}

#[test]
#[should_panic(expected = "LSTM: input_size, hidden_size and num_layers must be positive")]
fn a_layer_without_units_panics() {
    Lstm::<f32>::new(LstmCell, RecurrentConfig::new(3, 0), &mut rng());
}

/// PyTorch's `dropout` between stacked layers: off in eval (the paths agree
/// and `predict` is the eval output), on in training, and the static
/// backward through the masks is the derivative of the static forward with
/// those masks (central differences of `Σ y·dy` in the input, the masks
/// replayed by reseeding before every forward).
#[test]
fn dropout_between_layers_is_trained_through_and_off_in_eval() {
    dropout_between_layers(true);
    dropout_between_layers(false);
}

fn dropout_between_layers(return_sequences: bool) {
    let mut rng = rng();
    let config = RecurrentConfig::new(3, 4)
        .num_layers(3)
        .dropout(0.5)
        .return_sequences(return_sequences);
    let mut layer: Lstm<f64> = Recurrent::new(LstmCell, config, &mut rng);
    let x = uniform(&mut rng, &[2, 5, 3]);

    layer.set_training(false);
    let eval = tape_run(&layer, &x, |s| uniform(&mut rng, s));
    let ys = layer.forward_train(x.view()).to_owned();
    assert_close("eval: static vs tape", &ys, &eval.y, TOL);
    assert_eq!(layer.predict(x.view()), ys, "eval: predict");

    layer.set_training(true);
    layer.reseed(9);
    let y = layer.forward_train(x.view()).to_owned();
    assert!(
        y.iter()
            .zip(eval.y.iter())
            .any(|(a, b)| (a - b).abs() > 1e-6),
        "training drops between layers"
    );
    let dy = eval.dy.clone();
    let dx = layer.backward(x.view(), dy.view(), true).to_owned();
    let mut loss = |x: &ArrayD<f64>| {
        layer.reseed(9);
        (&layer.forward_train(x.view()) * &dy).sum()
    };
    let h = 1e-6;
    for i in 0..x.len() {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus.as_slice_mut().unwrap()[i] += h;
        minus.as_slice_mut().unwrap()[i] -= h;
        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h);
        let analytic = dx.as_slice().unwrap()[i];
        assert!(
            (numeric - analytic).abs() <= 1e-6 * analytic.abs().max(1.0),
            "dx[{i}]: backward {analytic:e}, central differences {numeric:e}"
        );
    }
}

#[test]
#[should_panic(expected = "LSTM: drop probability must be in [0, 1), got 1")]
fn a_dropout_of_one_is_refused() {
    Lstm::<f64>::new(
        LstmCell,
        RecurrentConfig::new(3, 4).dropout(1.0),
        &mut rng(),
    );
}
