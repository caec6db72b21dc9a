use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(10),
        Activation,
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
