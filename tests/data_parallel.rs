//! Data-parallel `fit` (`FitOptions::distributed`) with ranks as threads
//! ([`ThreadGroup`]): an MLP and a CNN trained for 21 SGD steps on two ranks
//! of 64 samples match one process with batches of 128 (f32 to 1e-5: only
//! the order of the batch sums differs), every rank ends with the same
//! weights and logs, and a second run gives the same bits.
//! `tests/mpi_parity.rs` runs the same checks across processes under `mpirun`.

#[path = "common/parallel.rs"]
mod parallel;

use nn::distributed::ThreadGroup;
use parallel::{check_parity, data, rank_run, Cnn, Mlp};

fn parity<M: nn::Model<f32> + nn::train::Fit<f32>>(make: fn(u64) -> M) {
    let ranks = ThreadGroup::run(2, |group| rank_run(make, group));
    let loss1 = ranks[1].history.epochs[0].loss;
    check_parity(make, &ranks[0], &ranks[1].weights, loss1);
}

#[test]
fn an_mlp_trained_on_two_ranks_matches_one_process() {
    parity(Mlp::with_seed);
}

#[test]
fn a_cnn_trained_on_two_ranks_matches_one_process() {
    parity(Cnn::with_seed);
}

#[test]
fn sharded_batches_cover_every_sample_once() {
    let data = data();
    for ranks in [1, 2, 3, 5] {
        let mut seen = vec![0usize; data.len()];
        for rank in 0..ranks {
            let mut b = nn::data::Batches::new(&data, 64, Some(1), false).sharded(rank, ranks);
            let count = b.count();
            let mut batches = 0;
            while b.next_batch().is_some() {
                for &i in b.last_indices() {
                    seen[i] += 1;
                }
                batches += 1;
            }
            assert_eq!(batches, count, "{ranks} ranks");
        }
        // 2597 samples in batches of 64 × ranks: only a final batch with
        // fewer samples than ranks is skipped (never here).
        assert!(seen.iter().all(|&s| s == 1), "{ranks} ranks");
    }
}
