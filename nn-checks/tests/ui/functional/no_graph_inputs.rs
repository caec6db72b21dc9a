use nn::functional;

functional! {
    pub struct Net() -> (y) {
        let y = Dense(2)(x);
    }
}

fn main() {}
