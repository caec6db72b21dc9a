//! A `sequential!` model is `Send`: it moves into a thread and trains there,
//! and serves predictions from `Arc<Mutex<_>>` to several threads, giving the
//! same outputs as on the thread that built it.

use std::sync::{Arc, Mutex};
use std::thread;

use nn::layers::TapeLayer;
use nn::ndarray::{ArrayD, IxDyn};
use nn::optim::{Adam, AdamConfig, Optimizer};
use nn::prelude::*;

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}

/// `x * sigmoid(x Wᵀ)`, written for the tape alone.
pub struct Gate {
    weight: Param<f32>,
}

impl Gate {
    pub fn new(features: usize) -> Self {
        let w = ArrayD::from_shape_fn(IxDyn(&[features, features]), |i| {
            0.3 * ((i[0] * 3 + i[1] * 5) % 7) as f32 / 7.0 - 0.1
        });
        Gate {
            weight: Param::new(w),
        }
    }
}

impl TapeLayer<f32> for Gate {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        x * &x.linear(&x.tape().param(&self.weight), None).sigmoid()
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f32>)) {
        f("weight", &self.weight);
    }
}

sequential! {
    /// Convolution, normalization, pooling, dropout and a tape-only layer.
    pub struct Server: input(1, 6, 6) {
        Conv2d(2, kernel = 3, activation = relu),
        BatchNorm,
        MaxPool2d(2),
        Flatten,
        Dense(8, activation = tanh),
        Dropout(0.2),
        gate: Tape(Gate(8)),
        Dense(3),
    }
}

/// A batch of 4 images and their labels, from a formula.
fn batch() -> (ArrayD<f32>, Vec<usize>) {
    let x = ArrayD::from_shape_fn(IxDyn(&[4, 1, 6, 6]), |i| {
        ((i[0] * 5 + i[2] * 3 + i[3]) % 9) as f32 / 4.0 - 1.0
    });
    (x, vec![0, 1, 2, 1])
}

fn bits(m: &Server) -> Vec<Vec<u32>> {
    m.named_params()
        .iter()
        .map(|(_, p)| p.value().iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn a_sequential_model_and_its_shared_forms_are_send() {
    assert_send::<Server>();
    assert_send::<Arc<Mutex<Server>>>();
    assert_sync::<Arc<Mutex<Server>>>();
    assert_send::<Adam<f32>>();
}

#[test]
fn a_model_moves_into_a_thread_and_trains_a_step_there() {
    let model = Server::with_seed(5);
    let before = bits(&model);
    let (model, loss) = thread::spawn(move || {
        let mut model = model;
        let mut opt = Adam::new(AdamConfig::default()).unwrap();
        let (x, y) = batch();
        model.forward_train(x.view());
        let loss = model.backward_loss(Loss::CrossEntropy, &Target::Labels(&y));
        opt.step(&model);
        opt.zero_grad(&model);
        (model, loss)
    })
    .join()
    .expect("the training thread");
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    let after = bits(&model);
    // Adam moves every parameter that got a gradient, the tape-only gate's too.
    for ((name, _), (b, a)) in model.named_params().iter().zip(before.iter().zip(&after)) {
        assert_ne!(b, a, "{name} did not change");
    }
}

#[test]
fn a_model_serves_predictions_from_arc_mutex_to_two_threads() {
    let mut local = Server::with_seed(8);
    local.eval();
    let (x, _) = batch();
    let expected = local.predict(x.view());

    let mut served = Server::with_seed(8);
    served.eval();
    let served = Arc::new(Mutex::new(served));
    let clients: Vec<_> = (0..2)
        .map(|k| {
            let (served, x) = (Arc::clone(&served), x.clone());
            thread::spawn(move || {
                (0..3)
                    .map(|_| served.lock().unwrap().predict(x.view()))
                    .inspect(|y| assert_eq!(y.shape(), [4, 3], "client {k}"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for c in clients {
        for y in c.join().unwrap() {
            assert_eq!(y, expected);
        }
    }
}
