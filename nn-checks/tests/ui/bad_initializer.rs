use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(128, kernel_init = glorot_unifrom),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
