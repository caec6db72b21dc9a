//! Construction and state errors.

/// Why an optimizer or schedule could not be built, or its state not restored.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A hyperparameter outside its valid range (PyTorch's `ValueError`s).
    #[error("{optimizer}: invalid {name}: {value} ({requirement})")]
    InvalidHyperparameter {
        /// `"SGD"`, `"Adam"`, …
        optimizer: &'static str,
        /// The hyperparameter.
        name: &'static str,
        /// What was given.
        value: String,
        /// What is allowed.
        requirement: &'static str,
    },
    /// State saved by a different optimizer.
    #[error("cannot load {found} state into {expected}")]
    WrongOptimizer {
        /// This optimizer.
        expected: String,
        /// The state's optimizer.
        found: String,
    },
    /// A saved state is incomplete or malformed.
    #[error("optimizer state: {0}")]
    BadState(String),
}

/// Checks `ok`, else an [`OptimError::InvalidHyperparameter`].
pub(crate) fn check(
    ok: bool,
    optimizer: &'static str,
    name: &'static str,
    value: impl std::fmt::Debug,
    requirement: &'static str,
) -> Result<(), OptimError> {
    if ok {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperparameter {
            optimizer,
            name,
            value: format!("{value:?}"),
            requirement,
        })
    }
}
