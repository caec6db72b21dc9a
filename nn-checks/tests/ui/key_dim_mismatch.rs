use nn::prelude::*;

sequential! {
    pub struct Tokens: input(16, 64) {
        MultiHeadAttention(heads = 4, key_dim = 32),
        GlobalAvgPool1d,
        Dense(10),
    }
}

fn main() {
    let _ = Tokens::with_seed(0);
}
