//! Warmed-up static training steps (`forward_train` + `backward`) of the
//! recurrent layers allocate nothing: a counting global allocator sees zero
//! allocations, on any thread (the worker threads that share the large matrix
//! products included), over several steps of an LSTM, a GRU and a stacked
//! bidirectional RNN.
//!
//! One test function: the count is global, so no other test may run beside it.
//! Set `NN_ALLOC_TRACE=1` to print a backtrace for each allocation found.

mod counting;

use counting::allocations_during;

use ndarray::{ArrayD, IxDyn};
use nn_core::layers::{Cell, GruCell, Layer, LstmCell, Recurrent, RecurrentConfig, RnnCell};
use nn_core::rand::{rngs::StdRng, SeedableRng};

fn inputs(shape: &[usize]) -> ArrayD<f32> {
    let len = shape.iter().product();
    let values = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0);
    ArrayD::from_shape_vec(IxDyn(shape), values.collect()).expect("shape")
}

/// Two warm-up steps, then the allocations of ten more, each
/// `forward_train` then `backward` with the input's gradient and a reset of
/// the parameters' gradients (as an optimizer's `zero_grad`).
fn steps_allocate<C: Cell>(cell: C, config: RecurrentConfig, batch: usize, steps: usize) -> usize {
    let mut layer: Recurrent<f32, C> =
        Recurrent::new(cell, config.clone(), &mut StdRng::seed_from_u64(0));
    let x = inputs(&[batch, steps, config.input_size]);
    let mut out = vec![batch];
    out.extend(
        layer
            .output_shape(&[steps, config.input_size])
            .expect("fits"),
    );
    let dy = inputs(&out);
    let step = |layer: &mut Recurrent<f32, C>| {
        layer.forward_train(x.view());
        let dx = layer.backward(x.view(), dy.view(), true);
        assert!(dx[[0, 0, 0]].is_finite());
        layer.visit_params(&mut |_, p| p.zero_grad());
    };
    for _ in 0..2 {
        step(&mut layer);
    }
    allocations_during(|| {
        for _ in 0..10 {
            step(&mut layer);
        }
    })
}

#[test]
fn warmed_up_recurrent_training_steps_allocate_nothing() {
    // Batch 32 of 16 steps at 128 → 128 features: too large to join the
    // input projection into the step's product (512 × 257 weights), so each
    // step's input is projected first, on every core; the parameter
    // gradients are summed after the recurrence.
    let n = steps_allocate(LstmCell, RecurrentConfig::new(128, 128), 32, 16);
    assert_eq!(n, 0, "LSTM: {n} allocations in 10 steps");

    // Batch 64 at 28 → 128 features (the row-by-row MNIST layer): the joined
    // product per step, and the parameter gradients summed per step in two
    // blocks of 32 rows.
    let n = steps_allocate(LstmCell, RecurrentConfig::new(28, 128), 64, 8);
    assert_eq!(n, 0, "LSTM, per-step sums: {n} allocations in 10 steps");

    let config = RecurrentConfig::new(24, 32).return_sequences(false);
    let n = steps_allocate(GruCell, config, 8, 12);
    assert_eq!(n, 0, "GRU (last output only): {n} allocations in 10 steps");

    let config = RecurrentConfig::new(16, 24)
        .num_layers(2)
        .bidirectional(true);
    let n = steps_allocate(RnnCell::Tanh, config, 8, 10);
    assert_eq!(
        n, 0,
        "2-layer bidirectional RNN: {n} allocations in 10 steps"
    );
}
