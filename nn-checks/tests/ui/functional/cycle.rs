use nn::functional;

// `a` reads `b`, which is computed from `a`: a cycle, which the order of the
// statements rules out.
functional! {
    pub struct Net(x: input(4)) -> (a) {
        let a = Dense(4)(b);
        let b = Dense(4)(x);
    }
}

fn main() {}
