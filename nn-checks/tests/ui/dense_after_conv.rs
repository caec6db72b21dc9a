use nn::prelude::*;

sequential! {
    pub struct Mlp: input(1, 28, 28) {
        Conv2d(8, kernel = 3, padding = "same", activation = relu),
        MaxPool2d(2),
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
