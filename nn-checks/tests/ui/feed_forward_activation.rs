use nn::prelude::*;

sequential! {
    pub struct Tokens: input(16, 64) {
        TransformerEncoder(heads = 4, activation = tanh),
        GlobalAvgPool1d,
        Dense(10),
    }
}

fn main() {
    let _ = Tokens::with_seed(0);
}
