use nn::prelude::*;

#[derive(Module)]
enum Net {
    A,
    B,
}

fn main() {}
