use nn::prelude::*;

sequential! {
    pub struct Vit: input(28, 28) {
        Patches(5),
        Dense(64),
        GlobalAvgPool1d,
        Dense(10),
    }
}

fn main() {
    let _ = Vit::with_seed(0);
}
