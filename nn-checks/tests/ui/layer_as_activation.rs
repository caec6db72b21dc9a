use nn::prelude::*;

sequential! {
    pub struct Net: input(8) {
        Residual(activation = ReLU) { Dense(8) },
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
