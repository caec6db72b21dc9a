//! Checks of the `nn` framework that need heavy tools, kept out of `nn`'s
//! dev-dependencies so that building an example never compiles them:
//!
//! - `tests/ui.rs`: the compile errors of `sequential!`, `functional!` and
//!   `#[derive(Module)]`, one mistake per case under `tests/ui/`, checked
//!   against their `.stderr` snapshots with `trybuild`;
//! - `benches/static_step.rs`: one training step of the static path, with
//!   `criterion` (`cargo bench -p nn-checks`).
//!
//! The library itself is empty.
