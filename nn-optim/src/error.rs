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
    /// A state that does not fit this optimizer or model: a learning rate
    /// out of range, a buffer this optimizer does not keep, of another shape
    /// than its parameter, or holding NaN, an implausible step count, a
    /// parameter the model does not have.
    #[error("optimizer state{}: {problem}", at_parameter(.parameter))]
    State {
        /// The parameter whose state is wrong; `None` for the whole state (the
        /// learning rate).
        parameter: Option<String>,
        /// What is wrong.
        problem: String,
    },
}

impl OptimError {
    /// An [`OptimError::State`] about one parameter's state.
    pub(crate) fn state(parameter: &str, problem: String) -> Self {
        OptimError::State {
            parameter: Some(parameter.to_string()),
            problem,
        }
    }
}

fn at_parameter(parameter: &Option<String>) -> String {
    parameter
        .as_ref()
        .map(|p| format!(" for `{p}`"))
        .unwrap_or_default()
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
