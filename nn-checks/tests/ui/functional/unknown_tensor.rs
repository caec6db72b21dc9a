use nn::functional;

functional! {
    pub struct Net(image: input(784)) -> (y) {
        let hidden = Dense(64, activation = relu)(image);
        let y = Dense(10)(hiden);
    }
}

fn main() {}
