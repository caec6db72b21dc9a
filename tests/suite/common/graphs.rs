//! A `functional!` graph of two inputs and two outputs, and deterministic
//! values to train it on, shared by the graph training tests.

use nn::ndarray::{ArrayD, Dimension, IxDyn};
use nn::prelude::*;

functional! {
    /// A classifier and a regression head on two inputs.
    #[dtype(f64)]
    pub struct TwoHeads(a: input(3), b: input(2)) -> (label, value) {
        let ha = Dense(5, activation = tanh)(a);
        let hb = Dense(5, activation = tanh)(b);
        let h = Concatenate(ha, hb);
        let label = Dense(3, activation = softmax)(h);
        let value = Dense(1)(hb);
    }
}

/// Deterministic values in [-1, 1) of `shape`, varied by `salt`.
pub fn values(shape: &[usize], salt: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let k: usize = i
            .slice()
            .iter()
            .enumerate()
            .map(|(a, &b)| (a + 2 + salt) * (b + 1))
            .sum();
        ((k * 29 + salt) % 13) as f64 / 6.0 - 1.0
    })
}
