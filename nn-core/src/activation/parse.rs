//! Reading an activation and its arguments from text: `"relu"`,
//! `"leaky_relu(negative_slope = 0.1)"`.

use std::fmt;

use super::NAMES;

/// Why a name (or its arguments) is not a built-in activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseActivationError {
    /// No activation has this name.
    Unknown(String),
    /// The text is not `name` or `name(arg = value, ..)`.
    Syntax {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument the activation does not have.
    UnknownArgument {
        /// The activation.
        activation: String,
        /// The argument given.
        argument: String,
        /// The arguments it has.
        expected: Vec<&'static str>,
    },
    /// An argument without a default was not given.
    MissingArgument {
        /// The activation.
        activation: String,
        /// The argument to give.
        argument: String,
    },
    /// A value of the wrong kind (`negative_slope = "a"`).
    BadValue {
        /// The activation.
        activation: String,
        /// The argument.
        argument: String,
        /// The value given.
        value: String,
        /// What was expected (`"a number"`).
        expected: &'static str,
    },
}

impl fmt::Display for ParseActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseActivationError::Unknown(name) => {
                write!(f, "unknown activation {name:?}")?;
                if let Some(near) = nn_spec::suggest::closest(name, NAMES.iter().copied()) {
                    write!(f, "; did you mean {near:?}?")?;
                }
                write!(f, " (expected one of {})", NAMES.join(", "))
            }
            ParseActivationError::Syntax { input, reason } => {
                write!(f, "cannot read activation {input:?}: {reason}")
            }
            ParseActivationError::UnknownArgument {
                activation,
                argument,
                expected,
            } if expected.is_empty() => {
                write!(f, "{activation} takes no arguments, got `{argument}`")
            }
            ParseActivationError::UnknownArgument {
                activation,
                argument,
                expected,
            } => write!(
                f,
                "{activation} has no argument `{argument}`; its arguments are {}",
                expected.join(", ")
            ),
            ParseActivationError::MissingArgument {
                activation,
                argument,
            } => write!(
                f,
                "{activation} needs `{argument}`: Keras gives it no default"
            ),
            ParseActivationError::BadValue {
                activation,
                argument,
                value,
                expected,
            } => write!(f, "{activation}: `{argument} = {value}` is not {expected}"),
        }
    }
}

impl std::error::Error for ParseActivationError {}

/// `(argument, value)` pairs as written.
pub(crate) type Arguments<'a> = Vec<(&'a str, &'a str)>;

/// Splits `name(a = 1, b = 2)` into the name and its `(argument, value)` pairs.
pub(crate) fn split_call(s: &str) -> Result<(&str, Arguments<'_>), ParseActivationError> {
    let syntax = |reason: &str| ParseActivationError::Syntax {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    let s = s.trim();
    let Some(open) = s.find('(') else {
        return Ok((s, Vec::new()));
    };
    let name = s[..open].trim();
    let inner = s[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| syntax("missing the closing `)`"))?;
    let mut args = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| syntax("arguments are written by name: `name(argument = value)`"))?;
        args.push((key.trim(), value.trim()));
    }
    Ok((name, args))
}

/// Fails on an argument the activation does not have, or one given twice.
pub(crate) fn check_arguments(
    activation: &str,
    args: &[(&str, &str)],
    known: &'static [&'static str],
) -> Result<(), ParseActivationError> {
    for (i, (key, _)) in args.iter().enumerate() {
        if !known.contains(key) {
            return Err(ParseActivationError::UnknownArgument {
                activation: activation.to_string(),
                argument: key.to_string(),
                expected: known.to_vec(),
            });
        }
        if args[..i].iter().any(|(k, _)| k == key) {
            return Err(ParseActivationError::Syntax {
                input: activation.to_string(),
                reason: format!("`{key}` is given twice"),
            });
        }
    }
    Ok(())
}

/// The value of argument `key`: the one given, else `default`.
pub(crate) fn argument<V: ArgValue>(
    activation: &str,
    args: &[(&str, &str)],
    key: &str,
    default: Option<V>,
) -> Result<V, ParseActivationError> {
    match args.iter().find(|(k, _)| *k == key) {
        Some((_, value)) => V::read(value).ok_or_else(|| ParseActivationError::BadValue {
            activation: activation.to_string(),
            argument: key.to_string(),
            value: value.to_string(),
            expected: V::EXPECTED,
        }),
        None => default.ok_or_else(|| ParseActivationError::MissingArgument {
            activation: activation.to_string(),
            argument: key.to_string(),
        }),
    }
}

/// A type an activation argument can have.
pub(crate) trait ArgValue: Sized {
    /// What a value looks like, for messages.
    const EXPECTED: &'static str;
    /// Reads a value written as in Rust or Python.
    fn read(s: &str) -> Option<Self>;
}

impl ArgValue for f64 {
    const EXPECTED: &'static str = "a number";
    fn read(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

impl ArgValue for isize {
    const EXPECTED: &'static str = "an integer";
    fn read(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

impl ArgValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn read(s: &str) -> Option<Self> {
        match s {
            "true" | "True" => Some(true),
            "false" | "False" => Some(false),
            _ => None,
        }
    }
}

impl ArgValue for Option<f64> {
    const EXPECTED: &'static str = "a number or None";
    fn read(s: &str) -> Option<Self> {
        match s {
            "None" | "none" => Some(None),
            _ => s.parse().ok().map(Some),
        }
    }
}
