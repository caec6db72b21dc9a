use nn::prelude::*;

sequential! {
    pub struct Tagger: input(16) {
        Embedding(1000, 8, padding_idx = 1000),
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Tagger::with_seed(0);
    println!("{}", model.summary());
}
