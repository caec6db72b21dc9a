use nn::prelude::*;

sequential! {
    pub struct Mlp: input(1, 0, 28) {
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
