use nn::prelude::*;

sequential! {
    /// A block mapping 64 features to 16.
    pub struct Block: input(64) {
        Dense(16, activation = relu),
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
