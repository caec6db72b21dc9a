//! A warmed-up training step on the static path allocates nothing: a counting
//! global allocator sees zero allocations over many steps of dense,
//! convolutional, residual (with a nested model), recurrent, attention,
//! graph (`functional!`) and regression models with
//! each optimizer, including the worker threads that share the large matrix
//! products.
//!
//! Set `NN_ALLOC_TRACE=1` to print a backtrace for each allocation found.

#[path = "../nn-core/tests/counting/mod.rs"]
mod counting;

use counting::allocations_during;

use nn::ndarray::{ArrayD, IxDyn};
use nn::optim::{Adagrad, AdagradConfig};
use nn::prelude::*;
use nn::train::{Accuracy, Fit, Metric, TrainLoss};

sequential! {
    /// The MNIST perceptron: softmax output, fused with the cross-entropy.
    pub struct Mlp: input(784) {
        Dense(256, activation = relu),
        Dropout(0.2),
        Dense(10, activation = softmax),
    }
}

sequential! {
    /// torch_anchor's small_batch model: logits and cross-entropy.
    pub struct Small: input(64) {
        Dense(64, activation = tanh),
        Dense(64, activation = tanh),
        Dense(10),
    }
}

sequential! {
    /// Convolution, pooling, normalization, a separate activation layer.
    pub struct Cnn: input(1, 28, 28) {
        Conv2d(6, kernel = 5, padding = 2, activation = relu),
        MaxPool2d(2),
        Conv2d(16, kernel = 5),
        BatchNorm,
        Activation("relu"),
        AvgPool2d(2),
        Flatten,
        Dense(84, activation = gelu),
        Dense(10, activation = softmax),
    }
}

sequential! {
    /// Regression with layer normalization.
    pub struct Regressor: input(8) {
        Dense(32, activation = silu),
        LayerNorm,
        Dense(1),
    }
}

sequential! {
    /// A residual block of 8 channels, nested by name below.
    pub struct ResBlock: input(8, 14, 14) {
        Residual {
            Conv2d(8, kernel = 3, padding = "same"),
            BatchNorm,
            ReLU,
            Conv2d(8, kernel = 3, padding = "same"),
            BatchNorm,
        },
        ReLU,
    }
}

sequential! {
    /// A small ResNet: identity and projection shortcuts, a nested block,
    /// a block ending in its own `relu`.
    pub struct ResNet: input(1, 28, 28) {
        Conv2d(8, kernel = 3, stride = 2, padding = 1, activation = relu),
        ResBlock,
        Residual(shortcut = { Conv2d(16, kernel = 1, stride = 2), BatchNorm }, activation = relu) {
            Conv2d(16, kernel = 3, stride = 2, padding = 1),
            BatchNorm,
            ReLU,
            Conv2d(16, kernel = 3, padding = "same"),
            BatchNorm,
        },
        GlobalAvgPool,
        Dense(10, activation = softmax),
    }
}

sequential! {
    /// Sequences: stacked recurrent layers, both directions, the last output.
    pub struct Rows: input(12, 8) {
        GRU(16, return_sequences = true),
        Bidirectional(LSTM(32)),
        Dense(10, activation = softmax),
    }
}

sequential! {
    /// A small vision transformer with dropout: patches, attention, pooling.
    pub struct Vit: input(28, 28) {
        Patches(7),
        Dense(32),
        PositionalEmbedding,
        TransformerEncoder(heads = 4, dim_feedforward = 64, dropout = 0.1, activation = gelu, norm_first = true),
        MultiHeadAttention(heads = 2, causal = true),
        GlobalAvgPool1d,
        Dense(10),
    }
}

functional! {
    /// A graph: a layer applied twice, a tensor read three times, merges.
    pub struct Graph(x: input(16)) -> (y) {
        let shared = Dense(16, activation = tanh);
        let a = shared(x);
        let b = shared(a);
        let s = Add(a, b);
        let m = Maximum(a, b);
        let c = Concatenate(s, m);
        let y = Dense(10, activation = softmax)(c);
    }
}

functional! {
    /// Two inputs, two outputs.
    pub struct TwoOut(a: input(16), b: input(8)) -> (p, q) {
        let ha = Dense(8, activation = relu)(a);
        let h = Multiply(ha, b);
        let p = Dense(4)(h);
        let q = Dense(2)(ha);
    }
}

fn inputs(shape: &[usize]) -> ArrayD<f32> {
    let len = shape.iter().product();
    let values = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0);
    ArrayD::from_shape_vec(IxDyn(shape), values.collect()).expect("shape")
}

/// Warms up, then counts the allocations of `steps` further training steps:
/// exactly what `fit` does per batch.
fn steps_allocate<M: Fit<f32>>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    x: &ArrayD<f32>,
    target: &Target<'_, f32>,
    loss: Loss,
) -> usize {
    let loss = TrainLoss::from(loss);
    let mut step = |model: &mut M| {
        let value = model.train_batch(x.view(), target, &loss, &mut |_| {});
        assert!(value.is_finite());
        opt.step(model.parameters());
        opt.zero_grad(model.parameters());
    };
    for _ in 0..3 {
        step(model);
    }
    allocations_during(|| {
        for _ in 0..20 {
            step(model);
        }
    })
}

/// `fit`'s inner loop over one epoch of a shuffled dataset: next batch, step,
/// optimizer update. Allocations after the first batch (which sizes the buffers).
fn epoch_allocates(model: &mut Mlp, opt: &mut dyn Optimizer<f32>, data: &Dataset<f32>) -> usize {
    let mut batches = data.batches(32, Some(3), false);
    let loss = TrainLoss::from(Loss::SparseCategoricalCrossEntropy);
    let mut accuracy = Accuracy::new();
    let mut step = |x: nn::ndarray::ArrayViewD<'_, f32>, y: &Target<'_, f32>, model: &mut Mlp| {
        // The metric `fit` reports by default updates inside the step, as in `fit`.
        model.train_batch(x, y, &loss, &mut |out| {
            Metric::<f32>::update(&mut accuracy, out, y)
        });
        opt.step(model.parameters());
        opt.zero_grad(model.parameters());
    };
    let (x, y) = batches.next_batch().expect("a batch");
    step(x, &y, model);
    allocations_during(|| {
        while let Some((x, y)) = batches.next_batch() {
            step(x, &y, model);
        }
    })
}

#[test]
fn warmed_up_static_training_steps_allocate_nothing() {
    let labels: Vec<usize> = (0..64).map(|i| (i * 7) % 10).collect();

    // Batch 64 at 784 → 256: large enough that the products run on both cores.
    let mut mlp = Mlp::with_seed(0);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let x = inputs(&[64, 784]);
    let n = steps_allocate(
        &mut mlp,
        &mut adam,
        &x,
        &Target::Labels(&labels),
        Loss::SparseCategoricalCrossEntropy,
    );
    assert_eq!(n, 0, "MLP with Adam: {n} allocations in 20 steps");

    // Through the batch iterator, as `fit` drives it: 320 samples, 10 batches.
    let data = Dataset::new(inputs(&[320, 784]), (0..320).map(|i| i % 10).collect());
    let n = epoch_allocates(&mut mlp, &mut adam, &data);
    assert_eq!(n, 0, "an epoch of batches: {n} allocations");

    let mut small = Small::with_seed(0);
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        nesterov: true,
        ..Default::default()
    })
    .unwrap();
    let x = inputs(&[16, 64]);
    let n = steps_allocate(
        &mut small,
        &mut sgd,
        &x,
        &Target::Labels(&labels[..16]),
        Loss::CrossEntropy,
    );
    assert_eq!(n, 0, "small model with SGD: {n} allocations in 20 steps");

    let mut cnn = Cnn::with_seed(0);
    let mut adamw = AdamW::new(AdamWConfig::default()).unwrap();
    let x = inputs(&[32, 1, 28, 28]);
    let n = steps_allocate(
        &mut cnn,
        &mut adamw,
        &x,
        &Target::Labels(&labels[..32]),
        Loss::SparseCategoricalCrossEntropy,
    );
    assert_eq!(n, 0, "CNN with AdamW: {n} allocations in 20 steps");

    let mut resnet = ResNet::with_seed(0);
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 1e-4,
        ..Default::default()
    })
    .unwrap();
    let x = inputs(&[16, 1, 28, 28]);
    let n = steps_allocate(
        &mut resnet,
        &mut sgd,
        &x,
        &Target::Labels(&labels[..16]),
        Loss::SparseCategoricalCrossEntropy,
    );
    assert_eq!(n, 0, "residual CNN with SGD: {n} allocations in 20 steps");

    // Backpropagation through time and attention, in the layers' buffers.
    let mut rows = Rows::with_seed(0);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let x = inputs(&[32, 12, 8]);
    let n = steps_allocate(
        &mut rows,
        &mut adam,
        &x,
        &Target::Labels(&labels[..32]),
        Loss::SparseCategoricalCrossEntropy,
    );
    assert_eq!(
        n, 0,
        "GRU and bidirectional LSTM with Adam: {n} allocations in 20 steps"
    );

    let mut vit = Vit::with_seed(0);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let x = inputs(&[32, 28, 28]);
    let n = steps_allocate(
        &mut vit,
        &mut adam,
        &x,
        &Target::Labels(&labels[..32]),
        Loss::CrossEntropy,
    );
    assert_eq!(
        n, 0,
        "vision transformer with Adam: {n} allocations in 20 steps"
    );

    // Graphs: one input and output through `Fit`, two of each by hand.
    let mut graph = Graph::with_seed(0);
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let x = inputs(&[32, 16]);
    let n = steps_allocate(
        &mut graph,
        &mut adam,
        &x,
        &Target::Labels(&labels[..32]),
        Loss::SparseCategoricalCrossEntropy,
    );
    assert_eq!(
        n, 0,
        "functional graph with Adam: {n} allocations in 20 steps"
    );
    let mut two = TwoOut::with_seed(0);
    // Its own optimizer: its parameters' names are the graph's above.
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let (a, b) = (inputs(&[32, 16]), inputs(&[32, 8]));
    let (gp, gq) = (inputs(&[32, 4]), inputs(&[32, 2]));
    let mut step = |two: &mut TwoOut| {
        two.forward_train([a.view(), b.view()]);
        two.backward([gp.view(), gq.view()]);
        adam.step(&*two);
        adam.zero_grad(&*two);
    };
    for _ in 0..3 {
        step(&mut two);
    }
    let n = allocations_during(|| {
        for _ in 0..20 {
            step(&mut two);
        }
    });
    assert_eq!(
        n, 0,
        "two-output graph with Adam: {n} allocations in 20 steps"
    );

    // Regression, with every optimizer in its most involved setting.
    let x = inputs(&[32, 8]);
    let y = inputs(&[32, 1]);
    let optimizers: Vec<(&str, Box<dyn Optimizer<f32>>)> = vec![
        (
            "RMSprop centered with momentum",
            Box::new(
                RmsProp::new(RmsPropConfig {
                    centered: true,
                    momentum: 0.9,
                    weight_decay: 1e-4,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
        (
            "Adam with AMSGrad",
            Box::new(
                Adam::new(AdamConfig {
                    amsgrad: true,
                    weight_decay: 1e-4,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
        (
            "Adagrad",
            Box::new(
                Adagrad::new(AdagradConfig {
                    lr_decay: 1e-3,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
        (
            "plain SGD",
            Box::new(Sgd::new(SgdConfig::default()).unwrap()),
        ),
    ];
    for (name, mut opt) in optimizers {
        let mut reg = Regressor::with_seed(0);
        for loss in [Loss::Mse, Loss::Huber { delta: 1.0 }] {
            let n = steps_allocate(&mut reg, &mut *opt, &x, &Target::Values(y.view()), loss);
            assert_eq!(
                n, 0,
                "regression ({loss:?}) with {name}: {n} allocations in 20 steps"
            );
        }
    }
}
