use nn::prelude::*;

sequential! {
    pub struct Mlp: input(1, 28, 28) {
        Conv2d(8, kernel = 5, activation = relu),
        MaxPool2d(2),
        Conv2d(16, kernel = 5),
        MaxPool2d(2),
        Conv2d(16, kernel = 5),
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Mlp::with_seed(0);
    println!("{}", model.summary());
}
