use nn::functional;

functional! {
    pub struct Net(a: input(4), b: input(8)) -> (y) {
        let y = Concatenate(axis = 2)(a, b);
    }
}

fn main() {}
