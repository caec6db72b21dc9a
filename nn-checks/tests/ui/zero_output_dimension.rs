use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(128),
        self::Scale(128) -> (0),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
