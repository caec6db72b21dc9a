//! The one rule for a learning rate, finite and `>= 0`, applied wherever a
//! rate enters an optimizer: its constructor, `set_learning_rate` and
//! `load_state`. A NaN or infinite rate turns every parameter into NaN at the
//! next step, far from where it came in; a negative one ascends the loss.

use crate::error::{check, OptimError};

/// What [`valid`] requires, for messages.
pub(crate) const RULE: &str = "must be finite and >= 0";

/// Whether `lr` may be an optimizer's learning rate.
pub(crate) fn valid(lr: f64) -> bool {
    lr.is_finite() && lr >= 0.0
}

/// The constructor's check, an [`OptimError::InvalidHyperparameter`]: stricter
/// than PyTorch, which takes an infinite rate. Two checks so a negative rate
/// keeps PyTorch's wording (`must be >= 0`).
pub(crate) fn check_new(optimizer: &'static str, lr: f64) -> Result<(), OptimError> {
    check(lr.is_finite(), optimizer, "lr", lr, "must be finite")?;
    check(lr >= 0.0, optimizer, "lr", lr, "must be >= 0")
}

/// `set_learning_rate`'s check. A panic, not an error: the trait's signature
/// returns nothing (schedules and callers everywhere rely on it), and a bad
/// rate there is a programming error, as misusing a tensor is.
pub(crate) fn assert_settable(optimizer: &str, lr: f64) {
    assert!(
        valid(lr),
        "{optimizer}: set_learning_rate({lr:?}): a learning rate {RULE}"
    );
}

/// `load_state`'s check, an [`OptimError::State`] naming the optimizer.
pub(crate) fn check_loaded(optimizer: &str, lr: f64) -> Result<(), OptimError> {
    if valid(lr) {
        Ok(())
    } else {
        Err(OptimError::State {
            parameter: None,
            problem: format!("lr is {lr:?}, but {optimizer}'s learning rate {RULE}"),
        })
    }
}
