//! Which gradients a static backward pass has finished, as it runs:
//! data-parallel training starts summing them over the ranks while the
//! layers before them still compute (DDP's bucketed overlap).

use std::any::Any;
use std::cell::Cell;

use crate::layers::Layer;
use crate::{Float, Param};

/// What a hook is called with: a `&Param<T>` as `&dyn Any`.
type Report<'h> = dyn FnMut(&dyn Any) + 'h;

/// A hook told of each parameter (a `&Param<T>` as `&dyn Any`) whose
/// gradient is complete, its lifetime erased (see [`with_gradients_ready`]).
type Hook = *mut Report<'static>;

thread_local! {
    /// The hook of the innermost [`with_gradients_ready`] running on this
    /// thread, if any.
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// Runs `f`, calling `hook` with every parameter (a `&Param<T>`, passed as
/// `&dyn Any`) whose gradient a static backward pass on this thread finishes
/// meanwhile. The model `fit` or `fit_graph` trains reports each layer's
/// parameters once its backward has run ([`watch_gradients`]; a graph's
/// shared layer after its last application); the tape and models used as
/// layers of others report nothing, so whatever is not reported is
/// finished when backward returns. The previous hook comes back when `f`
/// returns or unwinds.
pub fn with_gradients_ready<'h, R>(hook: &'h mut Report<'h>, f: impl FnOnce() -> R) -> R {
    /// Puts the previous hook back, even if `f` unwinds.
    struct Restore(Option<Hook>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HOOK.with(|h| h.set(self.0));
        }
    }
    // SAFETY: the pointer is only called from inside `f`, while `hook` is
    // borrowed here; `Restore` removes it before this function returns.
    let erased: Hook = unsafe { std::mem::transmute(hook as *mut Report<'h>) };
    let _restore = Restore(HOOK.with(|h| h.replace(Some(erased))));
    f()
}

/// A layer's parameters, taken before its backward pass (which borrows the
/// layer until the gradient it returns is used), to be reported finished
/// after it: `sequential!`'s generated backward does
///
/// ```text
/// let watch = watch_gradients(&self.layer);
/// let g = self.layer.backward(x, g, need_input_grad);
/// watch.ready();
/// ```
///
/// A report means the gradient is final for this step: call it only for a
/// layer whose backward runs once per step. Without a hook it holds nothing
/// and reports nothing; neither does `Watch::default()`.
pub fn watch_gradients<T: Float, L: Layer<T> + ?Sized>(layer: &L) -> Watch<T> {
    let params = HOOK.with(Cell::get).map(|_| {
        let mut all = Vec::new();
        layer.visit_params(&mut |_, p| all.push(p.clone()));
        all
    });
    Watch(params)
}

/// The parameters of one layer's backward pass (see [`watch_gradients`]).
#[must_use = "call `ready` once the layer's backward has run"]
pub struct Watch<T: Float>(Option<Vec<Param<T>>>);

impl<T: Float> Default for Watch<T> {
    fn default() -> Self {
        Watch(None)
    }
}

impl<T: Float> Watch<T> {
    /// Reports the layer's gradients finished to this thread's hook.
    pub fn ready(self) {
        let Some(params) = self.0 else { return };
        // Taken out while it runs: a report from inside the hook finds none.
        let Some(hook) = HOOK.with(|h| h.take()) else {
            return;
        };
        for p in &params {
            // SAFETY: installed by a `with_gradients_ready` still running
            // (it removes the hook before returning), and not reachable
            // from anywhere else while taken out.
            unsafe { (*hook)(p) };
        }
        HOOK.with(|h| h.set(Some(hook)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Linear;
    use crate::layers::Dense;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn a_watch_reports_the_layers_parameters_only_under_a_hook() {
        let layer: Dense<f32, 3, 2, Linear> = Dense::init(&mut StdRng::seed_from_u64(0));
        // No hook: nothing is collected.
        assert!(watch_gradients::<f32, _>(&layer).0.is_none());
        let mut seen: Vec<Param<f32>> = Vec::new();
        let mut hook = |p: &dyn Any| seen.push(p.downcast_ref::<Param<f32>>().unwrap().clone());
        with_gradients_ready(&mut hook, || {
            watch_gradients::<f32, _>(&layer).ready();
            // A default watch reports nothing.
            Watch::<f32>::default().ready();
        });
        // The hook is gone: later reports reach nobody.
        watch_gradients::<f32, _>(&layer).ready();
        assert_eq!(seen.len(), 2);
        assert!(seen[0].same_as(&layer.weight) && seen[1].same_as(layer.bias.as_ref().unwrap()));
    }
}
