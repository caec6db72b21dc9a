//! Data: an in-memory [`Dataset`] of class labels or target values, the
//! [`Data`] trait for samples made on the fly, shuffled mini-[`Batches`],
//! train/validation splits, and the [`mnist`] loader.

mod dataset;
pub mod mnist;
mod source;
mod targets;

pub use dataset::{Dataset, DatasetError};
pub use source::{Batches, Data, TargetSlot};
pub use targets::{TargetKind, Targets};
