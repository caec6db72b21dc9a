//! The [`Collective`] over MPI (the `mpi` feature): ranks are the processes
//! `mpirun` starts, on one machine or many.

use std::cell::RefCell;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use nn_core::distributed::Share;
use nn_core::Float;

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
    /// A copy of `world` for the messages of reduce-scatters and
    /// all-gathers, which then never meet a message of the program's own.
    blocks: SimpleCommunicator,
    /// Receive buffers of reduce-scatters, kept from step to step.
    spare: RefCell<Vec<Vec<f64>>>,
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
            blocks: world.duplicate(),
            spare: RefCell::new(Vec::new()),
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

/// A sum under way.
enum Pending {
    /// An all-reduce, or with more than two ranks a reduce to rank 0 whose
    /// result goes where to be broadcast from there.
    Sum {
        request: ffi::MPI_Request,
        recv: *mut std::ffi::c_void,
        len: usize,
        datatype: ffi::MPI_Datatype,
    },
    /// A reduce-scatter by messages: this rank's block sent by every other
    /// rank, and what adds them up once they are in.
    Blocks {
        requests: Vec<ffi::MPI_Request>,
        add: Box<dyn FnOnce(&Mpi)>,
    },
}

impl Pending {
    fn requests(&mut self) -> &mut [ffi::MPI_Request] {
        match self {
            Pending::Sum { request, .. } => std::slice::from_mut(request),
            Pending::Blocks { requests, .. } => requests,
        }
    }
}

/// Tags of the messages on `Mpi::blocks`.
const REDUCE_SCATTER: i32 = 1;
const SHARES: i32 = 2;

/// Where each rank's block starts, and where they end.
fn block_starts(counts: &[usize]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(counts.len() + 1);
    let mut at = 0;
    starts.push(0);
    for &c in counts {
        at += c;
        starts.push(at);
    }
    starts
}

/// Non-blocking messages to and from one rank, of one type and tag.
struct Messages {
    comm: ffi::MPI_Comm,
    datatype: ffi::MPI_Datatype,
    peer: usize,
    tag: i32,
}

impl Messages {
    /// Starts sending the `len` values at `at` (none: nothing), keeping the
    /// request in `requests`.
    ///
    /// # Safety
    /// `at` holds `len` values of the datatype, unchanged until the request
    /// is waited for.
    unsafe fn send<T>(&self, at: *const T, len: usize, requests: &mut Vec<ffi::MPI_Request>) {
        if len > 0 {
            // SAFETY: the caller's promise; a constant MPI defines.
            unsafe {
                let mut r = ffi::RSMPI_REQUEST_NULL;
                ffi::MPI_Isend(
                    at.cast(),
                    count(len),
                    self.datatype,
                    self.peer as i32,
                    self.tag,
                    self.comm,
                    &mut r,
                );
                requests.push(r);
            }
        }
    }

    /// Starts receiving `len` values into `at` (none: nothing), keeping the
    /// request in `requests`.
    ///
    /// # Safety
    /// `at` has room for `len` values of the datatype, neither read nor
    /// written until the request is waited for.
    unsafe fn receive<T>(&self, at: *mut T, len: usize, requests: &mut Vec<ffi::MPI_Request>) {
        if len > 0 {
            // SAFETY: the caller's promise; a constant MPI defines.
            unsafe {
                let mut r = ffi::RSMPI_REQUEST_NULL;
                ffi::MPI_Irecv(
                    at.cast(),
                    count(len),
                    self.datatype,
                    self.peer as i32,
                    self.tag,
                    self.comm,
                    &mut r,
                );
                requests.push(r);
            }
        }
    }
}

/// A message length as MPI counts it.
fn count(len: usize) -> i32 {
    i32::try_from(len).expect("a message of fewer than 2^31 values")
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
        let values = count(len);
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
                    values,
                    datatype,
                    sum,
                    self.world.as_raw(),
                    &mut request,
                );
            } else {
                ffi::MPI_Ireduce(
                    send.cast(),
                    recv.cast(),
                    values,
                    datatype,
                    sum,
                    0,
                    self.world.as_raw(),
                    &mut request,
                );
            }
        }
        self.pending.borrow_mut().push(Pending::Sum {
            request,
            recv: recv.cast(),
            len,
            datatype,
        });
    }

    /// Starts a reduce-scatter of `T` by messages: each other rank is sent
    /// its block of `send` and sends this rank's block of its own, and
    /// [`Collective::wait_sums`] adds them up in rank order. Open MPI's
    /// reduce-scatter and all-reduce took 0.55–0.65 ms for `mlp_big`'s 2.7
    /// MB on two ranks of one machine, these messages 0.32 ms.
    ///
    /// # Safety
    /// As for [`Collective::start_reduce_scatter_f32`].
    unsafe fn start_blocks<T: Equivalence + Float>(
        &self,
        send: *const T,
        recv: *mut T,
        counts: &[usize],
    ) {
        let (me, size) = (self.rank(), self.size());
        assert_eq!(counts.len(), size, "reduce-scatter: one count per rank");
        if size == 1 {
            // SAFETY: the caller's promise: valid, not overlapping.
            unsafe { std::ptr::copy_nonoverlapping(send, recv, counts[0]) };
            return;
        }
        let starts = block_starts(counts);
        let own = counts[me];
        let mut parts = self.spare.borrow_mut().pop().unwrap_or_default();
        let words = (own * (size - 1) * size_of::<T>()).div_ceil(size_of::<f64>());
        if parts.len() < words {
            parts.resize(words, 0.0);
        }
        let parts_at: *mut T = parts.as_mut_ptr().cast();
        let datatype = T::equivalent_datatype().as_raw();
        let mut requests = Vec::with_capacity(2 * size);
        for (slot, k) in (0..size).filter(|&k| k != me).enumerate() {
            // SAFETY: the blocks lie inside `send` (the caller's promise) and
            // `parts` (sized above); both stay put until `wait_sums`, the
            // requests are waited for there.
            unsafe {
                let messages = Messages {
                    comm: self.blocks.as_raw(),
                    datatype,
                    peer: k,
                    tag: REDUCE_SCATTER,
                };
                messages.send(send.add(starts[k]), counts[k], &mut requests);
                messages.receive(parts_at.add(slot * own), own, &mut requests);
            }
        }
        let (send, recv) = (send as usize, recv as usize);
        let add = Box::new(move |mpi: &Mpi| {
            // SAFETY: every message is in (waited for before this runs);
            // the caller keeps `send` and `recv` until `wait_sums` returns.
            let (mine, out, others) = unsafe {
                (
                    std::slice::from_raw_parts((send as *const T).add(starts[me]), own),
                    std::slice::from_raw_parts_mut((recv as *mut T).add(starts[me]), own),
                    std::slice::from_raw_parts(parts_at, own * (size - 1)),
                )
            };
            // Rank order, one contribution after another, as a vector loop:
            // every rank adds each element as one process would.
            let from = |k: usize| match k.cmp(&me) {
                std::cmp::Ordering::Equal => mine,
                std::cmp::Ordering::Less => &others[k * own..(k + 1) * own],
                std::cmp::Ordering::Greater => &others[(k - 1) * own..k * own],
            };
            // (`size` is at least 2: one rank sends no messages.)
            for ((dst, &a), &b) in out.iter_mut().zip(from(0)).zip(from(1)) {
                *dst = a + b;
            }
            for k in 2..size {
                for (dst, &v) in out.iter_mut().zip(from(k)) {
                    *dst += v;
                }
            }
            mpi.spare.borrow_mut().push(parts);
        });
        self.pending
            .borrow_mut()
            .push(Pending::Blocks { requests, add });
    }

    /// Every rank's share of each piece, by messages straight between the
    /// pieces (no packing; see [`Collective::exchange_shares_f32`]).
    fn exchange<T: Equivalence>(&self, pieces: &mut [&mut [T]]) {
        let (me, size) = (self.rank(), self.size());
        if size < 2 {
            return;
        }
        let share = Share::new(me, size);
        let datatype = T::equivalent_datatype().as_raw();
        let mut requests = Vec::with_capacity(2 * pieces.len() * (size - 1));
        for piece in pieces.iter_mut() {
            let (at, len) = (piece.as_mut_ptr(), piece.len());
            let own = share.range(len);
            for k in (0..size).filter(|&k| k != me) {
                let theirs = share.range_of(k, len);
                // SAFETY: both ranges lie inside the piece, borrowed until
                // the requests are waited for below, and are disjoint.
                unsafe {
                    let messages = Messages {
                        comm: self.blocks.as_raw(),
                        datatype,
                        peer: k,
                        tag: SHARES,
                    };
                    messages.send(at.add(own.start), own.len(), &mut requests);
                    messages.receive(at.add(theirs.start), theirs.len(), &mut requests);
                }
            }
        }
        // SAFETY: live requests of this process.
        unsafe {
            ffi::MPI_Waitall(
                requests.len() as i32,
                requests.as_mut_ptr(),
                ffi::RSMPI_STATUSES_IGNORE,
            );
        }
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

    unsafe fn start_reduce_scatter_f32(&self, send: *const f32, recv: *mut f32, counts: &[usize]) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.start_blocks(send, recv, counts) }
    }

    unsafe fn start_reduce_scatter_f64(&self, send: *const f64, recv: *mut f64, counts: &[usize]) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.start_blocks(send, recv, counts) }
    }

    fn exchange_shares_f32(&self, pieces: &mut [&mut [f32]]) {
        self.exchange(pieces);
    }

    fn exchange_shares_f64(&self, pieces: &mut [&mut [f64]]) {
        self.exchange(pieces);
    }

    fn progress_sums(&self) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        let mut requests: Vec<ffi::MPI_Request> = pending
            .iter_mut()
            .flat_map(|p| p.requests().iter().copied())
            .collect();
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
        let mut done = requests.into_iter();
        for p in pending.iter_mut() {
            for (r, d) in p.requests().iter_mut().zip(&mut done) {
                *r = d;
            }
        }
    }

    fn wait_sums(&self) {
        let mut pending = std::mem::take(&mut *self.pending.borrow_mut());
        if pending.is_empty() {
            return;
        }
        let mut requests: Vec<ffi::MPI_Request> = pending
            .iter_mut()
            .flat_map(|p| p.requests().iter().copied())
            .collect();
        // SAFETY: live requests (or null ones) of this process, and then
        // buffers the starters keep until this returns.
        unsafe {
            ffi::MPI_Waitall(
                requests.len() as i32,
                requests.as_mut_ptr(),
                ffi::RSMPI_STATUSES_IGNORE,
            );
        }
        for p in pending {
            match p {
                Pending::Sum {
                    recv,
                    len,
                    datatype,
                    ..
                } if self.world.size() > 2 => {
                    // SAFETY: the sum into `recv` is done; the starter keeps
                    // it until this returns.
                    unsafe {
                        ffi::MPI_Bcast(recv, len as i32, datatype, 0, self.world.as_raw());
                    }
                }
                Pending::Sum { .. } => {}
                Pending::Blocks { add, .. } => add(self),
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
