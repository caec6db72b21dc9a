//! A layer of your own written without `(..)` is taken for a nested model;
//! the compiler says how to call its constructor instead.

use nn::layers::Identity;
use nn::prelude::*;

sequential! {
    pub struct Net: input(16) {
        Identity<f32>,
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
