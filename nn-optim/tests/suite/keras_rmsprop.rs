//! RMSprop's Keras variant (`eps_inside_sqrt`) against its formula, one step
//! by hand: `s = (1 - α) g²`, `θ ← θ - lr · g / √(s + ε)`.

use nn_core::Param;
use nn_optim::{Optimizer, RmsProp, RmsPropConfig};

#[test]
fn epsilon_inside_the_square_root() {
    let (lr, alpha, eps, g, theta) = (0.001, 0.9, 1e-7, 0.02, 0.5);
    let p = Param::new(ndarray::array![theta]);
    *p.grad_mut() = Some(ndarray::array![g].into_dyn());
    let params = vec![("p", p.clone())];
    let config = RmsPropConfig {
        lr,
        alpha,
        eps,
        eps_inside_sqrt: true,
        ..Default::default()
    };
    RmsProp::<f64>::new(config).unwrap().step(&params);
    let s = (1.0 - alpha) * g * g;
    let keras = theta - lr * g / (s + eps).sqrt();
    assert!(
        (p.value()[[0]] - keras).abs() < 1e-15,
        "{} vs {keras}",
        p.value()[[0]]
    );
    // PyTorch's form differs measurably here: √s + ε.
    let torch = theta - lr * g / (s.sqrt() + eps);
    assert!((keras - torch).abs() > 1e-6);
}
