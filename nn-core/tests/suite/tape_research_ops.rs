//! The tape ops research code needs (issue 12, point 7): `linear` and
//! `matmul` over any leading dimensions, `dropout` honouring train/eval,
//! PyTorch's tensor printing for `Var`, and misuse panics reported at the
//! user's line.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use ndarray::{array, Array, Array1, ArrayD, Axis, IxDyn, ShapeBuilder};
use nn_core::kernels::conv::Window2d;
use nn_core::{gradcheck, GradcheckOptions, Tape, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn uniform(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(lo..hi))
}

/// The same values stored column-major (Fortran order): a non-contiguous
/// layout for the row-folding code, which must then copy.
fn column_major(a: &ArrayD<f64>) -> ArrayD<f64> {
    let mut f = ArrayD::zeros(IxDyn(a.shape()).f());
    f.assign(a);
    assert!(!f.is_standard_layout() || a.ndim() < 2);
    f
}

fn check(name: &str, inputs: &[ArrayD<f64>], f: impl Fn(&[Var<f64>]) -> Var<f64>) {
    let report = gradcheck(f, inputs, &GradcheckOptions::default());
    assert!(report.passed, "{name}: {report}");
    assert!(report.checked > 0, "{name}: nothing compared");
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(20261204)
}

/// `a @ b` by the definition, for operands already broadcast to
/// `[batch, n, k]` and `[batch, k, m]`.
fn naive_batched(a: &ArrayD<f64>, b: &ArrayD<f64>) -> ArrayD<f64> {
    let (bs, n, k, m) = (a.shape()[0], a.shape()[1], a.shape()[2], b.shape()[2]);
    ArrayD::from_shape_fn(IxDyn(&[bs, n, m]), |i| {
        (0..k)
            .map(|j| a[[i[0], i[1], j]] * b[[i[0], j, i[2]]])
            .sum()
    })
}

/// Equal shapes and every element within 1e-12.
fn close<S: ndarray::Data<Elem = f64>>(a: &ndarray::ArrayBase<S, IxDyn>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

fn value_of(f: impl Fn(&Tape<f64>) -> Var<f64>) -> ArrayD<f64> {
    f(&Tape::new()).value()
}

// ---------------------------------------------------------------- linear --

#[test]
fn linear_gradients_for_one_to_four_dimensional_inputs() {
    let mut r = rng();
    let w = uniform(&mut r, &[3, 4], -1.0, 1.0);
    let b = uniform(&mut r, &[3], -1.0, 1.0);
    for shape in [&[4][..], &[2, 4], &[2, 3, 4], &[2, 2, 1, 4]] {
        let x = uniform(&mut r, shape, -1.0, 1.0);
        let name = format!("linear {shape:?}");
        check(&name, &[x.clone(), w.clone(), b.clone()], |v| {
            v[0].linear(&v[1], Some(&v[2]))
        });
        check(&format!("{name} without bias"), &[x, w.clone()], |v| {
            v[0].linear(&v[1], None)
        });
    }
    // A column-major input takes the copying path; the gradients still agree.
    let x = column_major(&uniform(&mut r, &[2, 3, 4], -1.0, 1.0));
    check("linear column-major", &[x, w.clone(), b.clone()], |v| {
        v[0].linear(&v[1], Some(&v[2]))
    });
}

#[test]
fn linear_over_leading_dimensions_is_the_2d_linear_of_the_folded_rows() {
    let mut r = rng();
    let x = uniform(&mut r, &[2, 3, 5, 4], -1.0, 1.0);
    let (w, b) = (
        uniform(&mut r, &[6, 4], -1.0, 1.0),
        uniform(&mut r, &[6], -1.0, 1.0),
    );
    let tape = Tape::<f64>::new();
    let (wv, bv) = (tape.var(w.clone()), tape.var(b.clone()));
    let y = tape.var(x.clone()).linear(&wv, Some(&bv));
    assert_eq!(y.shape(), vec![2, 3, 5, 6]);
    let rows = x.to_shape((30, 4)).unwrap().to_owned();
    let flat = tape.var(rows).linear(&wv, Some(&bv));
    // Same rows, same products, same order of additions: bit-identical.
    assert_eq!(
        y.value(),
        flat.value()
            .into_shape_with_order(IxDyn(&[2, 3, 5, 6]))
            .unwrap()
    );
    // A 1-D input is one row: [in] -> [out].
    let v = tape.var(
        x.index_axis(Axis(0), 0)
            .index_axis(Axis(0), 0)
            .index_axis(Axis(0), 0)
            .to_owned(),
    );
    assert_eq!(
        v.linear(&wv, Some(&bv)).value(),
        flat.value().index_axis(Axis(0), 0)
    );
}

#[test]
#[should_panic(expected = "linear: input [2, 5, 3] does not fit weight [4, 5] (layout [out, in])")]
fn linear_with_an_inner_dimension_mismatch_names_both_shapes() {
    let tape = Tape::<f32>::new();
    let x = tape.var(ArrayD::zeros(IxDyn(&[2, 5, 3])));
    let _ = x.linear(&tape.var(ArrayD::zeros(IxDyn(&[4, 5]))), None);
}

#[test]
#[should_panic(expected = "linear: bias [5] does not match weight [4, 3]")]
fn linear_with_a_wrong_bias_names_both_shapes() {
    let tape = Tape::<f32>::new();
    let x = tape.var(ArrayD::zeros(IxDyn(&[2, 7, 3])));
    let w = tape.var(ArrayD::zeros(IxDyn(&[4, 3])));
    let _ = x.linear(&w, Some(&tape.var(ArrayD::zeros(IxDyn(&[5])))));
}

// ---------------------------------------------------------------- matmul --

#[test]
fn matmul_gradients_under_torch_matmul_rules() {
    let mut r = rng();
    let mut u = |s: &[usize]| uniform(&mut r, s, -1.0, 1.0);
    let cases: Vec<(&str, ArrayD<f64>, ArrayD<f64>)> = vec![
        ("[4] @ [4]", u(&[4]), u(&[4])),
        ("[4] @ [4, 2]", u(&[4]), u(&[4, 2])),
        ("[3, 4] @ [4]", u(&[3, 4]), u(&[4])),
        ("[3, 4] @ [4, 2]", u(&[3, 4]), u(&[4, 2])),
        ("[2, 3, 4] @ [4, 2]", u(&[2, 3, 4]), u(&[4, 2])),
        ("[2, 2, 3, 4] @ [4, 2]", u(&[2, 2, 3, 4]), u(&[4, 2])),
        ("[2, 3, 4] @ [4]", u(&[2, 3, 4]), u(&[4])),
        ("[4] @ [2, 4, 2]", u(&[4]), u(&[2, 4, 2])),
        ("[3, 4] @ [2, 4, 2]", u(&[3, 4]), u(&[2, 4, 2])),
        ("[2, 3, 4] @ [2, 4, 2]", u(&[2, 3, 4]), u(&[2, 4, 2])),
        (
            "[2, 2, 3, 4] @ [2, 2, 4, 2]",
            u(&[2, 2, 3, 4]),
            u(&[2, 2, 4, 2]),
        ),
        ("[2, 1, 3, 4] @ [3, 4, 2]", u(&[2, 1, 3, 4]), u(&[3, 4, 2])),
    ];
    for (name, a, b) in cases {
        check(name, &[a.clone(), b.clone()], |v| v[0].matmul(&v[1]));
        let (fa, fb) = (column_major(&a), column_major(&b));
        check(&format!("{name} column-major"), &[fa, fb], |v| {
            v[0].matmul(&v[1])
        });
    }
}

#[test]
fn matmul_values_and_shapes_follow_torch_matmul() {
    let mut r = rng();
    let a = uniform(&mut r, &[2, 3, 5, 4], -1.0, 1.0);
    let w = uniform(&mut r, &[4, 6], -1.0, 1.0);
    // [.., n, k] @ [k, m]: every leading index times the shared matrix.
    let y = value_of(|t| t.var(a.clone()).matmul(&t.var(w.clone())));
    assert_eq!(y.shape(), &[2, 3, 5, 6]);
    let a3 = a.to_shape((6, 5, 4)).unwrap().to_owned();
    let w3 = w.broadcast((6, 4, 6)).unwrap().to_owned().into_dyn();
    let want = naive_batched(&a3.into_dyn(), &w3);
    assert!(close(&y.to_shape((6, 5, 6)).unwrap().into_dyn(), &want));

    // Broadcast batch: [2, 1, 3, 4] @ [3, 4, 2] -> [2, 3, 3, 2].
    let (p, q) = (
        uniform(&mut r, &[2, 1, 3, 4], -1.0, 1.0),
        uniform(&mut r, &[3, 4, 2], -1.0, 1.0),
    );
    let y = value_of(|t| t.var(p.clone()).matmul(&t.var(q.clone())));
    assert_eq!(y.shape(), &[2, 3, 3, 2]);
    for i in 0..2 {
        for j in 0..3 {
            let pi = p.index_axis(Axis(0), i).index_axis(Axis(0), 0).to_owned();
            let qj = q.index_axis(Axis(0), j).to_owned();
            let want = naive_batched(&pi.insert_axis(Axis(0)), &qj.insert_axis(Axis(0)));
            let got = y.index_axis(Axis(0), i).index_axis(Axis(0), j).to_owned();
            assert!(close(&got, &want.index_axis(Axis(0), 0).to_owned()));
        }
    }

    // 1-D operands: a row on the left, a column on the right, a dot product.
    let v = array![1.0, 2.0, 3.0].into_dyn();
    let m = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]].into_dyn();
    let mt = array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]].into_dyn();
    let row = value_of(|t| t.var(v.clone()).matmul(&t.var(m.clone())));
    assert_eq!(row, array![4.0, 5.0].into_dyn());
    let col = value_of(|t| t.var(mt.clone()).matmul(&t.var(v.clone())));
    assert_eq!(col, array![4.0, 5.0].into_dyn());
    let dot = value_of(|t| t.var(v.clone()).matmul(&t.var(v.clone())));
    assert_eq!(dot, ndarray::arr0(14.0).into_dyn());
}

#[test]
#[should_panic(
    expected = "matmul: shapes [2, 3, 4, 5] and [4, 6] are not aligned (inner dimensions differ)"
)]
fn matmul_with_an_inner_dimension_mismatch_names_both_shapes() {
    let tape = Tape::<f32>::new();
    let a = tape.var(ArrayD::zeros(IxDyn(&[2, 3, 4, 5])));
    let _ = a.matmul(&tape.var(ArrayD::zeros(IxDyn(&[4, 6]))));
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3, 4] and [3, 4, 5] are not aligned \
                           (batch dimensions [2] and [3] do not broadcast)")]
fn matmul_with_unbroadcastable_batches_names_both_shapes() {
    let tape = Tape::<f32>::new();
    let a = tape.var(ArrayD::zeros(IxDyn(&[2, 3, 4])));
    let _ = a.matmul(&tape.var(ArrayD::zeros(IxDyn(&[3, 4, 5]))));
}

// --------------------------------------------------------------- dropout --

#[test]
fn dropout_keeps_about_one_minus_p_and_scales_by_its_inverse() {
    let p = 0.3;
    let tape = Tape::<f32>::with_seed(11);
    let mut r = rng();
    let x = ArrayD::from_shape_fn(IxDyn(&[200, 500]), |_| r.random_range(0.5f32..1.5));
    let xv = tape.var(x.clone());
    let y = xv.dropout(p, true).value();
    let n = y.len() as f64;
    let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / n;
    // Binomial(n, 0.7): sd = sqrt(0.7 · 0.3 / n) = 0.00145; allow 5 sd.
    let bound = 5.0 * (p * (1.0 - p) / n).sqrt();
    assert!(
        (kept - (1.0 - p)).abs() < bound,
        "kept {kept}, bound {bound}"
    );
    // Every value is 0 or x / (1 - p) (computed as x · (1 / (1 - p)), as the
    // static Dropout layer does; within an f32 rounding of the quotient).
    let keep = (1.0 / (1.0 - p)) as f32;
    for (&yi, &xi) in y.iter().zip(&x) {
        assert!(yi == 0.0 || yi == xi * keep, "{yi} from {xi}");
        let quotient = (f64::from(xi) / (1.0 - p)) as f32;
        assert!(yi == 0.0 || (yi - quotient).abs() <= f32::EPSILON * quotient);
    }
}

#[test]
fn dropout_gradient_is_the_mask_times_dy_exactly() {
    let tape = Tape::<f64>::with_seed(3);
    let mut r = rng();
    let x = tape.var(uniform(&mut r, &[7, 9, 11], 0.5, 1.5));
    let y = x.dropout(0.25, true);
    let dy = uniform(&mut r, &[7, 9, 11], -2.0, 2.0);
    y.backward_with(dy.clone());
    let keep = 1.0 / (1.0 - 0.25);
    let mask = y.value().mapv(|v| if v == 0.0 { 0.0 } else { keep });
    assert_eq!(x.grad().unwrap(), &dy * &mask);
}

#[test]
fn dropout_in_evaluation_or_with_p_zero_is_the_identity_and_records_nothing() {
    let tape = Tape::<f32>::new();
    let x = tape.var(array![[1.0f32, -2.0], [3.0, 4.0]]);
    let before = tape.len();
    for y in [x.dropout(0.5, false), x.dropout(0.0, true)] {
        assert_eq!(y.id(), x.id());
        assert_eq!(y.value(), x.value());
    }
    assert_eq!(tape.len(), before);
}

#[test]
fn dropout_masks_repeat_with_the_seed_and_differ_between_tapes() {
    let mask = |tape: Tape<f32>| tape.constant(Array1::ones(256)).dropout(0.5, true).value();
    assert_eq!(mask(Tape::with_seed(5)), mask(Tape::with_seed(5)));
    assert_ne!(mask(Tape::with_seed(5)), mask(Tape::with_seed(6)));
    // `Tape::new` seeds the n-th tape of a thread with n: per-step tapes get
    // fresh masks, and a rerun gets the same ones.
    std::thread::spawn(move || {
        let (first, second) = (mask(Tape::new()), mask(Tape::new()));
        assert_ne!(first, second);
        assert_eq!(first, mask(Tape::with_seed(0)));
        assert_eq!(second, mask(Tape::with_seed(1)));
    })
    .join()
    .unwrap();
}

#[test]
#[should_panic(expected = "dropout: drop probability must be in [0, 1), got 1")]
fn dropout_with_p_one_panics_naming_the_op() {
    let tape = Tape::<f32>::new();
    let _ = tape.var(array![1.0f32]).dropout(1.0, true);
}

#[test]
#[should_panic(expected = "dropout: drop probability must be in [0, 1), got -0.1")]
fn dropout_with_a_negative_p_panics_even_in_evaluation() {
    let tape = Tape::<f32>::new();
    let _ = tape.var(array![1.0f32]).dropout(-0.1, false);
}

// --------------------------------------------------------------- display --
// Each expected string is PyTorch's output for the tensor named in the
// comment, worked out from `torch/_tensor_str.py` with the default print
// options (precision 4, linewidth 80, threshold 1000, edgeitems 3).

#[test]
fn display_matches_pytorch_tensor_printing() {
    let tape = Tape::<f32>::new();
    // torch.tensor([[1.5, 2.25], [3., 4.]])
    let x = tape.constant(array![[1.5f32, 2.25], [3.0, 4.0]]);
    assert_eq!(
        x.to_string(),
        "tensor([[1.5000, 2.2500],\n        [3.0000, 4.0000]])"
    );
    // torch.tensor([[1., -1.], [1., -1.]]), the example in torch.Tensor's
    // docs: whole numbers print as `1.`, right-aligned.
    let x = tape.constant(array![[1.0f32, -1.0], [1.0, -1.0]]);
    assert_eq!(x.to_string(), "tensor([[ 1., -1.],\n        [ 1., -1.]])");
    // torch.zeros(2, 3)
    let x = tape.constant(Array::<f32, _>::zeros((2, 3)));
    assert_eq!(
        x.to_string(),
        "tensor([[0., 0., 0.],\n        [0., 0., 0.]])"
    );
    // torch.tensor(3.5)
    assert_eq!(tape.scalar(3.5f32).to_string(), "tensor(3.5000)");
    // torch.tensor([1e-5, 1.]): the smallest under 1e-4 switches to
    // scientific notation for every element.
    let x = tape.constant(array![1e-5f32, 1.0]);
    assert_eq!(x.to_string(), "tensor([1.0000e-05, 1.0000e+00])");
    // torch.tensor([1.5, float('nan'), float('inf')])
    let x = tape.constant(array![1.5f32, f32::NAN, f32::INFINITY]);
    assert_eq!(x.to_string(), "tensor([1.5000,    nan,    inf])");
    // torch.arange(1., 9.).reshape(2, 2, 2): a blank line between blocks.
    let x = tape.constant(
        Array::range(1.0f32, 9.0, 1.0)
            .into_shape_with_order((2, 2, 2))
            .unwrap(),
    );
    assert_eq!(
        x.to_string(),
        "tensor([[[1., 2.],\n         [3., 4.]],\n\n        [[5., 6.],\n         [7., 8.]]])"
    );
    // torch.arange(12.) / 4: nine 6-wide elements fill a line of 80.
    let x = tape.constant(Array::range(0.0f32, 12.0, 1.0) / 4.0);
    assert_eq!(
        x.to_string(),
        "tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000,\n        \
         2.2500, 2.5000, 2.7500])"
    );
    // torch.zeros(0, 3) and torch.zeros(0)
    let x = tape.constant(Array::<f32, _>::zeros((0, 3)));
    assert_eq!(x.to_string(), "tensor([], size=(0, 3))");
    assert_eq!(
        tape.constant(Array1::<f32>::zeros(0)).to_string(),
        "tensor([])"
    );
}

#[test]
fn display_summarizes_past_a_thousand_elements() {
    let tape = Tape::<f32>::new();
    // torch.arange(1001.): the format comes from the printed elements only.
    let x = tape.constant(Array::range(0.0f32, 1001.0, 1.0));
    assert_eq!(
        x.to_string(),
        "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])"
    );
    // torch.stack([1 + torch.arange(1001) / 1000, 2 + torch.arange(1001) / 1000], 1).double()
    let x = Tape::<f64>::new().constant(Array::from_shape_fn((1001, 2), |(r, c)| {
        1.0 + r as f64 * 0.001 + c as f64
    }));
    assert_eq!(
        x.to_string(),
        "tensor([[1.0000, 2.0000],\n        [1.0010, 2.0010],\n        [1.0020, 2.0020],\n        \
         ...,\n        [1.9980, 2.9980],\n        [1.9990, 2.9990],\n        [2.0000, 3.0000]], \
         dtype=torch.float64)"
    );
    // torch.ones(40, 40): both axes summarized.
    let x = tape.constant(Array::<f32, _>::ones((40, 40)));
    let row = "[1., 1., 1.,  ..., 1., 1., 1.]";
    let rows = [row; 3].join(",\n        ");
    assert_eq!(
        x.to_string(),
        format!("tensor([{rows},\n        ...,\n        {rows}])")
    );
}

#[test]
fn display_suffixes_follow_pytorch() {
    let tape = Tape::<f32>::new();
    // torch.tensor([1., 2.], requires_grad=True)
    let x = tape.var(array![1.0f32, 2.0]);
    assert_eq!(x.to_string(), "tensor([1., 2.], requires_grad=True)");
    // x + x: PyTorch names the node `AddBackward0`; ours are the op's name
    // in CamelCase with `Backward`.
    assert_eq!(
        (&x + &x).to_string(),
        "tensor([2., 4.], grad_fn=<AddBackward>)"
    );
    // torch.tensor(3.5, dtype=torch.float64, requires_grad=True)
    let s = Tape::<f64>::new().var(ndarray::arr0(3.5));
    assert_eq!(
        s.to_string(),
        "tensor(3.5000, dtype=torch.float64, requires_grad=True)"
    );
    // (torch.arange(9.) / 4).requires_grad_(): the line is full, so the
    // suffix goes on the next one, under the bracket.
    let x = tape.var(Array::range(0.0f32, 9.0, 1.0) / 4.0);
    assert_eq!(
        x.to_string(),
        "tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000, 1.2500, 1.5000, 1.7500, 2.0000],\n       \
         requires_grad=True)"
    );
}

#[test]
fn display_precision_and_debug() {
    let tape = Tape::<f32>::new();
    let x = tape.constant(array![1.5f32, 2.25]);
    // torch.set_printoptions(precision=2); torch.tensor([1.5, 2.25])
    assert_eq!(format!("{x:.2}"), "tensor([1.50, 2.25])");
    let v = tape.var(array![1.0f32, 2.0]);
    let y = &v + &v;
    assert_eq!(
        format!("{y:?}"),
        format!(
            "Var {{ id: {}, shape: [2], op: \"add\", requires_grad: true, value: tensor([2., 4.]) }}",
            y.id()
        )
    );
    assert!(format!("{x:?}").contains("op: \"constant\""));
    assert!(format!("{v:?}").contains("op: \"leaf\""));
}

// ---------------------------------------------------------- track_caller --

thread_local! {
    /// The location of the last panic on this thread, while capturing.
    static CAPTURED: RefCell<Option<Option<(String, u32)>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns where its panic says it happened (`None` if it did
/// not panic).
fn panic_site(f: impl FnOnce()) -> Option<(String, u32)> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURED.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        *slot = info.location().map(|l| (l.file().to_string(), l.line()));
                        true
                    }
                    None => false,
                }
            });
            if !captured {
                default(info);
            }
        }));
    });
    CAPTURED.with(|c| *c.borrow_mut() = Some(None));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let site = CAPTURED.with(|c| c.borrow_mut().take()).flatten();
    result.err().and(site)
}

#[test]
fn stack_joins_along_a_new_axis_as_torch_stack() {
    // torch.stack([a, b], dim) by its definition: out.select(dim, i) is
    // the i-th input.
    let tape = Tape::<f64>::new();
    let a = tape.var(array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    let b = tape.var(array![[5.0, 6.0], [7.0, 8.0]].into_dyn());
    let at0 = array![[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]].into_dyn();
    let at1 = array![[[1.0, 2.0], [5.0, 6.0]], [[3.0, 4.0], [7.0, 8.0]]].into_dyn();
    let at2 = array![[[1.0, 5.0], [2.0, 6.0]], [[3.0, 7.0], [4.0, 8.0]]].into_dyn();
    for (axis, want) in [(0, at0), (1, at1), (2, at2)] {
        assert_eq!(Var::stack(&[&a, &b], axis).value(), want, "axis {axis}");
    }
    assert_eq!(a.unsqueeze(0).shape(), [1, 2, 2]);
    assert_eq!(a.unsqueeze(2).squeeze(2).value(), a.value());
}

#[test]
fn split_and_chunk_cut_as_torch_split_and_chunk() {
    // torch.split(x, [1, 2], 1) and torch.chunk(x, n, 0) by their
    // definitions: consecutive slices; chunk sizes ⌈len / n⌉ but the last
    // (shapes checked against torch.chunk: 5 in 4 → 2, 2, 1; 6 in 4 → 2, 2, 2;
    // 0 in 3 → three empty).
    let tape = Tape::<f64>::new();
    let x = tape.var(Array::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64).into_dyn());
    let parts = x.split(&[1, 2], 1);
    assert_eq!(
        parts[0].value(),
        x.value()
            .slice(ndarray::s![.., 0..1])
            .into_owned()
            .into_dyn()
    );
    assert_eq!(
        parts[1].value(),
        x.value()
            .slice(ndarray::s![.., 1..3])
            .into_owned()
            .into_dyn()
    );
    let rows = |n: usize, chunks: usize| {
        let v = tape.var(ArrayD::zeros(IxDyn(&[n, 2])));
        v.chunk(chunks, 0)
            .iter()
            .map(|c| c.shape()[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(5, 4), [2, 2, 1]);
    assert_eq!(rows(6, 4), [2, 2, 2]);
    assert_eq!(rows(0, 3), [0, 0, 0]);
    assert_eq!(rows(2, 5), [1, 1]);
    let joined = Var::concat(&x.chunk(2, 0).iter().collect::<Vec<_>>(), 0);
    assert_eq!(joined.value(), x.value());
}

#[test]
fn cross_entropy_ignoring_padding_gives_pytorchs_values() {
    // PyTorch 2.15 (float64): z = [[2, .5, -1], [.1, .2, 3], [1, -1, .3]],
    // y = [0, -100, 2]; F.cross_entropy(z, y, ignore_index=-100) and its
    // gradient, and reduction='none'. Every row ignored: NaN.
    let tape = Tape::<f64>::new();
    let z = tape.var(array![[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -1.0, 0.3]].into_dyn());
    let loss = nn_core::loss::cross_entropy_ignoring(&z, &[0, 9, 2], 9, Default::default());
    assert!((loss.item() - 0.7155344460529203).abs() < 1e-15);
    loss.backward();
    let want = array![
        [
            -0.10720148270536206,
            0.08764519607001835,
            0.019556286635343725
        ],
        [0.0, 0.0, 0.0],
        [
            0.30638745780551535,
            0.04146503338225514,
            -0.3478524911877705
        ]
    ];
    let got = z.grad().unwrap();
    assert!(
        got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-15),
        "{got}"
    );
    let none =
        nn_core::loss::cross_entropy_ignoring(&z, &[0, 9, 2], 9, nn_core::loss::Reduction::None);
    let want = [0.24131129665715703, 0.0, 1.1897575954486834];
    assert!(none
        .value()
        .iter()
        .zip(want)
        .all(|(g, w)| (g - w).abs() < 1e-15));
    // Every row ignored: a NaN mean, a sum of 0, and zero gradients
    // (PyTorch 2.15 gives the same).
    let tape = Tape::<f64>::new();
    let z = tape.var(array![[2.0, 0.5], [0.1, 0.2]].into_dyn());
    let all = nn_core::loss::cross_entropy_ignoring(&z, &[9, 9], 9, Default::default());
    assert!(all.item().is_nan());
    all.backward();
    assert_eq!(z.grad().unwrap(), ArrayD::<f64>::zeros(IxDyn(&[2, 2])));
    let sum = nn_core::loss::cross_entropy_ignoring(&z, &[9, 9], 9, nn_core::loss::Reduction::Sum);
    assert_eq!(sum.item(), 0.0);
    // An ignored row's logits do not matter, −∞ included (PyTorch: 0.6444
    // for y = [ignored, 1]; by definition ln(e^0.1 + e^0.2) − 0.2, and the
    // kept row's gradient softmax − onehot).
    let tape = Tape::<f64>::new();
    let z = tape.var(array![[f64::NEG_INFINITY, 0.5], [0.1, 0.2]].into_dyn());
    let loss = nn_core::loss::cross_entropy_ignoring(&z, &[9, 1], 9, Default::default());
    let want = (0.1f64.exp() + 0.2f64.exp()).ln() - 0.2;
    assert!((loss.item() - want).abs() < 1e-15 && (loss.item() - 0.6443966600735709).abs() < 1e-15);
    loss.backward();
    let g = z.grad().unwrap();
    let p0 = 0.1f64.exp() / (0.1f64.exp() + 0.2f64.exp());
    assert_eq!((g[[0, 0]], g[[0, 1]]), (0.0, 0.0));
    // Row 1: (p₀, p₁) − (0, 1) with p₁ = 1 − p₀.
    assert!((g[[1, 0]] - p0).abs() < 1e-15 && (g[[1, 1]] + p0).abs() < 1e-15);
}

#[test]
fn negative_axes_count_from_the_back_as_pytorchs_dim() {
    // PyTorch's rule: dim −k is dim ndim − k (ndim + 1 − k where an op
    // inserts an axis: unsqueeze, stack).
    let tape = Tape::<f64>::new();
    let x = tape
        .var(Array::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f64).into_dyn());
    let same = |a: Var<f64>, b: Var<f64>| assert_eq!(a.value(), b.value());
    same(x.sum_axis(-1, true), x.sum_axis(2usize, true));
    same(x.mean_axis(-3, false), x.mean_axis(0usize, false));
    same(x.max_axis(-2, false), x.max_axis(1usize, false));
    same(x.min_axis(-1, false), x.min_axis(2usize, false));
    same(x.transpose(-1, -2), x.transpose(2usize, 1usize));
    same(Var::concat(&[&x, &x], -1), Var::concat(&[&x, &x], 2usize));
    same(Var::stack(&[&x, &x], -1), Var::stack(&[&x, &x], 3usize));
    same(x.unsqueeze(-1), x.unsqueeze(3usize));
    same(x.unsqueeze(-4), x.unsqueeze(0usize));
    same(x.slice(-1, 1..3), x.slice(2usize, 1..3));
    same(x.index_select(-2, &[2, 0]), x.index_select(1usize, &[2, 0]));
    same(x.unsqueeze(0).squeeze(-4), x.clone());
    let index = ArrayD::from_elem(IxDyn(&[2, 3, 1]), 3usize);
    same(x.gather(-1, index.clone()), x.gather(2usize, index));
    let (a, b) = (x.split(&[1, 3], -1), x.chunk(2, -1));
    same(a[1].clone(), x.slice(2usize, 1..4));
    same(b[0].clone(), x.slice(2usize, 0..2));
}

#[test]
fn image_ops_made_of_others_follow_their_definitions() {
    let tape = Tape::<f64>::new();
    let x = Array::from_shape_fn((2, 4, 3, 5), |(n, c, i, j)| {
        ((n * 60 + c * 15 + i * 5 + j) as f64 * 0.37).sin() * 2.0
    })
    .into_dyn();
    let v = tape.var(x.clone());

    // GroupNorm (PyTorch's definition): per sample and group of 2 channels,
    // (x − mean) / sqrt(biased var + eps) over the group's 2·3·5 values,
    // then γ[c]·… + β[c].
    let (gamma, beta) = (array![0.5, -1.0, 2.0, 1.5], array![0.1, 0.2, -0.3, 0.0]);
    let y = v.group_norm(
        2,
        &tape.var(gamma.clone().into_dyn()),
        &tape.var(beta.clone().into_dyn()),
        1e-5,
    );
    for n in 0..2 {
        for g in 0..2 {
            let group = x.slice(ndarray::s![n, 2 * g..2 * g + 2, .., ..]);
            let mean = group.mean().unwrap();
            let var = group.mapv(|e| (e - mean).powi(2)).mean().unwrap();
            for c in 2 * g..2 * g + 2 {
                for (i, j) in [(0, 0), (2, 4), (1, 3)] {
                    let want = (x[[n, c, i, j]] - mean) / (var + 1e-5).sqrt() * gamma[c] + beta[c];
                    assert!((y.value()[[n, c, i, j]] - want).abs() < 1e-12);
                }
            }
        }
    }

    // Nearest upsampling: y[.., i, j] = x[.., i / 2, j / 3].
    let up = v.upsample_nearest2d((2, 3)).value();
    assert_eq!(up.shape(), [2, 4, 6, 15]);
    assert!(ndarray::indices(up.shape())
        .into_iter()
        .all(|ix| up[&ix] == x[[ix[0], ix[1], ix[2] / 2, ix[3] / 3]]));

    // Zero padding (top 1, bottom 0, left 2, right 1).
    let padded = v.pad2d((1, 0, 2, 1)).value();
    assert_eq!(padded.shape(), [2, 4, 4, 8]);
    assert_eq!(
        padded.slice(ndarray::s![.., .., 1.., 2..7]).into_dyn(),
        x.view()
    );
    let zeros = |a: &ArrayD<f64>| a.iter().filter(|&&e| e == 0.0).count();
    assert_eq!(zeros(&padded), padded.len() - x.len() + zeros(&x));

    // Adaptive average pooling to (2, 2) from 3 × 5: rows 0..2 and 1..3,
    // columns 0..3 and 2..5 (⌊i·len/out⌋ .. ⌈(i+1)·len/out⌉).
    let pooled = v.adaptive_avg_pool2d((2, 2)).value();
    let want = |n: usize, c: usize, r: std::ops::Range<usize>, q: std::ops::Range<usize>| {
        x.slice(ndarray::s![n, c, r, q]).mean().unwrap()
    };
    assert!((pooled[[1, 3, 0, 0]] - want(1, 3, 0..2, 0..3)).abs() < 1e-15);
    assert!((pooled[[0, 2, 1, 1]] - want(0, 2, 1..3, 2..5)).abs() < 1e-15);
    assert!((pooled[[1, 0, 1, 0]] - want(1, 0, 1..3, 0..3)).abs() < 1e-15);
}

#[test]
fn channel_dropout_zeroes_whole_channels_and_passes_their_mask_back() {
    // PyTorch's Dropout2d: per sample and channel, 0 or 1 / (1 − p), the
    // gradient dy times the same factor; about p of 2000 channels zeroed.
    let tape = Tape::<f64>::with_seed(11);
    let x = tape.var(ArrayD::from_elem(IxDyn(&[20, 100, 2, 3]), 1.0));
    let y = x.dropout2d(0.25, true);
    let dy = ArrayD::from_shape_fn(IxDyn(&[20, 100, 2, 3]), |i| (i[2] * 3 + i[3]) as f64);
    (&y * &tape.constant(dy.clone())).sum().backward();
    let (y, g) = (y.value(), x.grad().unwrap());
    let mut zeroed = 0;
    for n in 0..20 {
        for c in 0..100 {
            let factor = y[[n, c, 0, 0]];
            assert!(factor == 0.0 || (factor - 1.0 / 0.75).abs() < 1e-15);
            zeroed += usize::from(factor == 0.0);
            for (i, j) in [(0, 0), (1, 2), (0, 1)] {
                assert_eq!(y[[n, c, i, j]], factor);
                assert_eq!(g[[n, c, i, j]], dy[[n, c, i, j]] * factor);
            }
        }
    }
    assert!(
        (400..600).contains(&zeroed),
        "{zeroed} of 2000 channels zeroed"
    );
    assert_eq!(x.dropout2d(0.25, false).value(), x.value());
}

#[test]
fn one_dimensional_convolution_and_pooling_follow_pytorchs_definitions() {
    use nn_core::tape::ops::Window1d;
    // F.conv1d: y[n, o, t] = b[o] + Σ_i Σ_k w[o, i, k] · x[n, i, t·s + k·d − p]
    // (zero outside), stride 2, padding 2, dilation 2.
    let tape = Tape::<f64>::new();
    let x = Array::from_shape_fn((2, 3, 9), |(n, c, t)| {
        ((n * 27 + c * 9 + t) as f64 * 0.61).cos()
    })
    .into_dyn();
    let w = Array::from_shape_fn((4, 3, 3), |(o, i, k)| {
        ((o * 9 + i * 3 + k) as f64 * 0.29).sin()
    })
    .into_dyn();
    let b = array![0.1, -0.2, 0.3, 0.0].into_dyn();
    let window = Window1d {
        kernel: 3,
        stride: 2,
        padding: 2,
        dilation: 2,
    };
    let y = tape
        .var(x.clone())
        .conv1d(&tape.var(w.clone()), Some(&tape.var(b.clone())), window)
        .value();
    // (9 + 2·2 − 2·(3 − 1) − 1) / 2 + 1 = 5 outputs.
    assert_eq!(y.shape(), [2, 4, 5]);
    for (n, o, t) in [(0, 0, 0), (1, 3, 4), (0, 2, 2), (1, 1, 3)] {
        let mut want = b[[o]];
        for i in 0..3 {
            for k in 0..3 {
                let at = (t * 2 + k * 2) as isize - 2;
                if (0..9).contains(&at) {
                    want += w[[o, i, k]] * x[[n, i, at as usize]];
                }
            }
        }
        assert!((y[[n, o, t]] - want).abs() < 1e-14, "({n}, {o}, {t})");
    }
    // F.max_pool1d / F.avg_pool1d, kernel 3, stride 2, padding 1: window t
    // covers positions 2t − 1 .. 2t + 1 (−∞ or 0 outside; avg divides by 3).
    let v = tape.var(x.clone());
    let window = Window1d {
        kernel: 3,
        stride: 2,
        padding: 1,
        dilation: 1,
    };
    let (mx, av) = (v.max_pool1d(window).value(), v.avg_pool1d(window).value());
    assert_eq!(mx.shape(), [2, 3, 5]);
    for (n, c, t) in [(0, 0, 0), (1, 2, 4), (0, 1, 2)] {
        let taps: Vec<f64> = (0..3)
            .map(|k| (2 * t + k) as isize - 1)
            .filter(|p| (0..9).contains(p))
            .map(|p| x[[n, c, p as usize]])
            .collect();
        assert_eq!(
            mx[[n, c, t]],
            taps.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        assert!((av[[n, c, t]] - taps.iter().sum::<f64>() / 3.0).abs() < 1e-15);
    }
}

fn consume<R>(_: R) {}

/// `(line of the call, where its panic was reported)`.
macro_rules! panics_at {
    ($e:expr) => {
        (line!(), panic_site(|| consume($e)))
    };
}

#[test]
fn misuse_panics_are_reported_at_the_callers_line() {
    let tape = Tape::<f32>::new();
    let v = |s: &[usize]| tape.var(ArrayD::zeros(IxDyn(s)));
    let (a, b) = (v(&[2, 3]), v(&[4, 3]));
    let (a3, b3) = (v(&[2, 3, 4]), v(&[3, 4, 5]));
    let (nchw, kernel, window) = (v(&[1, 2, 4, 4]), v(&[3, 1, 3, 3]), Window2d::new((3, 3)));
    let (g, mask, index) = (
        v(&[2]),
        ArrayD::from_elem(IxDyn(&[5]), true),
        array![9].into_dyn(),
    );
    let other = Tape::<f32>::new().var(array![1.0f32]);
    let (empty, cond, at) = (
        v(&[2, 0]),
        tape.constant(array![0.5f32]),
        array![[3]].into_dyn(),
    );
    let sites = [
        ("add by reference", panics_at!(&a + &b)),
        ("add by value", panics_at!(a.clone() + b.clone())),
        ("mul", panics_at!(&a * &v(&[3, 2]))),
        ("maximum", panics_at!(a.maximum(&b))),
        ("matmul", panics_at!(a.matmul(&b))),
        ("batched matmul", panics_at!(a3.matmul(&b3))),
        ("linear", panics_at!(a3.linear(&b, None))),
        ("reshape", panics_at!(a.reshape(&[4, 2]))),
        ("permute", panics_at!(a.permute(&[0, 0]))),
        ("transpose", panics_at!(a.transpose(0, 2))),
        ("concat", panics_at!(Var::concat(&[&a, &v(&[3, 3])], 1))),
        (
            "cross_entropy",
            panics_at!(nn_core::loss::cross_entropy(
                &a3,
                &[0, 1],
                nn_core::loss::Reduction::None
            )),
        ),
        ("split", panics_at!(a.split(&[1, 1], 1))),
        ("chunk", panics_at!(a.chunk(0, 1))),
        ("stack", panics_at!(Var::stack(&[&a, &b], 0))),
        ("stack axis", panics_at!(Var::stack(&[&a], 3))),
        ("unsqueeze", panics_at!(a.unsqueeze(3))),
        ("squeeze", panics_at!(a.squeeze(0))),
        ("negative axis", panics_at!(a.sum_axis(-3, false))),
        ("slice", panics_at!(a.slice(1, 2..5))),
        ("index_select", panics_at!(a.index_select(0, &[2]))),
        ("sum_axis", panics_at!(a.sum_axis(2, false))),
        ("mean_axis", panics_at!(a.mean_axis(2, true))),
        ("max_axis", panics_at!(a.max_axis(5, false))),
        ("where", panics_at!(Var::where_(&mask, &a, &a))),
        ("select", panics_at!(Var::select(&cond, &a, &a))),
        ("t", panics_at!(a3.t())),
        ("gather", panics_at!(a.gather(1, at.clone()))),
        ("max", panics_at!(empty.max())),
        ("min_axis", panics_at!(empty.min_axis(1, false))),
        ("dropout", panics_at!(a.dropout(1.5, true))),
        ("dropout2d", panics_at!(a.dropout2d(0.5, true))),
        ("item", panics_at!(a.item())),
        ("backward", panics_at!(a.backward())),
        ("conv2d", panics_at!(nchw.conv2d(&kernel, None, window))),
        ("max_pool2d", panics_at!(a.max_pool2d(window))),
        (
            "max_pool2d padding",
            panics_at!(v(&[1, 1, 4, 4]).max_pool2d(Window2d {
                padding: nn_core::kernels::conv::Padding2d::uniform(2),
                ..Window2d::new((2, 2))
            })),
        ),
        (
            // PyTorch refuses it too: the rule is on the taps, not the
            // dilated span (2·2 > 3 taps, though 4 ≤ 5).
            "max_pool2d padding, dilated",
            panics_at!(v(&[1, 1, 9, 9]).max_pool2d(Window2d {
                padding: nn_core::kernels::conv::Padding2d::uniform(2),
                dilation: (2, 2),
                ..Window2d::new((3, 3))
            })),
        ),
        (
            "avg_pool2d",
            panics_at!(v(&[1, 1, 2, 2]).avg_pool2d(window)),
        ),
        ("global_avg_pool", panics_at!(a.global_avg_pool())),
        (
            "batch_norm_train",
            panics_at!(a.batch_norm_train(&g, &g, 1e-5)),
        ),
        (
            "batch_norm_eval",
            panics_at!(a.batch_norm_eval(&b, &b, &[0.0], &[1.0], 1e-5)),
        ),
        ("layer_norm", panics_at!(a.layer_norm(&g, &g, 1, 1e-5))),
        ("embedding", panics_at!(a.embedding(&index))),
        ("other tape", panics_at!(&a + &other)),
        ("softmax axis", panics_at!(a.softmax(2))),
        ("glu odd length", panics_at!(a.glu(-1))),
        ("sparsemax axis", panics_at!(a.sparsemax(-3))),
    ];
    for (op, (line, site)) in sites {
        let (file, at) = site.unwrap_or_else(|| panic!("{op}: no panic"));
        assert_eq!(
            (file.as_str(), at),
            (file!(), line),
            "{op}: the panic should point at this test"
        );
    }
}
