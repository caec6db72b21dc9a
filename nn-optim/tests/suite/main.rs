//! The integration tests of `nn-optim`, in one test binary: a module per file.
//!
//! Every test binary compiles again the generic code it uses and links on its
//! own: as one binary per file they were most of a cold `cargo test
//! --workspace`. A new test file is a `mod` line here.

mod common;

mod keras_rmsprop;
mod misuse;
mod schedules;
mod shares;
mod state_file;
mod state_mutation;
mod state_validation;
mod subnormal_moments;
mod torch_trajectories;
mod validation;
