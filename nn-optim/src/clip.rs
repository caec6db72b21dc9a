//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use nn_core::{Float, Param, Parameters};

/// Scales all gradients together so their global L2 norm is at most `max_norm`;
/// returns the norm before clipping. Like PyTorch, the scale is
/// `max_norm / (norm + 1e-6)`, applied only when it is below 1. Frozen
/// parameters ([`Param::set_trainable`](nn_core::Param::set_trainable)) are
/// left out of the norm and left alone.
pub fn clip_grad_norm<T: Float>(params: &dyn Parameters<T>, max_norm: f64) -> f64 {
    let mut sum = 0.0;
    visit_trainable(params, &mut |p| {
        if let Some(g) = p.grad().as_ref() {
            sum += g.iter().map(|&v| v.as_f64() * v.as_f64()).sum::<f64>();
        }
    });
    let norm = sum.sqrt();
    clip_to_norm(params, norm, max_norm);
    norm
}

/// The scaling of [`clip_grad_norm`] for gradients whose global norm is
/// `norm`, found elsewhere (summed over the ranks of a data-parallel run):
/// every trainable gradient times `max_norm / (norm + 1e-6)` when that is
/// below 1.
pub fn clip_to_norm<T: Float>(params: &dyn Parameters<T>, norm: f64, max_norm: f64) {
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let c = T::lit(coef);
        visit_trainable(params, &mut |p| {
            if let Some(g) = p.grad_mut().as_mut() {
                g.mapv_inplace(|v| v * c);
            }
        });
    }
}

/// Clamps every gradient element of the trainable parameters to `[-clip, clip]`.
pub fn clip_grad_value<T: Float>(params: &dyn Parameters<T>, clip: f64) {
    let (lo, hi) = (T::lit(-clip), T::lit(clip));
    visit_trainable(params, &mut |p| {
        if let Some(g) = p.grad_mut().as_mut() {
            g.mapv_inplace(|v| v.max(lo).min(hi));
        }
    });
}

/// Calls `f` with every parameter that is not frozen.
fn visit_trainable<T: Float>(params: &dyn Parameters<T>, f: &mut dyn FnMut(&Param<T>)) {
    params.visit_params(&mut |_, p| {
        if p.is_trainable() {
            f(p)
        }
    });
}
