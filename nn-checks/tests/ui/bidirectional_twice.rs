use nn::prelude::*;

sequential! {
    pub struct Rows: input(28, 28) {
        Bidirectional(LSTM(64, bidirectional = false)),
        Dense(10),
    }
}

fn main() {
    let _ = Rows::with_seed(0);
}
