//! Models may take any name, including those of the generic parameters and
//! types the generated code uses (`R`, `T`, `Tape`, `Var`, `Result`,
//! `Option`): every path the macro writes is absolute. Each is also nested in
//! another, and the whole runs on both paths.

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

sequential! {
    pub struct R: input(4) {
        Dense(4, activation = tanh),
    }
}

sequential! {
    pub struct T: input(4) {
        Residual { Dense(4) },
    }
}

sequential! {
    pub struct Tape: input(4) {
        R,
        T,
    }
}

sequential! {
    pub struct Var: input(4) {
        // `Tape` alone is the built-in `Tape(..)` layer: a path names yours.
        self::Tape,
        Residual(shortcut = Dense(2)) { Dense(2) },
    }
}

sequential! {
    pub struct Result: input(4) {
        Var -> (2),
    }
}

sequential! {
    pub struct Option: input(4) {
        inner: Result -> (2),
        Dense(1),
    }
}

#[test]
fn models_may_take_the_names_the_generated_code_uses() {
    let mut model = Option::with_seed(0);
    let x = ArrayD::from_elem(IxDyn(&[3, 4]), 0.5f32);
    let y = model.forward_train(x.view()).to_owned();
    model.backward(y.view());
    let tape = nn::Tape::<f32>::new();
    let z = model.forward(&tape.constant(x.clone())).value();
    assert_eq!(y.shape(), &[3, 1]);
    assert!((&y - &z).iter().all(|d| d.abs() < 1e-5));
    println!("{}", model.summary().expanded());
}
