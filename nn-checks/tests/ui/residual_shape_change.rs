use nn::prelude::*;

sequential! {
    pub struct Net: input(16, 8, 8) {
        Residual(activation = relu) {
            Conv2d(32, kernel = 3, stride = 2, padding = 1, activation = relu),
            Conv2d(32, kernel = 3, padding = "same"),
        },
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Net::with_seed(0);
    println!("{}", model.summary());
}
