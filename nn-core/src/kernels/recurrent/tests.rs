//! Unit tests of the driver and the cells.

use super::*;
use ndarray::Array;
use ndarray::{s, Array1, Array2, Array3};

fn filled(shape: &[usize], seed: usize) -> ndarray::ArrayD<f64> {
    let n: usize = shape.iter().product();
    Array::from_shape_fn(n, |i| {
        (((i + seed) * 7919 % 997) as f64 / 997.0 - 0.5) * 0.8
    })
    .into_shape_with_order(shape)
    .unwrap()
}

fn max_diff<D: ndarray::Dimension>(
    a: ndarray::ArrayView<'_, f64, D>,
    b: ndarray::ArrayView<'_, f64, D>,
) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// A sequence of length 1 from zero state is one step: the RNN is
/// `tanh(x W_ihᵀ + b_ih + b_hh)` (the formula, evaluated directly).
#[test]
fn one_step_rnn_is_the_formula() {
    let (b, i, h) = (2, 3, 4);
    let x = filled(&[b, 1, i], 1).into_dimensionality().unwrap();
    let w_ih = filled(&[h, i], 2).into_dimensionality().unwrap();
    let w_hh = filled(&[h, h], 3).into_dimensionality().unwrap();
    let b_ih = filled(&[h], 4).into_dimensionality().unwrap();
    let b_hh = filled(&[h], 5).into_dimensionality().unwrap();
    let run = Run {
        x: x.view(),
        w_ih: w_ih.view(),
        w_hh: w_hh.view(),
        b_ih: b_ih.view(),
        b_hh: b_hh.view(),
        h0: None,
        c0: None,
        reverse: false,
    };
    let rec = recurrent_forward(&RnnCell::Tanh, &run);
    let x2: Array2<f64> = x.index_axis(ndarray::Axis(1), 0).to_owned();
    let want = (x2.dot(&w_ih.t()) + &b_ih + &b_hh).mapv(f64::tanh);
    let got = rec.states.index_axis(ndarray::Axis(1), 0);
    assert!(max_diff(got.view(), want.view()) < 1e-15, "{got} vs {want}");
}

/// A non-contiguous input (a transposed array) takes the per-sequence
/// products and gives the same result as its contiguous copy.
#[test]
fn strided_input_matches_contiguous() {
    let (b, t, i, h) = (3, 4, 2, 2);
    let xt: Array3<f64> = filled(&[t, b, i], 6).into_dimensionality().unwrap();
    let x = xt.view().permuted_axes([1, 0, 2]);
    assert!(!x.is_standard_layout());
    let x_copy = x.as_standard_layout().into_owned();
    let w_ih: Array2<f64> = filled(&[4 * h, i], 7).into_dimensionality().unwrap();
    let w_hh: Array2<f64> = filled(&[4 * h, h], 8).into_dimensionality().unwrap();
    let bias: Array1<f64> = filled(&[4 * h], 9).into_dimensionality().unwrap();
    let run = |x| Run {
        x,
        w_ih: w_ih.view(),
        w_hh: w_hh.view(),
        b_ih: bias.view(),
        b_hh: bias.view(),
        h0: None,
        c0: None,
        reverse: true,
    };
    let (r1, r2) = (run(x), run(x_copy.view()));
    let (a, c) = (
        recurrent_forward(&LstmCell, &r1),
        recurrent_forward(&LstmCell, &r2),
    );
    assert_eq!(a.states, c.states);
    let dout = StateGrads {
        h: Some(a.states.slice(s![.., .., ..h])),
        ..StateGrads::default()
    };
    let g1 = recurrent_backward(
        &LstmCell,
        &r1,
        a.cache.view(),
        a.states.view(),
        dout,
        [true; 7],
    );
    let g2 = recurrent_backward(
        &LstmCell,
        &r2,
        c.cache.view(),
        c.states.view(),
        dout,
        [true; 7],
    );
    assert!(max_diff(g1.x.unwrap().view(), g2.x.unwrap().view()) < 1e-15);
    assert!(max_diff(g1.w_ih.unwrap().view(), g2.w_ih.unwrap().view()) < 1e-15);
}

#[test]
#[should_panic(expected = "GRU: c0 given, but only an LSTM has a cell state")]
fn c0_for_a_gru_is_refused() {
    let shapes = Shapes {
        x: &[2, 3, 4],
        w_ih: &[15, 4],
        w_hh: &[15, 5],
        b_ih: &[15],
        b_hh: &[15],
        h0: None,
        c0: Some(&[2, 5]),
    };
    if let Err(e) = check_shapes(&GruCell, &shapes) {
        panic!("{e}");
    }
}
