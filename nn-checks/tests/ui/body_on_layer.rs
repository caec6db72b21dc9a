use nn::prelude::*;

sequential! {
    pub struct Mlp: input(64) {
        Dense(64) { ReLU },
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
