use nn::prelude::*;

sequential! {
    /// A block taking 32 features.
    pub struct Block: input(32) {
        Dense(32, activation = relu),
    }
}

sequential! {
    pub struct Net: input(784) {
        Dense(64, activation = relu),
        block: Block,
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
