use nn::functional;

functional! {
    pub struct Net(a: input(4), b: input(4)) -> (y) {
        let y = Dense(2)(a, b);
    }
}

fn main() {}
