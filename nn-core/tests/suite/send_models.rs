//! Parameters and layers are `Send` (and `Sync` where only read): a layer
//! moves into a thread and trains there, serves predictions from
//! `Arc<Mutex<_>>` or a plain `Arc` to several threads, and a parameter
//! handle shared between threads sees the other's writes. `TapeOnly` keeps
//! its recorded tape off the layer, so it moves between steps too.

use std::sync::{Arc, Mutex};
use std::thread;

use ndarray::{ArrayD, IxDyn};
use nn_core::activation::{linear, tanh, Linear, Tanh};
use nn_core::init::Initializer;
use nn_core::layers::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, Embedding, Flatten, GlobalAvgPool,
    Layer, LayerNorm, MaxPool2d, Padding, Pool2d, TapeLayer, TapeOnly, Workspace,
};
use nn_core::rand::{rngs::StdRng, SeedableRng};
use nn_core::{Param, Var};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

/// `x * scale`, written for the tape alone.
struct Scale {
    scale: Param<f64>,
}

impl TapeLayer<f64> for Scale {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        x * &x.tape().param(&self.scale)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        f("scale", &self.scale);
    }
}

type Hidden = Dense<f64, 3, 4, Tanh>;

fn dense(seed: u64) -> Hidden {
    let mut rng = StdRng::seed_from_u64(seed);
    Dense::new(
        tanh,
        true,
        Initializer::GlorotUniform,
        Initializer::Constant(0.1),
        &mut rng,
    )
}

/// A batch of 5 samples of 3 features, from a formula.
fn input() -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[5, 3]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64 / 5.0 - 1.0
    })
}

fn bits(p: &Param<f64>) -> Vec<u64> {
    p.value().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn parameters_and_every_layer_type_are_send_and_sync() {
    assert_send::<Param<f32>>();
    assert_sync::<Param<f32>>();
    assert_send::<Param<f64>>();
    assert_sync::<Param<f64>>();
    assert_send::<Workspace<f32>>();
    assert_sync::<Workspace<f32>>();

    assert_send::<Dense<f32, 3, 4, Tanh>>();
    assert_sync::<Dense<f32, 3, 4, Tanh>>();
    assert_send::<Conv2d<f32, 1, 2, 3, 3, Linear>>();
    assert_sync::<Conv2d<f32, 1, 2, 3, 3, Linear>>();
    assert_send::<Embedding<f32, 10, 4>>();
    assert_sync::<Embedding<f32, 10, 4>>();
    assert_send::<BatchNorm<f32, 4>>();
    assert_sync::<BatchNorm<f32, 4>>();
    assert_send::<LayerNorm<f32, 4>>();
    assert_sync::<LayerNorm<f32, 4>>();
    assert_send::<Pool2d<f32>>();
    assert_sync::<Pool2d<f32>>();
    assert_send::<MaxPool2d<f32>>();
    assert_send::<AvgPool2d<f32>>();
    assert_send::<GlobalAvgPool<f32>>();
    assert_sync::<GlobalAvgPool<f32>>();
    assert_send::<Flatten<f32>>();
    assert_sync::<Flatten<f32>>();
    assert_send::<Activation<f32, Tanh>>();
    assert_sync::<Activation<f32, Tanh>>();
    assert_send::<TapeOnly<f64, Scale>>();
    assert_sync::<TapeOnly<f64, Scale>>();
    // Dropout draws its masks from an RNG in a `RefCell`, so its tape
    // `forward(&self)` can advance it: `Send`, not `Sync`.
    assert_send::<Dropout<f32>>();
}

#[test]
fn a_layer_moves_into_a_thread_and_trains_a_step_there() {
    let layer = dense(1);
    let here = layer.weight.clone();
    let before = bits(&here);
    let trained = thread::spawn(move || {
        let mut layer = layer;
        let x = input();
        layer.forward_train(x.view());
        let dy = ArrayD::from_elem(IxDyn(&[5, 4]), 0.25);
        layer.backward(x.view(), dy.view(), false);
        let g = layer.weight.grad().clone().expect("a gradient");
        layer.weight.value_mut().scaled_add(-0.5, &g);
        layer
    })
    .join()
    .expect("the training thread");
    // The thread updated the very parameter this thread holds a handle to.
    assert!(trained.weight.same_as(&here));
    assert_ne!(bits(&here), before);
    assert!(here.grad().is_some());
}

#[test]
fn predictions_are_served_from_arc_mutex_and_from_arc_to_two_threads() {
    let x = input();
    let expected = dense(2).predict(x.view());

    let served = Arc::new(Mutex::new(dense(2)));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (served, x) = (Arc::clone(&served), x.clone());
            thread::spawn(move || served.lock().unwrap().predict(x.view()))
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap(), expected);
    }

    // Prediction only reads: a plain `Arc` shares the layer without a lock.
    let shared = Arc::new(dense(2));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (shared, x) = (Arc::clone(&shared), x.clone());
            thread::spawn(move || shared.predict(x.view()))
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), expected);
    }
}

#[test]
fn a_parameter_handle_shared_between_threads_sees_the_other_threads_writes() {
    let p = Param::new(ndarray::array![1.0f32, 2.0]);
    let q = p.clone();
    thread::spawn(move || q.value_mut().fill(7.0))
        .join()
        .unwrap();
    assert_eq!(p.value().as_slice().unwrap(), &[7.0, 7.0]);
}

fn scale_layer() -> TapeOnly<f64, Scale> {
    TapeOnly::new(Scale {
        scale: Param::new(ndarray::array![2.0, 3.0, 4.0]),
    })
}

#[test]
fn a_tape_only_layer_moves_between_steps_and_trains_in_a_thread() {
    let mut layer = scale_layer();
    let x = input();
    let dy = ArrayD::from_elem(IxDyn(&[5, 3]), 1.0);
    // A step here, then the layer moves and takes a step there.
    layer.forward_train(x.view());
    let dx_here = layer.backward(x.view(), dy.view(), true).to_owned();
    let (layer, dx_there) = thread::spawn(move || {
        let mut layer = layer;
        layer.forward_train(x.view());
        let dx = layer.backward(x.view(), dy.view(), true).to_owned();
        (layer, dx)
    })
    .join()
    .unwrap();
    assert_eq!(dx_here, dx_there);
    // d(x·s)/dx = s, and both steps added Σ_batch x into the scale's gradient.
    assert_eq!(
        dx_here
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![2.0, 3.0, 4.0]
    );
    let g = layer.inner.scale.grad().clone().unwrap();
    let x = input();
    for (j, &gj) in g.iter().enumerate() {
        assert!(
            (gj - 2.0 * x.index_axis(ndarray::Axis(1), j).sum()).abs() < 1e-12,
            "{gj}"
        );
    }
}

#[test]
fn a_tape_only_backward_on_another_thread_than_its_forward_is_refused_by_name() {
    let mut layer = scale_layer();
    let x = input();
    layer.forward_train(x.view());
    let err = thread::spawn(move || {
        let dy = ArrayD::from_elem(IxDyn(&[5, 3]), 1.0);
        layer.backward(x.view(), dy.view(), true);
    })
    .join()
    .expect_err("backward on another thread panics");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("Scale: backward must run on the thread that ran forward_train"),
        "{msg}"
    );
}

#[test]
fn a_tape_only_backward_without_forward_still_panics_by_name() {
    let mut layer = scale_layer();
    let x = input();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        layer.backward(x.view(), x.view(), true);
    }));
    let msg = result
        .expect_err("no forward_train")
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        msg.contains("Scale: backward called without forward_train"),
        "{msg}"
    );
}

#[test]
fn conv_embedding_and_norm_layers_train_a_step_in_a_thread() {
    let mut rng = StdRng::seed_from_u64(3);
    let conv: Conv2d<f64, 1, 2, 3, 3, Linear> = Conv2d::new(
        linear,
        (1, 1),
        Padding::Same,
        (1, 1),
        true,
        Initializer::GlorotUniform,
        Initializer::Zeros,
        &mut rng,
    );
    let norm: BatchNorm<f64, 2> = BatchNorm::new(0.1, 1e-5);
    let embedding: Embedding<f64, 6, 2> = Embedding::new(Initializer::GlorotUniform, &mut rng);
    let handles = [
        conv.weight.clone(),
        norm.weight.clone(),
        embedding.weight.clone(),
    ];
    thread::spawn(move || {
        let (mut conv, mut norm, mut embedding) = (conv, norm, embedding);
        let img = ArrayD::from_shape_fn(IxDyn(&[2, 1, 4, 4]), |i| (i[2] * 4 + i[3]) as f64 / 8.0);
        let y = conv.forward_train(img.view()).to_owned();
        let z = norm.forward_train(y.view()).to_owned();
        let dz = z.mapv(|v| v * 0.5 + 0.1);
        let dy = norm.backward(y.view(), dz.view(), true).to_owned();
        conv.backward(img.view(), dy.view(), false);
        let tokens = ndarray::array![[0.0, 5.0], [2.0, 2.0]].into_dyn();
        let e = embedding.forward_train(tokens.view()).to_owned();
        embedding.backward(tokens.view(), e.view(), false);
    })
    .join()
    .unwrap();
    for p in &handles {
        assert!(p.grad().is_some(), "{p:?}");
    }
}
