use nn::prelude::*;

sequential! {
    pub struct Net: input(1, 28, 28) {
        Conv2d(16, kernal = 3),
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
