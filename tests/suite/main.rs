//! The end-to-end tests of `nn`, in one test binary: a module per file.
//!
//! Every test binary compiles again the generic code it uses and links on its
//! own: as one binary per file they were most of a cold `cargo test
//! --workspace`. A new test file is a `mod` line here. Only a test that needs a
//! process of its own stays outside: a counting global allocator
//! (`tests/no_alloc.rs`) or MPI's `main` (`tests/mpi_parity.rs`).

mod common;

mod batch_norm_activation;
mod buffers;
mod cnn;
mod crash_resume;
mod data_parallel;
mod derive_module;
mod derive_module_torch;
mod derived_container;
mod every_activation_syntax;
mod examples_output;
mod fit_control;
mod fit_targets;
mod freezing;
mod functional_data_parallel;
mod functional_paths;
mod functional_summary;
mod functional_training;
mod hygienic_names;
mod optim_training;
mod residual_activation;
mod send_models;
mod sequence_models;
mod sequence_torch;
mod sequential_io;
mod sequential_nested;
mod sequential_paths;
mod sequential_summary;
mod sequential_tape_layer;
mod sequential_torch;
mod tape_training;
mod tensorboard;
mod thread_determinism;
mod training_loop;
