use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        hidden: Dense(128, activation = relu),
        hidden: Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
