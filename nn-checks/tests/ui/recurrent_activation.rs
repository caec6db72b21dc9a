use nn::prelude::*;

sequential! {
    pub struct Rows: input(28, 28) {
        SimpleRNN(32, activation = sigmoid),
        Dense(10),
    }
}

fn main() {
    let _ = Rows::with_seed(0);
}
