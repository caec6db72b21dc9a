//! Data: an in-memory [`Dataset`] of class labels or target values, the
//! [`Data`] trait for samples made on the fly, shuffled mini-[`Batches`],
//! train/validation splits, and the [`mnist`] loader.

pub mod csv;
mod dataset;
pub mod mnist;
pub mod normalize;
pub mod npy;
mod source;
mod targets;
mod targets_as;

pub use dataset::{split_point, Dataset, DatasetError};
pub use source::{epoch_seed, share, Batches, Data, TargetSlot, TargetSlots};
pub use targets::{TargetKind, Targets};
pub use targets_as::TargetsAs;
