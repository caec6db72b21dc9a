//! The [`Collective`] over MPI (the `mpi` feature): ranks are the processes
//! `mpirun` starts, on one machine or many.

use std::cell::RefCell;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::Collective;

/// Why MPI could not start.
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// `MPI_Init` was already called in this process (one [`Mpi`] per process).
    #[error(
        "MPI is already initialized in this process (make one nn::distributed::Mpi and share it)"
    )]
    AlreadyInitialized,
}

/// This process's place among the processes `mpirun` started (`MPI_COMM_WORLD`).
/// Every rank gets the same bits from a sum; MPI is finalized when this is
/// dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    /// Rank 0's receive buffers for sums, kept from step to step.
    totals_f32: RefCell<Vec<f32>>,
    totals_f64: RefCell<Vec<f64>>,
    // Dropped last: finalizes MPI.
    _universe: Universe,
}

impl Mpi {
    /// Initializes MPI (once per process). Run the program with
    /// `mpirun -np N program`; run on its own, it is rank 0 of 1.
    pub fn init() -> Result<Self, MpiError> {
        let universe = mpi::initialize().ok_or(MpiError::AlreadyInitialized)?;
        let world = universe.world();
        Ok(Mpi {
            world,
            totals_f32: RefCell::new(Vec::new()),
            totals_f64: RefCell::new(Vec::new()),
            _universe: universe,
        })
    }

    /// Sums over the ranks so that every rank gets the same bits. With two
    /// ranks each element is one addition, the same bits in either order, so
    /// one all-reduce does; with more, an all-reduce may add in different
    /// orders on different ranks, so the sum is reduced to rank 0, which
    /// broadcasts it.
    fn sum<T: Equivalence + Copy + Default>(&self, buf: &mut [T], totals: &RefCell<Vec<T>>) {
        let mut total = totals.borrow_mut();
        total.resize(buf.len(), T::default());
        if self.world.size() == 2 {
            self.world
                .all_reduce_into(&*buf, &mut total[..], SystemOperation::sum());
            buf.copy_from_slice(&total);
            return;
        }
        let root = self.world.process_at_rank(0);
        if self.world.rank() == 0 {
            root.reduce_into_root(&*buf, &mut total[..], SystemOperation::sum());
            buf.copy_from_slice(&total);
        } else {
            root.reduce_into(&*buf, SystemOperation::sum());
        }
        root.broadcast_into(buf);
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_f32(&self, buf: &mut [f32]) {
        self.sum(buf, &self.totals_f32);
    }

    fn sum_f64(&self, buf: &mut [f64]) {
        self.sum(buf, &self.totals_f64);
    }

    fn broadcast_f32(&self, buf: &mut [f32]) {
        self.world.process_at_rank(0).broadcast_into(buf);
    }

    fn broadcast_f64(&self, buf: &mut [f64]) {
        self.world.process_at_rank(0).broadcast_into(buf);
    }
}
