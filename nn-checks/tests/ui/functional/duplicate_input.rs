use nn::functional;

functional! {
    pub struct Net(x: input(4), x: input(8)) -> (y) {
        let y = Dense(2)(x);
    }
}

fn main() {}
