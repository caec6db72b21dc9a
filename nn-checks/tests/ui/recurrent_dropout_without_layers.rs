use nn::prelude::*;

sequential! {
    pub struct Rows: input(28, 28) {
        LSTM(64, dropout = 0.2),
        Dense(10),
    }
}

fn main() {
    let _ = Rows::with_seed(0);
}
