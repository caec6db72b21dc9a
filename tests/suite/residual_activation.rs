//! `Residual(activation = ..) { .. }`: the activation applied to the block's
//! sum, `y = relu(x + f(x))` as torchvision's `BasicBlock` ends, plain `relu`
//! inside the addition's own pass. The expected values are those of the same
//! model written `Residual { .. }, ReLU` (two layers), which the fused block
//! must reproduce bit for bit, and the tape's (checked against PyTorch and
//! finite differences in nn-core's tests).

use crate::common;

use nn::prelude::*;

use common::paths::{paths_agree, same_bits};

sequential! {
    /// Two residual blocks ending in `relu`, one with a projection.
    pub struct Fused: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        Residual(activation = relu) {
            Conv2d(4, kernel = 3, padding = "same"), BatchNorm(activation = relu),
            Conv2d(4, kernel = 3, padding = "same"), BatchNorm,
        },
        Residual(shortcut = Conv2d(6, kernel = 1, stride = 2), activation = relu) {
            Conv2d(6, kernel = 3, stride = 2, padding = 1), BatchNorm,
        },
        GlobalAvgPool,
        Dense(3),
    }
}

sequential! {
    /// [`Fused`] with `ReLU` layers after the blocks.
    pub struct Split: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        Residual {
            Conv2d(4, kernel = 3, padding = "same"), BatchNorm(activation = relu),
            Conv2d(4, kernel = 3, padding = "same"), BatchNorm,
        },
        ReLU,
        Residual(shortcut = Conv2d(6, kernel = 1, stride = 2)) {
            Conv2d(6, kernel = 3, stride = 2, padding = 1), BatchNorm,
        },
        ReLU,
        GlobalAvgPool,
        Dense(3),
    }
}

sequential! {
    /// Other activations: through the generic path (a capped `relu` is not
    /// plain `relu`; `glu` halves the last axis, 8 features to 4).
    #[dtype(f64)]
    pub struct Others: input(8) {
        Dense(8, activation = tanh),
        Residual(activation = tanh) { Dense(8, activation = elu), Dense(8) },
        Residual(activation = relu(max_value = 0.5)) { Dense(8) },
        Residual(activation = glu) { Dense(8, activation = softplus) },
        Dense(3),
    }
}

sequential! {
    /// [`Others`] with separate activation layers.
    #[dtype(f64)]
    pub struct OthersSplit: input(8) {
        Dense(8, activation = tanh),
        Residual { Dense(8, activation = elu), Dense(8) },
        Activation("tanh"),
        Residual { Dense(8) },
        Activation(relu(max_value = 0.5)),
        Residual { Dense(8, activation = softplus) },
        Activation("glu"),
        Dense(3),
    }
}

sequential! {
    /// [`Fused`] in `f64`, for the paths' agreement at 1e-12.
    #[dtype(f64)]
    pub struct FusedF64: input(3, 6, 6) {
        Conv2d(4, kernel = 3, padding = "same"),
        Residual(activation = relu) {
            Conv2d(4, kernel = 3, padding = "same"), BatchNorm(activation = relu),
            Conv2d(4, kernel = 3, padding = "same"), BatchNorm,
        },
        GlobalAvgPool,
        Dense(3),
    }
}

#[test]
fn a_relu_block_is_the_block_then_relu_bit_for_bit() {
    // 16 samples of 4 × 6 × 6: the sums' vector loop and its tail.
    same_bits(Fused::with_seed(3), Split::with_seed(3), &[16, 3, 6, 6]);
    same_bits(Fused::with_seed(4), Split::with_seed(4), &[1, 3, 6, 6]);
}

#[test]
fn other_activations_are_the_block_then_the_activation() {
    assert_eq!(
        Layer::output_shape(&Others::with_seed(0), &[8]),
        Ok(vec![3])
    );
    same_bits(Others::with_seed(5), OthersSplit::with_seed(5), &[6, 8]);
}

#[test]
fn both_paths_agree_with_an_activation() {
    paths_agree(|| FusedF64::with_seed(1), &[6, 3, 6, 6], 1e-12);
    paths_agree(|| Others::with_seed(2), &[6, 8], 1e-12);
    paths_agree(|| Fused::with_seed(1), &[6, 3, 6, 6], 1e-5);
}

#[test]
fn the_activation_adds_no_parameters_and_keeps_the_names() {
    let (fused, split) = (Fused::with_seed(0), Split::with_seed(0));
    assert_eq!(fused.param_count(), split.param_count());
    let names = |m: Vec<(String, Param<f32>)>| m.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(fused.named_params()), names(split.named_params()));
    assert_eq!(names(fused.named_buffers()), names(split.named_buffers()));
}
