use nn::functional;

functional! {
    pub struct Net(x: input(4)) -> (y) {
        let h = Dense(4, activation = relu)(x);
        let y = Dense(2)(x);
    }
}

fn main() {}
