use nn::prelude::*;

sequential! {
    pub struct Mlp {
        Dense(128, activation = relu),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
