use nn::functional;

// The layers' own checks apply as in `sequential!`: `Conv2d` needs an image.
functional! {
    pub struct Net(x: input(4)) -> (y) {
        let y = Conv2d(8, kernel = 3)(x);
    }
}

fn main() {}
