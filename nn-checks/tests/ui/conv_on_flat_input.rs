use nn::prelude::*;

sequential! {
    pub struct Mlp: input(784) {
        Conv2d(32, kernel = 3, activation = relu),
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
