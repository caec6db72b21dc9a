use nn::prelude::*;

sequential! {
    pub struct Cnn: input(1, 28, 28) {
        Conv2d(8, kernel = 3),
        AvgPool2d(2, padding = "same"),
        Flatten,
        Dense(10),
    }
}

fn main() {
    let model = Cnn::with_seed(0);
    println!("{}", model.summary());
}
