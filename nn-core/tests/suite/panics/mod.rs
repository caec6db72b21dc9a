//! The message of an expected panic, for the tests that check what misuse says.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// The panic message of `f`, which must panic.
pub fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
