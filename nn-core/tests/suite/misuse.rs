//! Tensor misuse panics with the op's name and the shapes involved.

use ndarray::{Array2, ArrayD, IxDyn};
use nn_core::loss::{self, Reduction};
use nn_core::{Tape, Var};

fn var(tape: &Tape<f32>, shape: &[usize]) -> Var<f32> {
    tape.var(ArrayD::zeros(IxDyn(shape)))
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] are not aligned")]
fn matmul_with_misaligned_inner_dimensions() {
    let tape = Tape::new();
    let _ = var(&tape, &[2, 3]).matmul(&var(&tape, &[4, 5]));
}

#[test]
#[should_panic(expected = "add: cannot broadcast shapes [2, 3] and [4, 3]")]
fn add_of_unbroadcastable_shapes() {
    let tape = Tape::new();
    let _ = var(&tape, &[2, 3]) + var(&tape, &[4, 3]);
}

#[test]
#[should_panic(expected = "mul: cannot broadcast shapes [3] and [4]")]
fn mul_of_unbroadcastable_shapes() {
    let tape = Tape::new();
    let _ = var(&tape, &[3]) * var(&tape, &[4]);
}

#[test]
#[should_panic(expected = "reshape: cannot reshape [2, 3] into [4, 2]")]
fn reshape_to_another_size() {
    let tape = Tape::new();
    let _ = var(&tape, &[2, 3]).reshape(&[4, 2]);
}

#[test]
#[should_panic(expected = "linear: input [2, 3] does not fit weight [4, 5]")]
fn linear_with_the_wrong_weight() {
    let tape = Tape::new();
    let _ = var(&tape, &[2, 3]).linear(&var(&tape, &[4, 5]), None);
}

#[test]
#[should_panic(expected = "concat: shapes [2, 3] and [3, 3] differ outside axis 1")]
fn concat_of_mismatched_shapes() {
    let tape = Tape::new();
    let _ = Var::concat(&[&var(&tape, &[2, 3]), &var(&tape, &[3, 3])], 1);
}

#[test]
#[should_panic(expected = "sum: axis 2 is out of range for shape [2, 3]")]
fn reduction_over_a_missing_axis() {
    let tape = Tape::new();
    let _ = var(&tape, &[2, 3]).sum_axis(2, false);
}

#[test]
#[should_panic(expected = "cross_entropy: label 10 is out of range for 10 classes")]
fn cross_entropy_with_a_label_out_of_range() {
    let tape = Tape::new();
    let logits = tape.var(Array2::<f32>::zeros((2, 10)));
    let _ = loss::cross_entropy(&logits, &[3, 10], Reduction::Mean);
}

#[test]
#[should_panic(expected = "mse: prediction shape [2, 3] does not match target shape [3, 2]")]
fn loss_of_mismatched_shapes() {
    let tape = Tape::new();
    let _ = loss::mse(&var(&tape, &[2, 3]), &var(&tape, &[3, 2]), Reduction::Mean);
}

#[test]
#[should_panic(expected = "slice: range 2..5 is out of bounds for axis 1 of shape [2, 3]")]
fn slice_out_of_bounds() {
    let tape = Tape::new();
    let _ = var(&tape, &[2, 3]).slice(1, 2..5);
}

#[test]
#[should_panic(expected = "BatchNorm: momentum 1.5 is outside [0, 1]")]
fn batch_norm_momentum_past_one() {
    let _ = nn_core::layers::BatchNorm::<f32, 4>::new(1.5, 1e-5);
}
