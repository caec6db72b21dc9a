use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(10, activation = softmax(axis = 2)),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
