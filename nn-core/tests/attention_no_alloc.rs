//! A warmed-up static training step of the attention layers allocates
//! nothing: a counting global allocator sees zero allocations over further
//! `forward_train` + `backward` steps of `MultiheadAttention` and of a
//! pre-norm `TransformerEncoderLayer` (without and with dropout), after two
//! warm-up steps that size their buffers and parameter gradients.
//!
//! Set `NN_ALLOC_TRACE=1` to print a backtrace for each allocation found.

mod counting;

use counting::allocations_during;

use ndarray::{ArrayD, IxDyn};
use nn_core::layers::{
    FeedForwardActivation, Layer, MultiheadAttention, PositionalEmbedding, TransformerConfig,
    TransformerEncoderLayer,
};
use nn_core::rand::{rngs::StdRng, SeedableRng};

fn inputs(shape: &[usize]) -> ArrayD<f32> {
    let len = shape.iter().product();
    let values = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0);
    ArrayD::from_shape_vec(IxDyn(shape), values.collect()).expect("shape")
}

/// Allocations of 10 training steps after two warm-up steps.
fn steps_allocate(layer: &mut dyn Layer<f32>, x: &ArrayD<f32>) -> usize {
    let dy = inputs(x.shape()).mapv(|v| v * 0.5);
    let step = |layer: &mut dyn Layer<f32>| {
        let y = layer.forward_train(x.view());
        assert!(y.iter().all(|v| v.is_finite()));
        let dx = layer.backward(x.view(), dy.view(), true);
        assert_eq!(dx.shape(), x.shape());
    };
    for _ in 0..2 {
        step(layer);
    }
    allocations_during(|| {
        for _ in 0..10 {
            step(layer);
        }
    })
}

#[test]
fn warmed_up_attention_steps_allocate_nothing() {
    // [B, T, E] = [8, 32, 64]: the projections are large enough to split
    // over the worker threads.
    let x = inputs(&[8, 32, 64]);
    let rng = &mut StdRng::seed_from_u64(0);
    // The first large product starts the worker threads, whose own start-up
    // allocates on them: let that happen, and finish, before counting.
    steps_allocate(&mut MultiheadAttention::new(64, 4, rng), &x);
    std::thread::sleep(std::time::Duration::from_millis(100));
    for causal in [false, true] {
        let mut mha = MultiheadAttention::new(64, 4, rng).causal(causal);
        let n = steps_allocate(&mut mha, &x);
        assert_eq!(n, 0, "MultiheadAttention causal={causal}: {n} allocations");
    }
    let mut mha = MultiheadAttention::new(64, 4, rng).dropout(0.1);
    let n = steps_allocate(&mut mha, &x);
    assert_eq!(n, 0, "MultiheadAttention with dropout: {n} allocations");

    for dropout in [0.0, 0.1] {
        for norm_first in [true, false] {
            let config = TransformerConfig::new(64, 4)
                .dim_feedforward(128)
                .dropout(dropout)
                .activation(FeedForwardActivation::Gelu)
                .norm_first(norm_first)
                .causal(true);
            let mut layer = TransformerEncoderLayer::new(config, rng);
            let n = steps_allocate(&mut layer, &x);
            assert_eq!(
                n, 0,
                "TransformerEncoderLayer norm_first={norm_first} dropout={dropout}: {n} allocations"
            );
        }
    }

    let mut pos = PositionalEmbedding::new(40, 64, rng);
    let n = steps_allocate(&mut pos, &x);
    assert_eq!(n, 0, "PositionalEmbedding: {n} allocations");
}
