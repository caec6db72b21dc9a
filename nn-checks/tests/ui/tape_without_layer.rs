use nn::prelude::*;

sequential! {
    pub struct Model: input(4) {
        Dense(8),
        Tape(8),
    }
}

fn main() {}
