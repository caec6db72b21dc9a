#![allow(dead_code)]
//! `--distributed`: the example as one rank of an `mpirun` launch, through
//! `nn::distributed::Mpi` (the `mpi` feature).

use nn::distributed::Collective;

use crate::cli::Args;

/// This process's rank with `--distributed`, else `None`; exits with a
/// one-line error when the example was built without the `mpi` feature.
pub fn join(args: &Args) -> Option<Box<dyn Collective>> {
    if !args.switch("distributed") {
        return None;
    }
    #[cfg(feature = "mpi")]
    {
        match nn::distributed::Mpi::init() {
            Ok(mpi) => Some(Box::new(mpi)),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1)
            }
        }
    }
    #[cfg(not(feature = "mpi"))]
    {
        eprintln!(
            "error: --distributed needs the mpi feature: cargo build --release --features mpi --example …"
        );
        std::process::exit(2)
    }
}

/// Samples each rank takes of a global batch of `batch_size`; exits with a
/// one-line error when the ranks cannot share it evenly.
pub fn per_rank(batch_size: usize, group: Option<&dyn Collective>) -> usize {
    let ranks = group.map_or(1, |g| g.size());
    if batch_size == 0 {
        eprintln!("error: --batch-size must be at least 1");
        std::process::exit(2)
    }
    if !batch_size.is_multiple_of(ranks) {
        eprintln!("error: --batch-size {batch_size} does not split evenly over {ranks} ranks");
        std::process::exit(2)
    }
    batch_size / ranks
}
