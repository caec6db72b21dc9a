//! `summary()` in Keras 3's layout, with Keras's parameter counts:
//! Dense(784 → 128) has 784·128 + 128 = 100,480 parameters, Dense(128 → 10)
//! 128·10 + 10 = 1,290, 101,770 in all; 101,770 × 4 bytes = 397.54 KB.

use nn::prelude::*;

sequential! {
    /// A perceptron for MNIST.
    pub struct Mlp: input(784) {
        hidden: Dense(128, activation = relu),
        Dropout(0.2),
        Dense(10),
        Activation("softmax"),
    }
}

const EXPECTED: &str = "\
Model: \"mlp\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ hidden (Dense)                  │ (None, 128)            │       100,480 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dropout (Dropout)               │ (None, 128)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 10)             │         1,290 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ activation (Activation)         │ (None, 10)             │             0 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 101,770 (397.54 KB)
 Trainable params: 101,770 (397.54 KB)
 Non-trainable params: 0 (0.00 B)";

#[test]
fn summary_matches_keras_layout_and_counts() {
    let model = Mlp::with_seed(0);
    assert_eq!(model.summary().to_string(), EXPECTED);
}

#[test]
fn parameter_counts_agree_at_compile_time_and_run_time() {
    const { assert!(Mlp::PARAM_COUNT == 101_770) };
    assert_eq!(Mlp::with_seed(0).param_count(), 101_770);
    assert_eq!(Mlp::INPUT_SHAPE, &[784]);
    assert_eq!(Mlp::OUTPUT_SHAPE, &[10]);
}

#[test]
fn construction_is_reproducible_from_the_seed_and_uses_keras_defaults() {
    let (a, b, c) = (Mlp::with_seed(5), Mlp::with_seed(5), Mlp::with_seed(6));
    assert_eq!(*a.hidden.weight.value(), *b.hidden.weight.value());
    assert_ne!(*a.hidden.weight.value(), *c.hidden.weight.value());
    // glorot_uniform kernel: |w| ≤ √(6 / (784 + 128)); zero bias.
    let limit = (6.0f32 / 912.0).sqrt();
    assert!(a.hidden.weight.value().iter().all(|w| w.abs() <= limit));
    assert!(a
        .hidden
        .bias
        .as_ref()
        .unwrap()
        .value()
        .iter()
        .all(|&b| b == 0.0));
    let mut rng = <nn::rand::rngs::StdRng as nn::rand::SeedableRng>::seed_from_u64(5);
    let d = Mlp::new(&mut rng);
    assert_eq!(*a.hidden.weight.value(), *d.hidden.weight.value());
}
