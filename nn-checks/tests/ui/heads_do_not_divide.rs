use nn::prelude::*;

sequential! {
    pub struct Vit: input(28, 28) {
        Patches(7),
        Dense(50),
        TransformerEncoder(heads = 4, dim_feedforward = 100),
        GlobalAvgPool1d,
        Dense(10),
    }
}

fn main() {
    let _ = Vit::with_seed(0);
}
