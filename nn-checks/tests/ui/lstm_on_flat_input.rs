use nn::prelude::*;

sequential! {
    pub struct Rows: input(784) {
        LSTM(128),
        Dense(10),
    }
}

fn main() {
    let _ = Rows::with_seed(0);
}
