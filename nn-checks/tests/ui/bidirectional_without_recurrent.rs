use nn::prelude::*;

sequential! {
    pub struct Rows: input(28, 28) {
        Bidirectional(Dense(64)),
        Dense(10),
    }
}

fn main() {
    let _ = Rows::with_seed(0);
}
