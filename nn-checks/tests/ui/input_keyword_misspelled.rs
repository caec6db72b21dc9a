use nn::prelude::*;

sequential! {
    pub struct Mlp: inputs(784) {
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
