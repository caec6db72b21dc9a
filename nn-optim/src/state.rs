//! Per-parameter optimizer state, keyed by parameter name, and the loop
//! every optimizer's `step` runs over it.

use std::collections::BTreeMap;
use std::ops::Range;

use ndarray::{ArrayD, ArrayView1, ArrayViewD, ArrayViewMut1, ArrayViewMutD, IxDyn};
use nn_core::distributed::Share;
use nn_core::{Float, Param, Parameters};

use crate::error::OptimError;
use crate::layout::Layout;

/// One parameter's state: its step count and named buffers (`exp_avg`, …).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamState<T: Float> {
    /// Updates applied so far.
    pub step: u64,
    /// Moment estimates, momentum buffers, accumulators.
    pub buffers: BTreeMap<String, ArrayD<T>>,
}

impl<T: Float> ParamState<T> {
    /// The buffer `name`, created by `init` on first use (allocating only then).
    pub fn buffer(&mut self, name: &str, init: impl FnOnce() -> ArrayD<T>) -> &mut ArrayD<T> {
        if !self.buffers.contains_key(name) {
            self.buffers.insert(name.to_string(), init());
        }
        self.buffers.get_mut(name).expect("inserted above")
    }

    /// Moves the buffer `name` out (zeros of `dim` on first use), leaving an
    /// empty placeholder, so several buffers can be updated in one pass.
    pub(crate) fn take(&mut self, name: &str, dim: &ndarray::IxDyn) -> ArrayD<T> {
        match self.buffers.get_mut(name) {
            Some(b) => std::mem::replace(
                b,
                ArrayD::from_shape_vec(ndarray::IxDyn(&[0]), Vec::new()).expect("empty"),
            ),
            None => ArrayD::zeros(dim.clone()),
        }
    }

    /// Puts back a buffer taken with [`ParamState::take`].
    pub(crate) fn put(&mut self, name: &str, a: ArrayD<T>) {
        match self.buffers.get_mut(name) {
            Some(b) => *b = a,
            None => {
                self.buffers.insert(name.to_string(), a);
            }
        }
    }
}

/// An optimizer's whole state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState<T: Float> {
    /// Which optimizer wrote it (`"Adam"`).
    pub optimizer: String,
    /// The learning rate at the time.
    pub lr: f64,
    /// By parameter name.
    pub params: BTreeMap<String, ParamState<T>>,
}

/// Panics, naming the parameter and the shapes, when its gradient or the
/// state kept under its name does not fit its value: an optimizer used for
/// a second model whose parameters share names with the first's, or a
/// gradient written by hand in the wrong shape.
fn check_state<T: Float>(name: &str, value: &[usize], grad: &[usize], state: &ParamState<T>) {
    assert!(
        grad == value,
        "optimizer step: parameter `{name}` has shape {value:?} but its gradient {grad:?}"
    );
    for (buffer, b) in &state.buffers {
        assert!(
            b.shape() == value,
            "optimizer step: parameter `{name}` has shape {value:?} but the optimizer's `{buffer}` state for that name is {:?}; an optimizer's state belongs to one model's parameters (make a new optimizer for another model)",
            b.shape()
        );
    }
}

/// The states of all parameters, and the loop every optimizer's `step` shares.
#[derive(Clone, Debug, Default)]
pub(crate) struct States<T: Float> {
    pub(crate) by_name: BTreeMap<String, ParamState<T>>,
}

impl<T: Float> States<T> {
    /// Calls `update(value, grad, state, part)` for every trainable parameter
    /// with a gradient ([`Param::has_grad`]), with the elements of its `share` of value and
    /// gradient (`part` gives the same elements of its buffers); its step is
    /// counted whole. A frozen one ([`Param::set_trainable`]) is neither
    /// updated nor given state.
    pub(crate) fn step(
        &mut self,
        params: &dyn Parameters<T>,
        share: Share,
        mut update: impl FnMut(ArrayViewMutD<'_, T>, ArrayViewD<'_, T>, &mut ParamState<T>, &Part),
    ) {
        // A parameter held twice (a shared layer) is stepped once.
        nn_core::visit_distinct_params(params, &mut |name, p: &Param<T>| {
            // Not reached by a backward since `zero_grad`: PyTorch's `None`.
            if !p.is_trainable() || !p.has_grad() {
                return;
            }
            let grad = p.grad();
            let Some(g) = grad.as_ref() else { return };
            let state = match self.by_name.get_mut(name) {
                Some(s) => s,
                None => self.by_name.entry(name.to_string()).or_default(),
            };
            let mut value = p.value_mut();
            check_state(name, value.shape(), g.shape(), state);
            state.step += 1;
            let part = Part {
                dim: value.raw_dim(),
                range: (!share.is_whole()).then(|| share.range(value.len())),
                name,
            };
            let g = part.of(g);
            update(part.of_mut(&mut value), g, state, &part);
        });
    }

    pub(crate) fn export(&self, optimizer: &str, lr: f64) -> OptimizerState<T> {
        OptimizerState {
            optimizer: optimizer.to_string(),
            lr,
            params: self.by_name.clone(),
        }
    }

    /// Takes `state`'s parameter states after checking all of it against
    /// `layout`, returning its learning rate; on error nothing has changed.
    pub(crate) fn import(
        &mut self,
        layout: &Layout,
        state: OptimizerState<T>,
    ) -> Result<f64, OptimError> {
        layout.check(&state)?;
        self.by_name = state.params;
        Ok(state.lr)
    }
}

/// The elements of one parameter a step updates (all of them, or one
/// rank's [`Share`]), and its whole shape, in which its buffers are made.
pub(crate) struct Part<'n> {
    dim: IxDyn,
    /// `None`: every element, in any layout.
    range: Option<Range<usize>>,
    name: &'n str,
}

impl Part<'_> {
    /// The parameter's whole shape.
    pub(crate) fn dim(&self) -> &IxDyn {
        &self.dim
    }

    /// These elements of `a`, an array of the parameter's shape.
    pub(crate) fn of_mut<'a, T: Float>(&self, a: &'a mut ArrayD<T>) -> ArrayViewMutD<'a, T> {
        match &self.range {
            None => a.view_mut(),
            Some(r) => {
                let all = a.as_slice_mut().unwrap_or_else(|| self.not_row_major());
                ArrayViewMut1::from(&mut all[r.clone()]).into_dyn()
            }
        }
    }

    /// [`Part::of_mut`], to read.
    pub(crate) fn of<'a, T: Float>(&self, a: &'a ArrayD<T>) -> ArrayViewD<'a, T> {
        match &self.range {
            None => a.view(),
            Some(r) => {
                let all = a.as_slice().unwrap_or_else(|| self.not_row_major());
                ArrayView1::from(&all[r.clone()]).into_dyn()
            }
        }
    }

    fn not_row_major(&self) -> ! {
        panic!(
            "optimizer step_share: parameter `{}` or its gradient or state is not in row-major layout, so its share cannot be cut out",
            self.name
        )
    }
}

/// One element of the effective gradient: `g`, negated when maximizing, plus
/// `weight_decay · p` (PyTorch's L2 form).
#[inline]
pub(crate) fn effective<T: Float>(p: T, g: T, maximize: bool, weight_decay: T) -> T {
    let g = if maximize { -g } else { g };
    if weight_decay != T::zero() {
        g + weight_decay * p
    } else {
        g
    }
}
