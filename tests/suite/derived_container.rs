//! A derived struct that only holds parts (`#[module(no_forward)]`) needs no
//! `forward` and still names its parameters.

use nn::layers::Dense;
use nn::prelude::*;

#[derive(Module)]
#[module(no_forward)]
struct Encoder {
    #[module(skip)]
    lr: f64,
    layers: Vec<Dense<f32, 4, 4>>,
}

#[test]
fn a_container_without_forward_names_its_parameters() {
    let mut rng = <nn::rand::rngs::StdRng as nn::rand::SeedableRng>::seed_from_u64(0);
    let enc = Encoder {
        lr: 0.5,
        layers: vec![Dense::init(&mut rng), Dense::init(&mut rng)],
    };
    let mut names = Vec::new();
    enc.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.1.weight",
            "layers.1.bias"
        ]
    );
    assert_eq!(enc.lr, 0.5);
}
