use nn::functional;

functional! {
    pub struct Net(a: input(4), b: input(8)) -> (y) {
        let y = Add(a, b);
    }
}

fn main() {}
