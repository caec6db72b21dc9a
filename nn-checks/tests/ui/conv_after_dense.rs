use nn::prelude::*;

sequential! {
    pub struct Net: input(1, 28, 28) {
        Flatten,
        Dense(128, activation = relu),
        Conv2d(4, kernel = 3),
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
