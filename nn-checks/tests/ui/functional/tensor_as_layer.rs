use nn::functional;

functional! {
    pub struct Net(x: input(4)) -> (y) {
        let h = Dense(4)(x);
        let y = h(x);
    }
}

fn main() {}
