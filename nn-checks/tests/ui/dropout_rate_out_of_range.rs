use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Dense(128, activation = relu),
        Dropout(1.5),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
