//! Misusing an optimizer panics with a message naming the parameter and the
//! shapes, not deep inside an update loop.

use ndarray::{arr1, ArrayD, IxDyn};
use nn_core::Param;
use nn_optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

fn param(len: usize) -> Param<f32> {
    let p = Param::new(ArrayD::from_elem(IxDyn(&[len]), 0.5f32));
    p.accumulate_grad(ArrayD::from_elem(IxDyn(&[len]), 0.1f32));
    p
}

#[test]
#[should_panic(
    expected = "parameter `w` has shape [4] but the optimizer's `exp_avg` state for that name is [3]"
)]
fn one_optimizer_for_two_models_is_refused_by_name() {
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let first = vec![("w", param(3))];
    adam.step(&first);
    // Another model whose parameter shares the name but not the shape.
    let second = vec![("w", param(4))];
    adam.step(&second);
}

#[test]
#[should_panic(expected = "parameter `w` has shape [2] but its gradient [3]")]
fn a_gradient_of_the_wrong_shape_is_refused_by_name() {
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let p = Param::new(arr1(&[1.0f32, 2.0]));
    *p.grad_mut() = Some(ArrayD::from_elem(IxDyn(&[3]), 0.1f32));
    sgd.step(&vec![("w", p)]);
}
