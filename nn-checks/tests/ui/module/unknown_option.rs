use nn::layers::Dense;
use nn::prelude::*;

#[derive(Module)]
#[module(dtype = f64, frozen)]
struct Net {
    head: Dense<f64, 4, 2>,
}

impl Net {
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        self.head.forward(x)
    }
}

fn main() {}
