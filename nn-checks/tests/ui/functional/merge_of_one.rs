use nn::functional;

functional! {
    pub struct Net(x: input(4)) -> (y) {
        let y = Add(x);
    }
}

fn main() {}
