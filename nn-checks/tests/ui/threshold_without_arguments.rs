use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(128),
        Activation(threshold),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
