use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(99999999999999999999999),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
