use nn::prelude::*;

sequential! {
    #[dtype(f16)]
    pub struct Mlp: input(784) {
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
