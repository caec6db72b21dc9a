//! Data-parallel `fit` across processes: run under
//! `mpirun --allow-run-as-root --oversubscribe -np 2` (`.ci/run` does), the
//! checks of `tests/suite/data_parallel.rs` with ranks that are processes talking
//! through MPI. Needs the `mpi` feature; its own `main` (MPI is initialized
//! once per process, so no test harness).

#[path = "suite/common/parallel.rs"]
mod parallel;

use nn::distributed::{Collective, Mpi};
use nn::ndarray::ArrayD;
use parallel::{check_parity, rank_run, Cnn, Mlp};

/// Rank 1's weights and loss, sent to rank 0 as one broadcast-from-1 would:
/// rank 0 receives them through a sum in which its own part is zero.
fn from_rank1(
    group: &dyn Collective,
    run: &parallel::RankRun,
) -> (Vec<(String, ArrayD<f32>)>, f64) {
    let mut weights = run.weights.clone();
    for (_, w) in &mut weights {
        let mut flat: Vec<f32> = if group.rank() == 1 {
            w.iter().copied().collect()
        } else {
            vec![0.0; w.len()]
        };
        group.sum_f32(&mut flat);
        for (dst, v) in w.iter_mut().zip(flat) {
            *dst = v;
        }
    }
    let mut loss = [if group.rank() == 1 {
        run.history.epochs[0].loss
    } else {
        0.0
    }];
    group.sum_f64(&mut loss);
    (weights, loss[0])
}

fn parity<M: nn::Model<f32> + nn::train::Fit<f32>>(name: &str, make: fn(u64) -> M, group: &Mpi) {
    let run = rank_run(make, group);
    let (rank1_weights, rank1_loss) = from_rank1(group, &run);
    if group.is_root() {
        check_parity(make, &run, &rank1_weights, rank1_loss);
        println!("{name}: 2 ranks match one process; two runs identical");
    }
}

fn main() {
    let group = Mpi::init().expect("MPI starts");
    assert_eq!(group.size(), 2, "run with mpirun -np 2");
    parity("mlp", Mlp::with_seed, &group);
    parity("cnn", Cnn::with_seed, &group);
}
