//! Every way to write an activation compiles against the runtime's types and
//! runs: all of Keras's names bare, with arguments, as strings, in the Keras
//! activation layers; and the shapes the macro infers (`glu` halves an axis)
//! are the ones the layers compute, on both paths.

use nn::ndarray::{ArrayD, Dimension, IxDyn};
use nn::prelude::*;

sequential! {
    #[dtype(f64)]
    pub struct Every: input(8) {
        Dense(8, activation = celu),
        Dense(8, activation = elu),
        Dense(8, activation = exponential),
        Dense(8, activation = gelu),
        Dense(8, activation = hard_shrink),
        Dense(8, activation = hard_sigmoid),
        Dense(8, activation = hard_silu),
        Dense(8, activation = hard_swish),
        Dense(8, activation = hard_tanh),
        Dense(8, activation = leaky_relu),
        Dense(8, activation = linear),
        Dense(8, activation = log_sigmoid),
        Dense(8, activation = log_softmax),
        Dense(8, activation = mish),
        Dense(8, activation = relu),
        Dense(8, activation = relu6),
        Dense(8, activation = selu),
        Dense(8, activation = sigmoid),
        Dense(8, activation = silu),
        Dense(8, activation = soft_shrink),
        Dense(8, activation = softmax),
        Dense(8, activation = softplus),
        Dense(8, activation = softsign),
        Dense(8, activation = sparse_plus),
        Dense(8, activation = sparse_sigmoid),
        Dense(8, activation = sparsemax),
        Dense(8, activation = squareplus),
        Dense(8, activation = swish),
        Dense(8, activation = tanh),
        Dense(8, activation = tanh_shrink),
        Dense(8, activation = "squareplus"),
        Dense(8, activation = nn::activation::tanh),
        // Arguments, by name, with Keras's defaults for the others.
        Dense(8, activation = leaky_relu(negative_slope = 0.1)),
        Dense(8, activation = elu(alpha = 0.5)),
        Dense(8, activation = celu(alpha = 2)),
        Dense(8, activation = hard_shrink(threshold = 0.25)),
        Dense(8, activation = soft_shrink(threshold = 0.25)),
        Dense(8, activation = squareplus(b = 1.0)),
        Dense(8, activation = gelu(approximate = true)),
        Dense(8, activation = log_softmax(axis = -1)),
        Activation(relu(max_value = 6.0)),
        Activation(relu(negative_slope = 0.1, max_value = None, threshold = -1)),
        Activation(threshold(threshold = 0.5, default_value = -1.0)),
        Activation(softmax(axis = 1)),
        Activation(sparsemax(axis = -1)),
        Activation("relu"),
        // Keras's activation layers take the same arguments.
        ReLU,
        ReLU(6.0),
        ReLU(max_value = 6.0, negative_slope = 0.01),
        LeakyReLU,
        LeakyReLU(0.1),
        ELU(alpha = 0.5),
        Softmax(axis = -1),
        // `glu` halves the last axis: 8 → 4, then 4 → 2.
        Dense(8, activation = glu),
        Activation(glu(axis = -1)),
        Dense(3),
    }
}

sequential! {
    /// `glu` after a convolution halves the last axis of (channels, height, width).
    #[dtype(f64)]
    pub struct ConvGlu: input(1, 6, 6) {
        Conv2d(4, kernel = 3, activation = glu),
        Activation(glu(axis = 1)),
        Flatten,
    }
}

fn check<M: Model<f64>>(mut model: M, input: &[usize], expected: &[usize]) {
    let mut shape = vec![2];
    shape.extend_from_slice(input);
    let x = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        (i.slice().iter().sum::<usize>() % 7) as f64 / 7.0 - 0.4
    });
    let mut want = vec![2];
    want.extend_from_slice(expected);
    let predicted = model.predict(x.view());
    assert_eq!(predicted.shape(), &want[..], "predict");
    let trained = model.forward_train(x.view()).to_owned();
    assert_eq!(trained.shape(), &want[..], "static forward");
    let taped = model
        .forward(&Tape::<f64>::new().constant(x.clone()))
        .value();
    assert_eq!(taped.shape(), &want[..], "tape forward");
    assert!(taped.iter().all(|v| v.is_finite()));
}

#[test]
fn every_activation_syntax_compiles_and_runs_on_both_paths() {
    assert_eq!(Every::OUTPUT_SHAPE, &[3]);
    check(Every::with_seed(0), Every::INPUT_SHAPE, Every::OUTPUT_SHAPE);
    // Conv: (4, 4, 4) → glu on the last axis (4, 4, 2) → glu on channels (2, 4, 2).
    assert_eq!(ConvGlu::OUTPUT_SHAPE, &[16]);
    check(
        ConvGlu::with_seed(0),
        ConvGlu::INPUT_SHAPE,
        ConvGlu::OUTPUT_SHAPE,
    );
}
