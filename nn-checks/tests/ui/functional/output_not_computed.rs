use nn::functional;

functional! {
    pub struct Net(x: input(4)) -> (out) {
        let y = Dense(2)(x);
    }
}

fn main() {}
