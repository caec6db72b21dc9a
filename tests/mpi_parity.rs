//! Data-parallel `fit` across processes: run under
//! `mpirun --allow-run-as-root --oversubscribe -np 2` (and `-np 4`, which sums
//! by reduce and broadcast: `.ci/run` runs both), the
//! checks of `tests/suite/data_parallel.rs` with ranks that are processes talking
//! through MPI. Needs the `mpi` feature; its own `main` (MPI is initialized
//! once per process, so no test harness).

#[path = "suite/common/parallel.rs"]
mod parallel;

use nn::distributed::{Collective, Mpi};
use parallel::{check_parity, rank_run, Cnn, Mlp, GLOBAL_BATCH};

/// Rank `from`'s `weights`, sent to every rank as a broadcast from `from`
/// would: the others receive them through a sum in which their own parts
/// are zero.
fn weights_from(
    group: &dyn Collective,
    from: usize,
    weights: &parallel::Weights,
) -> parallel::Weights {
    let mine = group.rank() == from;
    let mut weights = weights.clone();
    for (_, w) in &mut weights {
        let mut flat: Vec<f32> = if mine {
            w.iter().copied().collect()
        } else {
            vec![0.0; w.len()]
        };
        group.sum_f32(&mut flat);
        for (dst, v) in w.iter_mut().zip(flat) {
            *dst = v;
        }
    }
    weights
}

/// Rank `from`'s weights, sharded run's weights and loss (see [`weights_from`]).
fn from_rank(group: &dyn Collective, from: usize, run: &parallel::RankRun) -> parallel::OtherRank {
    let mut loss = [if group.rank() == from {
        run.history.epochs[0].loss
    } else {
        0.0
    }];
    group.sum_f64(&mut loss);
    (
        weights_from(group, from, &run.weights),
        weights_from(group, from, &run.sharded),
        loss[0],
    )
}

fn parity<M: nn::Model<f32> + nn::train::Fit<f32>>(name: &str, make: fn(u64) -> M, group: &Mpi) {
    let run = rank_run(make, group);
    let others: Vec<_> = (1..group.size())
        .map(|from| from_rank(group, from, &run))
        .collect();
    if group.is_root() {
        check_parity(make, &run, &others);
        println!(
            "{name}: {} ranks match one process, sharded or not; two runs identical",
            group.size()
        );
    }
}

fn main() {
    let group = Mpi::init().expect("MPI starts");
    assert!(
        group.size() >= 2,
        "run with mpirun -np 2 (or any number of ranks dividing {GLOBAL_BATCH})"
    );
    parity("mlp", Mlp::with_seed, &group);
    parity("cnn", Cnn::with_seed, &group);
}
