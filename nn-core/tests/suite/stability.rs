//! Softmax, log-softmax and cross-entropy stay finite at logits of magnitude 1e4.
//! Expected values from the formulas: softmax([1e4, 0, -1e4]) = [1, 0, 0] to
//! within e^-1e4; log_softmax = x - 1e4; cross-entropy of label k = 1e4 - x_k.

use ndarray::{array, Array2};
use nn_core::loss::{self, Reduction};
use nn_core::{Float, Tape};

fn finite<T: Float>(xs: impl IntoIterator<Item = T>) -> bool {
    xs.into_iter().all(|v| v.is_finite())
}

fn check<T: Float>() {
    let big = T::lit(1e4);
    let logits =
        || Array2::from_shape_vec((2, 3), vec![big, T::zero(), -big, -big, -big, big]).unwrap();

    let tape = Tape::<T>::new();
    let x = tape.var(logits());
    let p = x.softmax(-1);
    let pv = p.value();
    assert_eq!(pv[[0, 0]], T::one());
    assert_eq!(pv[[1, 2]], T::one());
    assert_eq!(pv[[0, 1]], T::zero());
    (&p * &tape.constant(array![[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]].mapv(T::lit)))
        .sum()
        .backward();
    assert!(finite(x.grad().unwrap()), "softmax gradient");

    let tape = Tape::<T>::new();
    let x = tape.var(logits());
    let lp = x.log_softmax(-1);
    let lv = lp.value();
    assert_eq!(lv[[0, 0]], T::zero());
    assert_eq!(lv[[0, 2]], T::lit(-2e4));
    lp.sum().backward();
    assert!(finite(x.grad().unwrap()), "log_softmax gradient");

    let tape = Tape::<T>::new();
    let x = tape.var(logits());
    let l = loss::cross_entropy(&x, &[1, 0], Reduction::None);
    // label 1 of row 0: 1e4 - 0; label 0 of row 1: 1e4 - (-1e4)
    assert_eq!(l.value(), array![1e4, 2e4].mapv(T::lit).into_dyn());
    l.sum().backward();
    let g = x.grad().unwrap();
    assert!(finite(g.iter().copied()), "cross-entropy gradient");
    // (softmax - onehot): row 0 = [1, -1, 0]
    assert_eq!(g.row_view(0), array![1.0, -1.0, 0.0].mapv(T::lit));
}

trait RowView<T> {
    fn row_view(&self, i: usize) -> ndarray::Array1<T>;
}

impl<T: Float> RowView<T> for ndarray::ArrayD<T> {
    fn row_view(&self, i: usize) -> ndarray::Array1<T> {
        self.index_axis(ndarray::Axis(0), i)
            .to_owned()
            .into_dimensionality()
            .unwrap()
    }
}

#[test]
fn huge_logits_stay_finite_f32() {
    check::<f32>();
}

#[test]
fn huge_logits_stay_finite_f64() {
    check::<f64>();
}
