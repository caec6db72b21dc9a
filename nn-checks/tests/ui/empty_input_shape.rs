use nn::prelude::*;

sequential! {
    pub struct Mlp: input() {
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
