//! The tape behaves like PyTorch's autograd: accumulation, zeroing, no_grad,
//! detach, parameters, and leaves that need no gradient costing nothing.
//! Expected values are closed-form derivatives (d/dx Σx² = 2x, …).

use std::cell::RefCell;
use std::rc::Rc;

use ndarray::{array, ArrayD};
use nn_core::tape::Op;
use nn_core::{Param, Tape};

#[test]
fn gradients_accumulate_across_backward_calls_until_zeroed() {
    let tape = Tape::<f64>::new();
    // Going through the same ops twice is asked for, as PyTorch's
    // `retain_graph=True` (without it the second pass panics: tape_misuse.rs).
    tape.retain_graph();
    let x = tape.var(array![1.0, -2.0, 3.0]);
    let y = (&x * &x).sum();
    y.backward();
    y.backward();
    assert_eq!(x.grad().unwrap(), array![4.0, -8.0, 12.0].into_dyn()); // 2 × 2x
    tape.zero_grad();
    assert!(x.grad().is_none());
    y.backward();
    assert_eq!(x.grad().unwrap(), array![2.0, -4.0, 6.0].into_dyn());
}

#[test]
fn large_gradients_accumulate_like_small_ones() {
    // Past a million values the tape's element-wise ops and the sum of a
    // variable's gradients split over the cores (where there are two or
    // more): d/dx Σ (x·x + x) = 2x + 1, each value exact in f32.
    for n in [1000, (1 << 20) + 7] {
        let x0 = ArrayD::from_shape_fn(ndarray::IxDyn(&[n]), |i| (i[0] % 29) as f32 - 14.0);
        let tape = Tape::<f32>::new();
        let x = tape.var(x0.clone());
        (&(&x * &x) + &x).sum().backward();
        assert_eq!(x.grad().unwrap(), x0.mapv(|v| 2.0 * v + 1.0), "n {n}");
    }
}

#[test]
fn parameters_are_lent_without_copying_and_collect_their_gradient() {
    let w = Param::new(array![[1.0, 2.0], [3.0, 4.0]]);
    let tape = Tape::<f64>::new();
    let wv = tape.param(&w);
    // The node reads the parameter's own buffer.
    let same_buffer = wv.with_value(|v| v.as_ptr()) == w.value().as_ptr();
    assert!(same_buffer, "tape.param copied the parameter");

    // w used twice: d/dw Σ (w + w²) = 1 + 2w
    let y = (&wv + &tape.param(&w) * &wv).sum();
    y.backward();
    assert_eq!(*w.grad(), Some(array![[3.0, 5.0], [7.0, 9.0]].into_dyn()));

    // A second step on a fresh tape accumulates until zero_grad.
    let tape2 = Tape::<f64>::new();
    tape2.param(&w).sum().backward();
    assert_eq!(*w.grad(), Some(array![[4.0, 6.0], [8.0, 10.0]].into_dyn()));
    // PyTorch's zero_grad (set_to_none): no gradient until a backward.
    w.zero_grad();
    assert!(w.grad().is_none() && !w.has_grad());
    tape2.param(&w).sum().backward();
    assert_eq!(*w.grad(), Some(ArrayD::ones(ndarray::IxDyn(&[2, 2]))));
    w.clear_grad();
    assert!(w.grad().is_none());
}

/// After `zero_grad` there is no gradient, as after PyTorch's: a backward
/// then takes its gradient as the sum, a writer finds `None`.
/// Expected values: d/dw Σ w² = 2w.
#[test]
fn a_zeroed_gradient_is_none_to_whatever_comes_next() {
    let w = Param::new(array![1.0, 2.0]);
    let step = |w: &Param<f64>| {
        let tape = Tape::new();
        let wv = tape.param(w);
        (&wv * &wv).sum().backward();
    };
    step(&w);
    step(&w);
    assert_eq!(*w.grad(), Some(array![4.0, 8.0].into_dyn()));
    w.zero_grad();
    step(&w);
    assert_eq!(*w.grad(), Some(array![2.0, 4.0].into_dyn()));
    w.zero_grad();
    {
        let mut g = w.grad_mut();
        assert_eq!(*g, None);
        *g = Some(array![1.0, 0.0].into_dyn());
    }
    step(&w);
    assert_eq!(*w.grad(), Some(array![3.0, 4.0].into_dyn()));
    w.zero_grad();
    w.clear_grad();
    step(&w);
    assert_eq!(*w.grad(), Some(array![2.0, 4.0].into_dyn()));
}

#[test]
fn no_grad_records_values_only_and_restores_on_drop() {
    let tape = Tape::<f32>::new();
    let x = tape.var(array![1.0f32, 2.0]);
    {
        let _guard = tape.no_grad();
        let y = x.exp();
        assert!(!y.requires_grad());
        assert!(!tape.is_grad_enabled());
    }
    assert!(tape.is_grad_enabled());
    assert!(x.exp().requires_grad());
}

#[test]
fn detach_stops_the_gradient_and_shares_the_value() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![3.0, -1.0]);
    let d = x.detach();
    assert!(!d.requires_grad());
    assert_eq!(d.value(), x.value());
    // y = x * stop(x): dy/dx = stop(x) = x, not 2x.
    (&x * &d).sum().backward();
    assert_eq!(x.grad().unwrap(), array![3.0, -1.0].into_dyn());
}

/// An identity op that records which input gradients backward was asked for.
struct Spy(Rc<RefCell<Vec<Vec<bool>>>>);

impl Op<f64> for Spy {
    fn name(&self) -> &'static str {
        "spy"
    }
    fn backward(
        &self,
        x: &[&ArrayD<f64>],
        _y: &ArrayD<f64>,
        dy: &ArrayD<f64>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<f64>>> {
        self.0.borrow_mut().push(need.to_vec());
        x.iter()
            .zip(need)
            .map(|(_, &n)| n.then(|| dy.clone()))
            .collect()
    }
}

#[test]
fn leaves_without_gradient_cost_nothing_in_backward() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let tape = Tape::<f64>::new();
    let c = tape.constant(array![1.0, 2.0]);
    let w = tape.var(array![0.5, 0.5]);

    // Only constants upstream: no backward node is recorded at all.
    let only_constants = tape.record(&[&c, &c], |v| (v[0] + v[1], Spy(calls.clone())));
    assert!(!only_constants.requires_grad());

    // Mixed: backward is asked for w's gradient only.
    let mixed = tape.record(&[&c, &w], |v| (v[0] + v[1], Spy(calls.clone())));
    (&mixed + &only_constants).sum().backward();
    assert_eq!(*calls.borrow(), vec![vec![false, true]]);
    assert!(c.grad().is_none());
    assert_eq!(w.grad().unwrap(), array![1.0, 1.0].into_dyn());
}

#[test]
fn backward_with_a_cotangent_is_a_vector_jacobian_product() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0]);
    let y = &x * 3.0;
    y.backward_with(array![1.0, -1.0].into_dyn());
    assert_eq!(x.grad().unwrap(), array![3.0, -3.0].into_dyn());
}

#[test]
#[should_panic(
    expected = "backward: gradient can be implicitly created only for a one-element output, got shape [2]"
)]
fn backward_on_a_vector_needs_a_cotangent() {
    let tape = Tape::<f64>::new();
    tape.var(array![1.0, 2.0]).exp().backward();
}

#[test]
#[should_panic(expected = "cannot combine variables from different tapes")]
fn variables_from_different_tapes_do_not_mix() {
    let (t1, t2) = (Tape::<f64>::new(), Tape::<f64>::new());
    let _ = &t1.var(array![1.0]) + &t2.var(array![1.0]);
}
