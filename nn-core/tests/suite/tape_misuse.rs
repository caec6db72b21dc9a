//! Misuse of the tape fails loudly instead of computing something else: a
//! second backward pass through the same ops (it would add the gradients
//! again; PyTorch raises too) unless `retain_graph` asks for it, and the
//! mean loss of an empty batch (NaN otherwise).

use crate::panics;
use panics::panic_message;

use ndarray::{array, Array2};
use nn_core::loss::{cross_entropy, mse, Loss, Reduction, Target};
use nn_core::Tape;

#[test]
fn a_second_backward_through_the_same_ops_is_refused_unless_retained() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0]);
    let y = (&x * &x).sum();
    y.backward();
    let msg = panic_message(|| y.backward());
    assert!(
        msg.contains("already gone through by a backward pass"),
        "{msg}"
    );
    // d(Σx²)/dx = 2x, once: the refused pass added nothing.
    assert_eq!(x.grad().unwrap(), array![2.0, 4.0].into_dyn());

    let tape = Tape::<f64>::new();
    tape.retain_graph();
    let x = tape.var(array![1.0, 2.0]);
    let y = (&x * &x).sum();
    y.backward();
    y.backward();
    assert_eq!(x.grad().unwrap(), array![4.0, 8.0].into_dyn());
}

#[test]
fn backward_passes_through_separate_ops_of_one_tape_are_fine() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![3.0]);
    (&x * 2.0).sum().backward();
    (&x * 5.0).sum().backward();
    assert_eq!(x.grad().unwrap(), array![7.0].into_dyn());
}

#[test]
fn the_mean_loss_of_an_empty_batch_is_an_error_not_nan() {
    let tape = Tape::<f64>::new();
    let logits = tape.var(Array2::<f64>::zeros((0, 3)));
    let msg = panic_message(|| drop(cross_entropy(&logits, &[], Reduction::Mean)));
    assert!(msg.contains("mean over an empty batch"), "{msg}");
    let empty = tape.constant(Array2::<f64>::zeros((0, 2)));
    let msg = panic_message(|| drop(mse(&empty, &empty, Reduction::Mean)));
    assert!(msg.contains("mean over an empty batch"), "{msg}");
    let none = Array2::<f64>::zeros((0, 2)).into_dyn();
    let msg = panic_message(|| {
        Loss::Mse.value_and_grad(none.view(), &Target::Values(none.view()));
    });
    assert!(msg.contains("mse: the mean over an empty batch"), "{msg}");
}
