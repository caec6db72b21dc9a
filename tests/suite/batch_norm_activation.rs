//! `BatchNorm(activation = ..)`: the activation applied to batch norm's
//! output, plain `relu` inside batch norm's own passes. The expected values
//! are those of the same model written `BatchNorm, ReLU` (two layers), which
//! the fused layer must reproduce bit for bit, and the tape's (checked
//! against PyTorch and finite differences in nn-core's tests).

use crate::common;

use nn::prelude::*;

use common::paths::paths_agree;

sequential! {
    #[dtype(f64)]
    pub struct Fused: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm(activation = relu),
        Flatten,
        Dense(5),
        BatchNorm(activation = relu),
        Dense(3),
    }
}

sequential! {
    #[dtype(f64)]
    pub struct Split: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm,
        ReLU,
        Flatten,
        Dense(5),
        BatchNorm,
        ReLU,
        Dense(3),
    }
}

sequential! {
    pub struct FusedF32: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm(activation = relu),
        Flatten,
        Dense(3),
    }
}

sequential! {
    #[dtype(f64)]
    pub struct Tanh: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm(activation = tanh, momentum = 0.2),
        Flatten,
        Dense(3),
    }
}

sequential! {
    #[dtype(f64)]
    pub struct TanhSplit: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm(momentum = 0.2),
        Activation("tanh"),
        Flatten,
        Dense(3),
    }
}

sequential! {
    #[dtype(f64)]
    pub struct Glu: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm(activation = glu),
        Flatten,
        Dense(3),
    }
}

sequential! {
    #[dtype(f64)]
    pub struct GluSplit: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        BatchNorm,
        Activation("glu"),
        Flatten,
        Dense(3),
    }
}

/// Both models' steps on one batch give the same bits.
fn same_bits<A: Model<f64> + Layer<f64>, B: Model<f64> + Layer<f64>>(fused: A, split: B) {
    common::paths::same_bits(fused, split, &[8, 3, 6, 6]);
}

#[test]
fn fused_relu_is_batch_norm_then_relu_bit_for_bit() {
    same_bits(Fused::with_seed(3), Split::with_seed(3));
}

#[test]
fn other_activations_are_batch_norm_then_the_activation() {
    same_bits(Tanh::with_seed(5), TanhSplit::with_seed(5));
    // `glu` halves the last axis: 6 × 6 planes become 6 × 3.
    assert_eq!(
        Layer::output_shape(&Glu::with_seed(0), &[3, 6, 6]),
        Ok(vec![3])
    );
    same_bits(Glu::with_seed(6), GluSplit::with_seed(6));
}

#[test]
fn both_paths_agree_with_an_activation() {
    paths_agree(|| Fused::with_seed(1), &[6, 3, 6, 6], 1e-12);
    paths_agree(|| FusedF32::with_seed(1), &[6, 3, 6, 6], 1e-5);
    paths_agree(|| Tanh::with_seed(2), &[6, 3, 6, 6], 1e-12);
}

#[test]
fn summary_counts_the_same_parameters() {
    let (fused, split) = (Fused::with_seed(0), Split::with_seed(0));
    assert_eq!(fused.param_count(), split.param_count());
    assert_eq!(Layer::output_shape(&fused, &[3, 6, 6]), Ok(vec![3]));
}
