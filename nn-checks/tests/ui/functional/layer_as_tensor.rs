use nn::functional;

functional! {
    pub struct Net(x: input(4)) -> (y) {
        let shared = Dense(4);
        let y = Dense(2)(shared);
    }
}

fn main() {}
