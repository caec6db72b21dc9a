use nn::prelude::*;

sequential! {
    pub struct Net: input(1, 28, 28) {
        Conv2d(8, kernel = 3),
        BatchNorm(momentum = 1.5),
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
