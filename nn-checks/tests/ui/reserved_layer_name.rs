use nn::prelude::*;

sequential! {
    pub struct Net: input(64) {
        Residual {
            shortcut: Dense(64, activation = relu),
        },
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
