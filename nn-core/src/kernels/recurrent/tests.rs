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

/// Large enough layers sum the parameter gradients per step and block of
/// 32 rows (the last block shorter); small ones in one product after the
/// recurrence. A batch of 70 (blocks of 32, 32 and 6) must give the sum of
/// its sequences' gradients, each run alone (the other path), for every
/// cell, both directions, the input projected inside the step's product or
/// before the loop, given initial states and every gradient asked for.
#[test]
fn per_step_block_sums_match_the_sequences_summed() {
    fn check<C: Cell>(cell: C, (i, h): (usize, usize), joined: bool, reverse: bool) {
        let (b, t) = (70, 3);
        let dims = Dims {
            batch: b,
            steps: t,
            input: i,
            hidden: h,
        };
        let name = cell.name();
        assert_eq!(dims.grad_block::<C>(), Some(32), "{name} {i} {h}");
        assert_eq!(dims.joins_input::<C>(), joined, "{name} {i} {h}");
        let one_row = Dims { batch: 1, ..dims };
        assert_eq!(one_row.grad_block::<C>(), None);
        let g = C::GATES * h;
        let x: Array3<f64> = filled(&[b, t, i], 11).into_dimensionality().unwrap();
        let w_ih: Array2<f64> = filled(&[g, i], 12).into_dimensionality().unwrap();
        let w_hh: Array2<f64> = filled(&[g, h], 13).into_dimensionality().unwrap() * 0.1;
        let b_ih: Array1<f64> = filled(&[g], 14).into_dimensionality().unwrap();
        let b_hh: Array1<f64> = filled(&[g], 15).into_dimensionality().unwrap();
        let h0: Array2<f64> = filled(&[b, h], 16).into_dimensionality().unwrap();
        let c0: Array2<f64> = filled(&[b, h], 17).into_dimensionality().unwrap();
        let dh: Array3<f64> = filled(&[b, t, h], 18).into_dimensionality().unwrap();
        let rows = |r: std::ops::Range<usize>, need: [bool; 7]| {
            let run = Run {
                x: x.slice(s![r.clone(), .., ..]),
                w_ih: w_ih.view(),
                w_hh: w_hh.view(),
                b_ih: b_ih.view(),
                b_hh: b_hh.view(),
                h0: Some(h0.slice(s![r.clone(), ..])),
                c0: C::CELL_STATE.then(|| c0.slice(s![r.clone(), ..])),
                reverse,
            };
            let rec = recurrent_forward(&cell, &run);
            let dout = StateGrads {
                h: Some(dh.slice(s![r, .., ..])),
                ..StateGrads::default()
            };
            recurrent_backward(&cell, &run, rec.cache.view(), rec.states.view(), dout, need)
        };
        let whole = rows(0..b, [true; 7]);
        // Without the input's gradient every step reuses one step's gate
        // gradients; with `weight_hh` frozen its sums are skipped: the
        // other gradients are the same bits either way.
        let no_dx = rows(0..b, [false, true, true, true, true, true, true]);
        let frozen = rows(0..b, [true, true, false, true, true, true, true]);
        assert!(no_dx.x.is_none() && frozen.w_hh.is_none());
        for other in [&no_dx, &frozen] {
            assert_eq!(other.w_ih, whole.w_ih, "{name}");
            assert_eq!(other.b_ih, whole.b_ih, "{name}");
            assert_eq!(other.b_hh, whole.b_hh, "{name}");
            assert_eq!(other.h0, whole.h0, "{name}");
        }
        assert_eq!(no_dx.w_hh, whole.w_hh, "{name}");
        let mut dw_ih = Array2::zeros((g, i));
        let mut dw_hh = Array2::zeros((g, h));
        let mut db_ih = Array1::zeros(g);
        let mut db_hh = Array1::zeros(g);
        for r in 0..b {
            let one = rows(r..r + 1, [true; 7]);
            dw_ih += &one.w_ih.unwrap();
            dw_hh += &one.w_hh.unwrap();
            db_ih += &one.b_ih.unwrap();
            db_hh += &one.b_hh.unwrap();
            // A row's own gradients take the same sums alone or batched
            // (each step's product row by row): the same bits.
            let row =
                |a: &Option<Array2<f64>>| a.as_ref().map(|a| a.slice(s![r..r + 1, ..]).to_owned());
            assert_eq!(
                whole.x.as_ref().unwrap().slice(s![r..r + 1, .., ..]),
                one.x.unwrap(),
                "{name} dx row {r}"
            );
            assert_eq!(row(&whole.h0), one.h0, "{name} dh0 row {r}");
            assert_eq!(row(&whole.c0), one.c0, "{name} dc0 row {r}");
        }
        for (what, got, want) in [
            (
                "weight_ih",
                whole.w_ih.unwrap().into_dyn(),
                dw_ih.into_dyn(),
            ),
            (
                "weight_hh",
                whole.w_hh.unwrap().into_dyn(),
                dw_hh.into_dyn(),
            ),
            ("bias_ih", whole.b_ih.unwrap().into_dyn(), db_ih.into_dyn()),
            ("bias_hh", whole.b_hh.unwrap().into_dyn(), db_hh.into_dyn()),
        ] {
            // The same terms summed in another order: f64 rounding of 70
            // rows of values below 2 (1.3e-15 seen).
            let diff = max_diff(got.view(), want.view());
            assert!(
                diff < 1e-12,
                "{name} reverse {reverse}: {what} off by {diff}"
            );
        }
    }
    for reverse in [false, true] {
        check(RnnCell::Tanh, (250, 160), true, reverse);
        check(LstmCell, (28, 128), true, reverse);
        check(LstmCell, (250, 160), false, reverse);
        check(GruCell, (28, 128), false, reverse);
    }
}

/// Without an initial state the first step's products leave out the zero
/// `h_{-1}`, and backward the initial state's unread gradient: the same bits
/// as a run given zeros, for every cell, both directions, the input joined
/// or projected first, the parameters' sums per step (70 rows) or after the
/// loop (3), and for a single step; and a row alone gives its bits in the
/// batch. `RNN(1024, 32)` joins a long input to a narrow output: by shape
/// alone its first product would take the dot kernel (3 rows) or split its
/// inner dimension (35 rows a part).
#[test]
fn an_absent_initial_state_gives_the_bits_of_zeros() {
    fn check<C: Cell>(cell: C, (i, h): (usize, usize), reverse: bool) {
        for (b, t) in [(70, 3), (3, 4), (70, 1)] {
            let p = Operands::new((b, t), i, h, C::GATES, 21);
            let dh: Array3<f64> = filled(&[b, t, h], 26).into_dimensionality().unwrap();
            let zeros = Array2::zeros((b, h));
            let go = |h0| {
                let run = p.run(h0, None, reverse);
                let rec = recurrent_forward(&cell, &run);
                let dout = StateGrads {
                    h: Some(dh.view()),
                    ..StateGrads::default()
                };
                let need = [true, true, true, true, true, false, false];
                let (cache, states) = (rec.cache.view(), rec.states.view());
                let g = recurrent_backward(&cell, &run, cache, states, dout, need);
                (rec.states, g)
            };
            let (absent, given) = (go(None), go(Some(zeros.view())));
            let what = format!(
                "{} {i} {h} reverse {reverse} batch {b} steps {t}",
                cell.name()
            );
            assert_eq!(absent.0, given.0, "{what}: states");
            // A row alone (another kernel's shape for the first step's
            // product, were it chosen by shape) gives its bits in the batch.
            for r in [0, b - 1] {
                let run = Run {
                    x: p.x.slice(s![r..r + 1, .., ..]),
                    ..p.run(None, None, reverse)
                };
                let alone = recurrent_forward(&cell, &run).states;
                let batched = absent.0.slice(s![r..r + 1, .., ..]);
                assert_eq!(batched, alone, "{what}: row {r}");
            }
            let (a, z) = (absent.1, given.1);
            assert_eq!(a.x, z.x, "{what}: x");
            assert_eq!(a.w_ih, z.w_ih, "{what}: weight_ih");
            assert_eq!(a.w_hh, z.w_hh, "{what}: weight_hh");
            assert_eq!(a.b_ih, z.b_ih, "{what}: bias_ih");
            assert_eq!(a.b_hh, z.b_hh, "{what}: bias_hh");
        }
    }
    for reverse in [false, true] {
        check(RnnCell::Tanh, (1024, 32), reverse);
        check(RnnCell::Relu, (250, 160), reverse);
        check(LstmCell, (28, 128), reverse);
        check(LstmCell, (250, 160), reverse);
        check(GruCell, (28, 128), reverse);
    }
}

/// An LSTM run of `p` without initial states with inference's cache, its
/// states checked against the whole cache's: the inference cache's slots.
fn inference_cache_slots(p: &Operands, reverse: bool) -> usize {
    let run = p.run(None, None, reverse);
    let inference = recurrent_forward_for(&LstmCell, &run, CacheFor::Inference);
    let whole = recurrent_forward(&LstmCell, &run);
    assert_eq!(inference.states, whole.states, "reverse {reverse}");
    inference.cache.dim().0
}

/// Inference's cache of a single step, reused by every step, gives the
/// states of the whole cache, for a batch split between threads and both
/// directions (`LSTM(28, 128)` joins its input); a run that projects its
/// input first (`LSTM(250, 160)`) keeps a slot per step, which it fills
/// before the loop.
#[test]
fn a_single_step_cache_gives_the_states_of_the_whole() {
    let joined = Operands::new((70, 5), 28, 128, 4, 31);
    for reverse in [false, true] {
        assert_eq!(inference_cache_slots(&joined, reverse), 1);
    }
    let projected = Operands::new((2, 3), 250, 160, 4, 35);
    assert_eq!(inference_cache_slots(&projected, false), 3);
}

#[test]
#[should_panic(
    expected = "LSTM: the cache buffer must be a standard-layout array of shape [3, 2, 1051]"
)]
fn a_single_step_cache_for_a_projected_input_is_refused() {
    let p = Operands::new((2, 3), 250, 160, 4, 0);
    let run = p.run(None, None, false);
    let d = run.dims(&LstmCell);
    let (mut states, mut hp, mut state) = (
        Array3::zeros((2, 3, 320)),
        Array2::zeros((2, 640)),
        Array2::zeros((2, 320)),
    );
    let mut weights = Array2::zeros(d.joined_weights::<LstmCell>());
    let scratch = ForwardScratch {
        hidden: hp.view_mut(),
        state: state.view_mut(),
        weights: weights.view_mut(),
    };
    let mut one_slot = Array3::zeros((1, 2, d.cache_row_width::<LstmCell>()));
    recurrent_forward_into(
        &LstmCell,
        &run,
        one_slot.view_mut(),
        states.view_mut(),
        scratch,
    );
}

/// The arrays of a run checked against a formula or another run: `x: [b,
/// t, i]`, the weights of `gates` blocks per hidden unit scaled by 0.1
/// (away from the activations' flat tails), the biases; values from `seed`
/// on.
struct Operands {
    x: Array3<f64>,
    w_ih: Array2<f64>,
    w_hh: Array2<f64>,
    b_ih: Array1<f64>,
    b_hh: Array1<f64>,
}

impl Operands {
    fn new((b, t): (usize, usize), i: usize, h: usize, gates: usize, seed: usize) -> Self {
        let g = gates * h;
        let array = |shape: &[usize], k: usize| filled(shape, seed + k);
        Operands {
            x: array(&[b, t, i], 0).into_dimensionality().unwrap(),
            w_ih: array(&[g, i], 1).into_dimensionality().unwrap() * 0.1,
            w_hh: array(&[g, h], 2).into_dimensionality().unwrap() * 0.1,
            b_ih: array(&[g], 3).into_dimensionality().unwrap(),
            b_hh: array(&[g], 4).into_dimensionality().unwrap(),
        }
    }

    fn run<'a>(
        &'a self,
        h0: Option<ndarray::ArrayView2<'a, f64>>,
        c0: Option<ndarray::ArrayView2<'a, f64>>,
        reverse: bool,
    ) -> Run<'a, f64> {
        Run {
            x: self.x.view(),
            w_ih: self.w_ih.view(),
            w_hh: self.w_hh.view(),
            b_ih: self.b_ih.view(),
            b_hh: self.b_hh.view(),
            h0,
            c0,
            reverse,
        }
    }

    /// PyTorch's pre-activations at step `t` after the hidden state `hp`:
    /// `x_t W_ihᵀ + b_ih + hp W_hhᵀ + b_hh`, evaluated directly.
    fn pre(&self, t: usize, hp: &Array2<f64>) -> Array2<f64> {
        let x = self.x.index_axis(ndarray::Axis(1), t);
        x.dot(&self.w_ih.t()) + &self.b_ih + hp.dot(&self.w_hh.t()) + &self.b_hh
    }
}

/// The sizes of a two-step run.
fn two_steps(batch: usize, input: usize, hidden: usize) -> Dims {
    Dims {
        batch,
        steps: 2,
        input,
        hidden,
    }
}

/// An LSTM too large to join its input projection into the step's product,
/// run backwards from given initial states: the states against PyTorch's
/// definition evaluated directly, `[i, f, g, o] = x_t W_ihᵀ + b_ih +
/// h W_hhᵀ + b_hh`, `c' = σ(f) c + σ(i) tanh(g)`, `h' = σ(o) tanh(c')`,
/// from `t = 1` down to 0.
#[test]
fn a_large_lstm_run_backwards_gives_the_formula() {
    let (b, i, h) = (2, 250, 160);
    assert!(!two_steps(b, i, h).joins_input::<LstmCell>());
    let p = Operands::new((b, 2), i, h, 4, 31);
    let h0: Array2<f64> = filled(&[b, h], 36).into_dimensionality().unwrap();
    let c0: Array2<f64> = filled(&[b, h], 37).into_dimensionality().unwrap();
    let run = p.run(Some(h0.view()), Some(c0.view()), true);
    let rec = recurrent_forward(&LstmCell, &run);
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let step = |t: usize, hp: &Array2<f64>, cp: &Array2<f64>| {
        let z = p.pre(t, hp);
        let gate = |k: usize| z.slice(s![.., k * h..(k + 1) * h]).to_owned();
        let c = gate(1).mapv(sigmoid) * cp + gate(0).mapv(sigmoid) * gate(2).mapv(f64::tanh);
        let hn = gate(3).mapv(sigmoid) * c.mapv(f64::tanh);
        (hn, c)
    };
    let (h1, c1) = step(1, &h0, &c0);
    let (h2, c2) = step(0, &h1, &c1);
    for (t, hw, cw) in [(1, h1, c1), (0, h2, c2)] {
        let got = rec.states.index_axis(ndarray::Axis(1), t);
        // f64 evaluation of the same terms in another order.
        assert!(
            max_diff(got.slice(s![.., ..h]), hw.view()) < 1e-13,
            "h at {t}"
        );
        assert!(
            max_diff(got.slice(s![.., h..]), cw.view()) < 1e-13,
            "c at {t}"
        );
    }
}

/// A layer too large to join its input projection into the step's product
/// projects every input first: two steps of an RNN against the formula,
/// `h_1 = tanh(x_0 W_ihᵀ + b_ih + b_hh)`, `h_2 = tanh(x_1 W_ihᵀ + b_ih +
/// h_1 W_hhᵀ + b_hh)` (evaluated directly).
#[test]
fn a_large_layer_projects_its_input_first_and_gives_the_formula() {
    let (b, i, h) = (3, 500, 200);
    assert!(!two_steps(b, i, h).joins_input::<RnnCell>());
    let p = Operands::new((b, 2), i, h, 1, 21);
    let run = p.run(None, None, false);
    let rec = recurrent_forward(&RnnCell::Tanh, &run);
    let h1 = p.pre(0, &Array2::zeros((b, h))).mapv(f64::tanh);
    let h2 = p.pre(1, &h1).mapv(f64::tanh);
    for (t, want) in [(0, h1), (1, h2)] {
        let got = rec.states.index_axis(ndarray::Axis(1), t);
        assert!(max_diff(got.view(), want.view()) < 1e-13, "step {t}");
    }
}

/// A row alone gives its bits in the batch where `gemm`, choosing by shape,
/// would have summed it otherwise: the input projection of `GRU(2048, 16)`
/// (one row: the dot kernel) and the input gradient of `LSTM(60, 128)` at a
/// batch of 40 (the batch: a split inner dimension).
#[test]
fn a_row_alone_gives_its_bits_in_the_batch_whatever_the_shapes() {
    fn check<C: Cell>(cell: C, p: &Operands, h: usize) {
        let (b, t, _) = p.x.dim();
        let dh: Array3<f64> = filled(&[b, t, h], 43).into_dimensionality().unwrap();
        let go = |rows: std::ops::Range<usize>| {
            let run = Run {
                x: p.x.slice(s![rows.clone(), .., ..]),
                ..p.run(None, None, false)
            };
            let rec = recurrent_forward(&cell, &run);
            let dout = StateGrads {
                h: Some(dh.slice(s![rows, .., ..])),
                ..StateGrads::default()
            };
            let need = [true, false, false, false, false, false, false];
            let (cache, states) = (rec.cache.view(), rec.states.view());
            let g = recurrent_backward(&cell, &run, cache, states, dout, need);
            (rec.states, g.x.expect("asked for"))
        };
        let (states, dx) = go(0..b);
        for r in [0, b - 1] {
            let (one_states, one_dx) = go(r..r + 1);
            let name = cell.name();
            assert_eq!(
                states.slice(s![r..r + 1, .., ..]),
                one_states,
                "{name} row {r}"
            );
            assert_eq!(dx.slice(s![r..r + 1, .., ..]), one_dx, "{name} dx row {r}");
        }
    }
    check(GruCell, &Operands::new((70, 2), 2048, 16, 3, 41), 16);
    check(LstmCell, &Operands::new((40, 3), 60, 128, 4, 42), 128);
}
