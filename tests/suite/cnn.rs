//! Convolutional models: the static and tape paths agree on a CNN using every
//! image layer (f64 to 1e-12), shapes are computed at expansion time, and
//! running statistics behave as PyTorch's.

use std::collections::BTreeMap;

use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;

sequential! {
    /// Every image layer, both pooling kinds, both normalizations, dropout.
    #[dtype(f64)]
    pub struct EveryImageLayer: input(2, 9, 8) {
        Conv2d(4, kernel = 3, padding = "same", activation = relu),
        BatchNorm,
        MaxPool2d(2),
        Conv2d(3, kernel = (2, 3), stride = (1, 2), padding = 1, dilation = (2, 1), activation = tanh),
        AvgPool2d(2, stride = 1),
        LayerNorm,
        Dropout(0.3),
        Conv2d(5, kernel = 1, use_bias = false),
        GlobalAvgPool,
        Dense(3, activation = softmax),
    }
}

sequential! {
    /// Flatten after convolution, valid padding, max pool with padding.
    #[dtype(f64)]
    pub struct Flattened: input(1, 7, 7) {
        Conv2d(2, kernel = 3, activation = elu),
        MaxPool2d(3, stride = 2, padding = 1),
        Flatten,
        BatchNorm,
        Dense(4),
    }
}

sequential! {
    /// Token indices in, through an embedding.
    #[dtype(f64)]
    pub struct Embedded: input(5) {
        Embedding(11, 4),
        LayerNorm,
        Flatten,
        Dense(3, activation = sigmoid),
    }
}

fn input(shape: &[usize], salt: usize) -> ArrayD<f64> {
    let mut k = salt;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        k = (k * 1103515245 + 12345) % 2147483648;
        (k % 2000) as f64 / 1000.0 - 1.0
    })
}

fn grads<M: Model<f64>>(m: &M) -> BTreeMap<String, ArrayD<f64>> {
    let mut out = BTreeMap::new();
    m.visit_params(&mut |n, p| {
        if let Some(g) = p.grad().as_ref() {
            out.insert(n.to_string(), g.clone());
        }
    });
    out
}

fn close(what: &str, a: &ArrayD<f64>, b: &ArrayD<f64>) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    for (x, y) in a.iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            "{what}: {x:e} vs {y:e}"
        );
    }
}

fn paths_agree<M: Model<f64>>(make: impl Fn() -> M, x: ArrayD<f64>) {
    let (mut a, b) = (make(), make());
    let tape = Tape::new();
    let out = b.forward(&tape.constant(x.clone()));
    let cot = input(&out.shape(), 7);
    out.backward_with(cot.clone());
    let y = a.forward_train(x.view()).to_owned();
    a.backward(cot.view());
    close("output", &y, &out.value());
    let (ga, gb) = (grads(&a), grads(&b));
    assert_eq!(ga.keys().collect::<Vec<_>>(), gb.keys().collect::<Vec<_>>());
    assert!(!ga.is_empty());
    for (k, g) in &ga {
        close(k, g, &gb[k]);
    }
    // Running statistics moved the same way on both paths.
    let (pa, pb) = (a.named_params(), b.named_params());
    for ((n, p), (_, q)) in pa.iter().zip(&pb) {
        close(n, &p.value(), &q.value());
    }
}

sequential! {
    /// Keras's MaxPooling2D(3, strides=2, padding="same") on 7 × 6.
    #[dtype(f64)]
    pub struct SamePool: input(1, 7, 6) {
        MaxPool2d(3, stride = 2, padding = "same"),
    }
}

/// TensorFlow's "same": ceil(7 / 2) = 4 rows and ceil(6 / 2) = 3 columns;
/// total padding (4 − 1)·2 + 3 − 7 = 2 rows (1 above, 1 below) and
/// (3 − 1)·2 + 3 − 6 = 1 column (0 left, 1 right); each output the maximum
/// of its window's inputs, the padding never chosen. The tape and the
/// static path give the same.
#[test]
fn max_pooling_with_same_padding_is_kerass() {
    let x = input(&[2, 1, 7, 6], 5);
    let y = SamePool::with_seed(0).predict(x.view());
    assert_eq!(y.shape(), [2, 1, 4, 3]);
    for n in 0..2 {
        for i in 0..4 {
            for j in 0..3 {
                let mut want = f64::NEG_INFINITY;
                for a in 0..3 {
                    for b in 0..3 {
                        let (r, c) = ((2 * i + a) as isize - 1, (2 * j + b) as isize);
                        if (0..7).contains(&r) && (0..6).contains(&c) {
                            want = want.max(x[[n, 0, r as usize, c as usize]]);
                        }
                    }
                }
                assert_eq!(y[[n, 0, i, j]], want, "({n}, {i}, {j})");
            }
        }
    }
    let mut model = SamePool::with_seed(0);
    let tape = Model::forward(&model, &Tape::new().constant(x.clone())).value();
    assert_eq!(tape, y);
    assert_eq!(model.forward_train(x.view()).to_owned(), y);
}

#[test]
fn static_and_tape_paths_agree_on_every_image_layer() {
    paths_agree(|| EveryImageLayer::with_seed(3), input(&[3, 2, 9, 8], 1));
    paths_agree(|| Flattened::with_seed(4), input(&[4, 1, 7, 7], 2));
    let tokens = ArrayD::from_shape_vec(
        IxDyn(&[3, 5]),
        (0..15).map(|i| ((i * 7) % 11) as f64).collect(),
    )
    .unwrap();
    paths_agree(|| Embedded::with_seed(5), tokens);
}

#[test]
fn image_shapes_are_computed_at_expansion() {
    let m = EveryImageLayer::with_seed(0);
    let shapes: Vec<Vec<usize>> = m
        .summary()
        .rows
        .iter()
        .map(|r| r.output_shape.clone())
        .collect();
    // same padding keeps 9x8; pool 2 → 4x4; kernel (2,3) dilation (2,1) stride (1,2) padding 1:
    // rows (4 + 2 - 3) / 1 + 1 = 4, cols (4 + 2 - 3) / 2 + 1 = 2; avg pool 2 stride 1 → 3x1.
    assert_eq!(
        shapes,
        vec![
            vec![4, 9, 8],
            vec![4, 9, 8],
            vec![4, 4, 4],
            vec![3, 4, 2],
            vec![3, 3, 1],
            vec![3, 3, 1],
            vec![3, 3, 1],
            vec![5, 3, 1],
            vec![5],
            vec![3]
        ]
    );
    // Conv 2·4·3·3 + 4 = 76; BN 2·4 trainable + 2·4 running; conv 4·3·2·3 + 3 = 75; LN 2·1; conv 3·5 = 15; dense 5·3 + 3 = 18.
    assert_eq!(EveryImageLayer::PARAM_COUNT, 76 + 8 + 75 + 2 + 15 + 18);
    assert_eq!(m.param_count(), EveryImageLayer::PARAM_COUNT);
    let s = m.summary();
    assert_eq!((s.trainable, s.non_trainable), (194, 8));
    assert!(s.to_string().contains("(None, 4, 9, 8)"));
}

#[test]
fn batch_norm_running_statistics_follow_pytorch() {
    // One training step from running (0, 1) with momentum 0.1: running_mean =
    // 0.1·batch_mean, running_var = 0.9 + 0.1·unbiased batch variance (PyTorch's rule).
    let mut m = Flattened::with_seed(1);
    let x = input(&[4, 1, 7, 7], 9);
    m.forward_train(x.view());
    let h = m.flatten.output().to_owned();
    let n = h.shape()[0] as f64;
    let mean = h.mean_axis(nn::ndarray::Axis(0)).unwrap();
    let var = h.var_axis(nn::ndarray::Axis(0), 1.0);
    close(
        "running_mean",
        &m.batch_norm.running_mean.value(),
        &(&mean * 0.1).into_dyn(),
    );
    close(
        "running_var",
        &m.batch_norm.running_var.value(),
        &(var.mapv(|v| 0.9 + 0.1 * v)).into_dyn(),
    );
    assert_eq!(n, 4.0);
    // Evaluation uses the running statistics: predict differs from the training output.
    m.eval();
    let p = m.predict(x.view());
    let t = m.forward_train(x.view()).to_owned();
    close("eval forward_train = predict", &t, &p);
}

#[test]
fn predicting_no_samples_gives_outputs_of_no_rows() {
    // Convolution, both poolings, both norms, dropout and flatten take an
    // empty batch, as PyTorch's modules do; the outputs keep their shapes.
    let none = |shape: &[usize]| ArrayD::<f64>::zeros(IxDyn(shape));
    let mut image = EveryImageLayer::with_seed(3);
    let one = image.predict(none(&[1, 2, 9, 8]).view());
    let out = nn::train::predict(&mut image, none(&[0, 2, 9, 8]).view(), 4);
    assert_eq!((out.shape()[0], &out.shape()[1..]), (0, &one.shape()[1..]));
    let mut flat = Flattened::with_seed(3);
    let one = flat.predict(none(&[1, 1, 7, 7]).view());
    let out = nn::train::predict(&mut flat, none(&[0, 1, 7, 7]).view(), 4);
    assert_eq!((out.shape()[0], &out.shape()[1..]), (0, &one.shape()[1..]));
}
