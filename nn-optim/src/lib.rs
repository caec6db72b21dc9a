//! Optimizers with PyTorch's exact update rules and defaults ([`Sgd`], [`Adam`],
//! [`AdamW`], [`RmsProp`], [`Adagrad`]), learning-rate schedules, and gradient
//! clipping.
//!
//! An optimizer updates every parameter a model (or a list of `(name, param)`
//! pairs) visits, keeping per-parameter state under the parameter's stable name,
//! so its state saves and restores with the model's checkpoint.
//!
//! ```
//! use nn_core::ndarray::array;
//! use nn_core::{Param, Tape};
//! use nn_optim::{Optimizer, Sgd, SgdConfig};
//!
//! let w = Param::new(array![1.0f64, -2.0]);
//! let params = vec![("w", w.clone())];
//! let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() }).unwrap();
//! for _ in 0..3 {
//!     let tape = Tape::new();
//!     let wv = tape.param(&w);
//!     (&wv * &wv).sum().backward();   // d/dw Σw² = 2w
//!     opt.step(&params);
//!     opt.zero_grad(&params);
//! }
//! assert!(w.value()[0].abs() < 1.0);
//! ```

mod adagrad;
mod adam;
mod clip;
mod elementwise;
mod error;
mod layout;
mod lr;
mod model_check;
mod plateau;
mod rmsprop;
mod schedule;
mod sgd;
mod state;
mod state_file;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value, clip_to_norm};
pub use error::OptimError;
pub use plateau::{PlateauMode, PlateauState, ReduceLrOnPlateau};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{
    CosineAnnealing, ExponentialLr, LinearLr, LrScheduler, MultiStepLr, Schedule, SchedulerState,
    StepLr, Warmup,
};
pub use sgd::{Sgd, SgdConfig};
pub use state::{OptimizerState, ParamState};

use nn_core::distributed::Share;
use nn_core::{Float, Parameters};

/// Updates parameters from their gradients.
///
/// `step` visits every parameter; those without a gradient (`None`) are skipped,
/// as PyTorch skips `p.grad is None`, and so are frozen ones
/// ([`Param::set_trainable`](nn_core::Param::set_trainable)`(false)`): no update,
/// no weight decay, no state. Object safe, so a training program can pick
/// one at run time (`Box<dyn Optimizer<f32>>`).
pub trait Optimizer<T: Float> {
    /// One update of every parameter that has a gradient.
    fn step(&mut self, params: &dyn Parameters<T>);

    /// Whether each element's update depends on nothing but that element's
    /// value, gradient and state (and the step count and settings), so that
    /// ranks can split a step between them ([`Optimizer::step_share`]). All
    /// of nn-optim's optimizers are; one that scales by a norm over a whole
    /// tensor (LAMB, LARS) is not, and says so by the default, `false`.
    fn is_elementwise(&self) -> bool {
        false
    }

    /// [`Optimizer::step`] for `share` of each parameter's elements, its step
    /// counted whole: in a data-parallel run each rank updates its share and
    /// the ranks then exchange them (ZeRO's sharded optimizer,
    /// `nn::train::FitOptions::shard_optimizer`). Only the share's values
    /// and state need be right afterwards: the rest of the values is
    /// overwritten with the other ranks' shares, and the rest of the state
    /// (what [`Optimizer::state`] exports) is put together from them. The
    /// default takes the whole step, right for an element-wise rule whose
    /// whole state `state` exports, but no faster.
    fn step_share(&mut self, params: &dyn Parameters<T>, share: Share) {
        let _ = share;
        self.step(params);
    }

    /// Sets every parameter's gradient to `None`, as PyTorch's `zero_grad()`
    /// (`set_to_none=True`), keeping the buffers for the next backward to
    /// write into ([`Param::zero_grad`](nn_core::Param::zero_grad)): a
    /// parameter that no backward pass reaches before the next
    /// [`Optimizer::step`] is not stepped (no momentum, no weight decay).
    fn zero_grad(&self, params: &dyn Parameters<T>) {
        params.visit_params(&mut |_, p| p.zero_grad());
    }

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (schedules call this).
    ///
    /// # Panics
    ///
    /// If `lr` is NaN, infinite or negative, with a message naming the
    /// optimizer and the value: a programming error, which would otherwise
    /// turn every parameter into NaN at the next step. The schedules and
    /// [`ReduceLrOnPlateau`] never produce such a rate from valid settings.
    fn set_learning_rate(&mut self, lr: f64);

    /// Everything needed to resume: per-parameter buffers and step counts, and
    /// the learning rate.
    fn state(&self) -> OptimizerState<T>;

    /// Restores [`Optimizer::state`] after checking, before changing anything,
    /// that this optimizer as configured could have written it: the same
    /// optimizer, a finite learning rate `>= 0`, for each parameter exactly
    /// the buffers it keeps, of one shape, with finite values and a
    /// plausible step count. On error the optimizer is as before.
    ///
    /// It cannot check the state against the model; prefer
    /// [`Optimizer::load_state_for`].
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), OptimError>;

    /// [`Optimizer::load_state`] for the model `params`: first checks that
    /// every parameter in the state is one of the model's and each buffer has
    /// its parameter's shape ([`OptimizerState::check_params`]). On error the
    /// optimizer is as before.
    fn load_state_for(
        &mut self,
        state: OptimizerState<T>,
        params: &dyn Parameters<T>,
    ) -> Result<(), OptimError> {
        state.check_params(params)?;
        self.load_state(state)
    }
}

/// `x`, or 0 where `x` is subnormal (zeros keep their sign). A running
/// average of gradients that stopped (a pixel that is almost always 0, a
/// unit that no longer fires) decays through the subnormal range for a
/// hundred steps and more, and on x86 each multiplication there takes a
/// microcode assist: `bench residual_tape` on one thread slowed from 0.59 s
/// to 0.91 s per epoch over four epochs (`benches/HISTORY.md`). The update
/// such a moment gives is below half an ulp of most parameters (with Adam's
/// defaults, of those above about 1e-24), which then follow PyTorch's rule
/// exactly; a parameter driven towards 0 by weight decay alone stops near
/// 1e-36 (`f32`) instead of creeping on into the subnormals.
#[inline(always)]
pub(crate) fn flush_subnormal<T: Float>(x: T) -> T {
    if x != T::zero() && x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}

/// `a + w (b - a)`, computed as PyTorch's `lerp` does (so trajectories match it
/// to the last bits): from `a` when `w < 0.5`, from `b` otherwise.
#[inline]
pub(crate) fn lerp<T: Float>(a: T, b: T, w: T) -> T {
    if w < T::lit(0.5) {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::one() - w)
    }
}
