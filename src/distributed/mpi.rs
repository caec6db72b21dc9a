//! The [`Collective`] over MPI (the `mpi` feature): ranks are the processes
//! `mpirun` starts, on one machine or many.

use std::cell::RefCell;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::ffi;
use mpi::raw::AsRaw;
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
    /// Sums started and not yet waited for, in the order they started.
    pending: RefCell<Vec<Pending>>,
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
            pending: RefCell::new(Vec::new()),
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

/// A sum under way: its request, and where its result goes (to be
/// broadcast from rank 0 when there are more than two ranks).
struct Pending {
    request: ffi::MPI_Request,
    recv: *mut std::ffi::c_void,
    len: usize,
    datatype: ffi::MPI_Datatype,
}

impl Mpi {
    /// Starts the sum of `len` values of `T` at `send` into `recv`: with two
    /// ranks one non-blocking all-reduce (each element a single addition, the
    /// same bits on both); with more, a non-blocking reduce to rank 0, whose
    /// result [`Collective::wait_sums`] broadcasts (as [`Mpi::sum`] does, so
    /// every rank gets rank 0's bits).
    ///
    /// # Safety
    /// As for [`Collective::start_sum_f32`].
    unsafe fn start<T: Equivalence>(&self, send: *const T, recv: *mut T, len: usize) {
        if self.world.size() == 1 {
            // SAFETY: the caller's promise: valid, not overlapping.
            unsafe { std::ptr::copy_nonoverlapping(send, recv, len) };
            return;
        }
        let count = i32::try_from(len).expect("a gradient bucket of fewer than 2^31 values");
        let datatype = T::equivalent_datatype().as_raw();
        let sum = SystemOperation::sum().as_raw();
        // SAFETY: reading a constant the MPI library defines.
        let mut request = unsafe { ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the buffers stay valid and untouched until `wait_sums`, as
        // the caller promised; the request is waited for there.
        unsafe {
            if self.world.size() == 2 {
                ffi::MPI_Iallreduce(
                    send.cast(),
                    recv.cast(),
                    count,
                    datatype,
                    sum,
                    self.world.as_raw(),
                    &mut request,
                );
            } else {
                ffi::MPI_Ireduce(
                    send.cast(),
                    recv.cast(),
                    count,
                    datatype,
                    sum,
                    0,
                    self.world.as_raw(),
                    &mut request,
                );
            }
        }
        self.pending.borrow_mut().push(Pending {
            request,
            recv: recv.cast(),
            len,
            datatype,
        });
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

    unsafe fn start_sum_f32(&self, send: *const f32, recv: *mut f32, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.start(send, recv, len) }
    }

    unsafe fn start_sum_f64(&self, send: *const f64, recv: *mut f64, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.start(send, recv, len) }
    }

    fn progress_sums(&self) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        let mut requests: Vec<ffi::MPI_Request> = pending.iter().map(|p| p.request).collect();
        let mut done = 0;
        // SAFETY: live requests of this process. When all are done they come
        // back as MPI_REQUEST_NULL, which `MPI_Waitall` accepts; otherwise
        // none is changed. Return codes are not read: MPI's default error
        // handler aborts the job on an error.
        unsafe {
            ffi::MPI_Testall(
                requests.len() as i32,
                requests.as_mut_ptr(),
                &mut done,
                ffi::RSMPI_STATUSES_IGNORE,
            );
        }
        for (p, r) in pending.iter_mut().zip(requests) {
            p.request = r;
        }
    }

    fn wait_sums(&self) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        if pending.is_empty() {
            return;
        }
        let mut requests: Vec<ffi::MPI_Request> = pending.iter().map(|p| p.request).collect();
        // SAFETY: live requests (or null ones) of this process, and then
        // buffers the starters keep until this returns.
        unsafe {
            ffi::MPI_Waitall(
                requests.len() as i32,
                requests.as_mut_ptr(),
                ffi::RSMPI_STATUSES_IGNORE,
            );
            if self.world.size() > 2 {
                for p in &pending {
                    ffi::MPI_Bcast(p.recv, p.len as i32, p.datatype, 0, self.world.as_raw());
                }
            }
        }
    }

    fn broadcast_f32(&self, buf: &mut [f32]) {
        self.world.process_at_rank(0).broadcast_into(buf);
    }

    fn broadcast_f64(&self, buf: &mut [f64]) {
        self.world.process_at_rank(0).broadcast_into(buf);
    }
}
