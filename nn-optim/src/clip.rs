//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use nn_core::{Float, Param, Parameters};

/// Scales all gradients together so their global L2 norm is at most `max_norm`;
/// returns the norm before clipping. Like PyTorch, the scale is
/// `max_norm / (norm + 1e-6)`, applied when it is below 1 or NaN (a NaN
/// norm makes every gradient NaN, as PyTorch's does). Frozen
/// parameters ([`Param::set_trainable`](nn_core::Param::set_trainable)) are
/// left out of the norm and left alone; a shared one counts once.
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
/// below 1 (or NaN).
pub fn clip_to_norm<T: Float>(params: &dyn Parameters<T>, norm: f64, max_norm: f64) {
    let coef = max_norm / (norm + 1e-6);
    // A NaN norm scales by NaN, as PyTorch's clamp keeps it.
    if coef < 1.0 || coef.is_nan() {
        let c = T::lit(coef);
        visit_trainable(params, &mut |p| {
            if let Some(g) = p.grad_mut().as_mut() {
                g.mapv_inplace(|v| v * c);
            }
        });
    }
}

/// Clamps every gradient element of the trainable parameters to `[-clip, clip]`;
/// NaN stays NaN, as in PyTorch's `clamp`.
pub fn clip_grad_value<T: Float>(params: &dyn Parameters<T>, clip: f64) {
    let (lo, hi) = (T::lit(-clip), T::lit(clip));
    visit_trainable(params, &mut |p| {
        if let Some(g) = p.grad_mut().as_mut() {
            // `max`/`min` would return the bound for NaN.
            g.mapv_inplace(|v| if v.is_nan() { v } else { v.max(lo).min(hi) });
        }
    });
}

/// Calls `f` with every distinct parameter that is not frozen.
fn visit_trainable<T: Float>(params: &dyn Parameters<T>, f: &mut dyn FnMut(&Param<T>)) {
    nn_core::visit_distinct_params(params, &mut |_, p| {
        if p.is_trainable() {
            f(p)
        }
    });
}
