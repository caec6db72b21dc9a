use nn::prelude::*;

sequential! {
    pub struct Tokens: input(16, 64) {
        MultiHeadAttention(key_dim = 16),
        GlobalAvgPool1d,
        Dense(10),
    }
}

fn main() {
    let _ = Tokens::with_seed(0);
}
