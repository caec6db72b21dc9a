use nn::functional;

functional! {
    pub struct Net(a: input(4), b: input(8)) -> (y, z) {
        let shared = Dense(2);
        let y = shared(a);
        let z = shared(b);
    }
}

fn main() {}
