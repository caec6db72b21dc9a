use nn::prelude::*;

sequential! {
    pub struct Net: input(64) {
        Dense(64),
        Residual,
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
