//! The integration tests of `nn-core`, in one test binary: a module per file.
//!
//! Every test binary compiles again the generic code it uses and links on its
//! own: as one binary per file they were most of a cold `cargo test
//! --workspace`. A new test file is a `mod` line here. Only a test that needs a
//! process of its own stays outside: a counting global allocator
//! (`*_no_alloc.rs`, `mnist_hostile.rs`, `mnist_mutations.rs`) or a thread
//! count chosen before the workers start (`idle_workers.rs`).

mod common;
mod panics;

mod anomaly;
mod attention_paths;
mod binary_ops;
mod broadcast_props;
mod cpu_capability;
mod data_files;
mod gradcheck_activations;
mod gradcheck_itself;
mod gradcheck_ops;
mod keras_activations;
mod merge_layers;
mod misuse;
mod mnist_loader;
mod recurrent_paths;
mod send_models;
mod stability;
mod tape_misuse;
mod tape_research_ops;
mod tape_semantics;
mod torch_ops;
mod torch_seq_attention;
mod torch_seq_coverage;
mod torch_seq_recurrent;
mod weights_mutations;
