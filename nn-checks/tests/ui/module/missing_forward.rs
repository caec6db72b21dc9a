use nn::layers::Dense;
use nn::prelude::*;

/// Trains with `fit` through its `forward`, which was forgotten.
#[derive(Module)]
struct Net {
    head: Dense<f32, 4, 2>,
}

fn main() {}
