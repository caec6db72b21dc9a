//! The sequence driver: forward over time and back-propagation through
//! time, into the caller's buffers.

use ndarray::{s, ArrayView1, ArrayView2, ArrayView3, Axis};
use ndarray::{ArrayViewMut1, ArrayViewMut2, ArrayViewMut3};

use super::operands::{
    add_block_sums, add_operand_products, join_weights, project_inputs, stage_operands,
};
use super::shapes::{check_shapes, CacheFor};
use super::step::StepRows;
use super::{Cell, Dims, Shapes};
use crate::kernels::gemm::{gemm_tiles, with_packed_rhs};
use crate::parallel::{for_each_part, parts_for, Shared};
use crate::Float;

/// One direction of one layer over a batch of sequences: the input, the
/// parameters (PyTorch's layouts), the initial states (zeros when absent)
/// and the direction.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a, T> {
    /// `[B, T, I]`, any strides.
    pub x: ArrayView3<'a, T>,
    /// `W_ih: [G·H, I]`.
    pub w_ih: ArrayView2<'a, T>,
    /// `W_hh: [G·H, H]`.
    pub w_hh: ArrayView2<'a, T>,
    /// `b_ih: [G·H]`.
    pub b_ih: ArrayView1<'a, T>,
    /// `b_hh: [G·H]`.
    pub b_hh: ArrayView1<'a, T>,
    /// `h_0: [B, H]`.
    pub h0: Option<ArrayView2<'a, T>>,
    /// `c_0: [B, H]` (an LSTM's only).
    pub c0: Option<ArrayView2<'a, T>>,
    /// Runs time backwards: reads `x` from `t = T-1` down to 0 and writes
    /// the state after `x_t` at `t`, PyTorch's reverse direction.
    pub reverse: bool,
}

impl<T: Float> Run<'_, T> {
    #[track_caller]
    pub(super) fn dims<C: Cell>(&self, cell: &C) -> Dims {
        let shapes = Shapes {
            x: self.x.shape(),
            w_ih: self.w_ih.shape(),
            w_hh: self.w_hh.shape(),
            b_ih: self.b_ih.shape(),
            b_hh: self.b_hh.shape(),
            h0: self.h0.as_ref().map(|a| a.shape()),
            c0: self.c0.as_ref().map(|a| a.shape()),
        };
        match check_shapes(cell, &shapes) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// The time index of the `k`-th step processed.
    fn time(&self, k: usize, steps: usize) -> usize {
        if self.reverse {
            steps - 1 - k
        } else {
            k
        }
    }

    /// Writes the initial state `[h0, c0]` (zeros where absent) into `state: [B, S]`.
    fn initial_state(&self, hidden: usize, mut state: ArrayViewMut2<'_, T>) {
        state.fill(T::zero());
        if let Some(h0) = &self.h0 {
            state.slice_mut(s![.., ..hidden]).assign(h0);
        }
        if let Some(c0) = &self.c0 {
            state.slice_mut(s![.., hidden..]).assign(c0);
        }
    }
}

/// The forward's scratch, standard layout.
pub struct ForwardScratch<'a, T> {
    /// A step's hidden projection `[B, G·H]` (read only by cells with
    /// [`Cell::SPLIT_GRAD`]; the others take both projections in one product).
    pub hidden: ArrayViewMut2<'a, T>,
    /// The initial state `[B, S]` (later steps read theirs from `states`).
    pub state: ArrayViewMut2<'a, T>,
    /// The joined weights `[W_ih, bias, W_hh]`: [`Dims::joined_weights`].
    pub weights: ArrayViewMut2<'a, T>,
}

/// The gradients of a run's states, each optional (absent is zero).
#[derive(Clone, Copy, Debug)]
pub struct StateGrads<'a, T> {
    /// Of every step's `h` (the output): `[B, T, H]`, any strides.
    pub h: Option<ArrayView3<'a, T>>,
    /// Of every step's `c` (LSTM): `[B, T, H]`.
    pub c: Option<ArrayView3<'a, T>>,
    /// Of the final `h_n`: `[B, H]` (the state at `T-1`, or at 0 reversed).
    pub h_n: Option<ArrayView2<'a, T>>,
    /// Of the final `c_n`: `[B, H]`.
    pub c_n: Option<ArrayView2<'a, T>>,
}

impl<T> Default for StateGrads<'_, T> {
    fn default() -> Self {
        StateGrads {
            h: None,
            c: None,
            h_n: None,
            c_n: None,
        }
    }
}

/// Where [`recurrent_backward_into`] adds (`+=`) each gradient; `None`
/// skips it (a frozen parameter, an input that needs none).
pub struct Grads<'a, T> {
    /// `[B, T, I]`.
    pub x: Option<ArrayViewMut3<'a, T>>,
    /// `[B, H]`.
    pub h0: Option<ArrayViewMut2<'a, T>>,
    /// `[B, H]`.
    pub c0: Option<ArrayViewMut2<'a, T>>,
    /// `[G·H, I]`.
    pub w_ih: Option<ArrayViewMut2<'a, T>>,
    /// `[G·H, H]`.
    pub w_hh: Option<ArrayViewMut2<'a, T>>,
    /// `[G·H]`.
    pub b_ih: Option<ArrayViewMut1<'a, T>>,
    /// `[G·H]`.
    pub b_hh: Option<ArrayViewMut1<'a, T>>,
}

/// The backward's scratch, standard layout.
pub struct BackwardScratch<'a, T> {
    /// Every step's gate gradients, time first: `[T, B, grad_width]` (see
    /// [`Cell::grad_width`]).
    pub dgates: ArrayViewMut3<'a, T>,
    /// The running gradient of the state: `[B, S]`.
    pub carry: ArrayViewMut2<'a, T>,
    /// The initial state: `[B, S]`.
    pub initial: ArrayViewMut2<'a, T>,
    /// The parameters' gradients per block of the batch: [`Dims::block_grads`].
    pub block_grads: ArrayViewMut3<'a, T>,
}

#[track_caller]
fn check_buffer<S: ndarray::RawData, D: ndarray::Dimension>(
    name: &str,
    what: &str,
    a: &ndarray::ArrayBase<S, D>,
    want: &[usize],
) {
    assert!(
        a.shape() == want && a.is_standard_layout(),
        "{name}: the {what} buffer must be a standard-layout array of shape {want:?}, got {:?}",
        a.shape()
    );
}

/// Runs `cell` over the sequence: writes every step's state into `states:
/// [B, T, S]` and what backward needs into `cache: [T, B, cache_row_width]`
/// (time first, so that a step's rows are contiguous; [`Dims::cache_row_width`]:
/// the cell's cache, then the step's operands `[x_t, 1, h_{t-1}]`), both
/// standard layout. For inference the cache may have
/// [`Dims::cache_shape`]'s shape for [`CacheFor::Inference`]: where the run
/// joins its input, a single step's `[1, B, cache_row_width]`, reused by
/// every step, so nothing is kept for backward.
///
/// # Panics
/// If the shapes do not fit (see [`check_shapes`]) or a buffer has the wrong
/// shape, naming the cell and the shapes.
#[track_caller]
pub fn recurrent_forward_into<T: Float, C: Cell>(
    cell: &C,
    run: &Run<'_, T>,
    mut cache: ArrayViewMut3<'_, T>,
    mut states: ArrayViewMut3<'_, T>,
    scratch: ForwardScratch<'_, T>,
) {
    let d = run.dims(cell);
    let (b, t, i, h, name) = (d.batch, d.steps, d.input, d.hidden, cell.name());
    let (gh, sw, cw, rw) = (
        C::GATES * h,
        C::state_width(h),
        C::cache_width(h),
        d.cache_row_width::<C>(),
    );
    let ForwardScratch {
        hidden: mut hp,
        mut state,
        mut weights,
    } = scratch;
    let joined = d.joins_input::<C>();
    let inference = d.cache_shape::<C>(CacheFor::Inference);
    let cache_shape = if cache.shape() == inference {
        inference
    } else {
        d.cache_shape::<C>(CacheFor::Backward)
    };
    check_buffer(name, "cache", &cache, &cache_shape);
    let slots = cache_shape[0];
    check_buffer(name, "states", &states, &[b, t, sw]);
    check_buffer(name, "hidden projection", &hp, &[b, gh]);
    check_buffer(name, "state", &state, &[b, sw]);
    check_buffer(name, "joined weights", &weights, &d.joined_weights::<C>());
    if b == 0 {
        // An empty batch: no states to write (PyTorch's modules allow it).
        return;
    }

    // While the joined weights are small ([`Dims::joins_input`]), one product
    // per step takes both projections and the biases, `[x_t, 1, h_{t-1}]
    // [W_ih, b, W_hh]ᵀ`, written straight into the cache rows the cell reads
    // next. Otherwise every step's input is projected first, `x_t W_ihᵀ`
    // (`+ b_ih` for a split gradient), and the step's product `[1, h_{t-1}]
    // [b, W_hh]ᵀ` is added to it, or for a split gradient is the separate
    // hidden projection. The bias column `b` is what the step's product adds
    // through the operands' 1: both biases, or b_hh alone when split.
    join_weights::<T, C>(run, joined, weights.view_mut());
    if !joined {
        project_inputs::<T, C>(run, cache.view_mut());
    }
    run.initial_state(h, state.view_mut());
    let shared = [
        Shared::new(cache.as_slice_mut().expect("standard layout")),
        Shared::new(states.as_slice_mut().expect("standard layout")),
        Shared::new(hp.as_slice_mut().expect("standard layout")),
        Shared::new(state.as_slice_mut().expect("standard layout")),
    ];
    let first = if joined { 0 } else { i };
    let weights = weights.view();
    with_packed_rhs(&weights.slice(s![.., first..]).t(), |w| {
        for_each_batch_part(b, 1, t * gh * (i + h + 1 - first), &|r| {
            // SAFETY: the parts' batch ranges are disjoint, and each array is
            // laid out batch row by batch row (the cache, step by step).
            let [states, hp, state] = unsafe {
                [
                    shared[1].slice(r.start * t * sw..r.end * t * sw),
                    shared[2].slice(r.start * gh..r.end * gh),
                    shared[3].slice(r.start * sw..r.end * sw),
                ]
            };
            let n = r.len();
            for k in 0..t {
                let ti = run.time(k, t);
                let slot = if slots == 1 { 0 } else { ti };
                // SAFETY: as above: this part's rows of the step.
                let cache =
                    unsafe { shared[0].slice((slot * b + r.start) * rw..(slot * b + r.end) * rw) };
                // The previous state: the initial one, or the last step's
                // row of `states` (a whole sequence apart from row to row).
                let prev_time = (k > 0).then(|| run.time(k - 1, t));
                let (prev, stride) = match prev_time {
                    None => (&*state, sw),
                    Some(tp) => (&states[tp * sw..], t * sw),
                };
                stage_operands(
                    run.x.slice(s![r.clone(), ti, ..]),
                    (prev, stride),
                    h,
                    cache,
                    (cw, rw),
                );
                {
                    let rows =
                        ArrayViewMut2::from_shape((n, rw), &mut *cache).expect("sized above");
                    let (mut pre, ops) = rows.split_at(Axis(1), cw);
                    let ops = ops.slice(s![.., first..]);
                    let mut hidden_proj;
                    let (mut out, beta) = if joined {
                        (pre.slice_mut(s![.., ..gh]), T::zero())
                    } else if C::SPLIT_GRAD {
                        hidden_proj =
                            ArrayViewMut2::from_shape((n, gh), &mut *hp).expect("sized above");
                        (hidden_proj.view_mut(), T::zero())
                    } else {
                        (pre.slice_mut(s![.., ..gh]), T::one())
                    };
                    if k == 0 && run.h0.is_none() {
                        // h_{-1} is zero: the first step's product takes only
                        // the operands before it (`[x_0, 1]` joined, the 1
                        // otherwise). The terms left out are zeros, and the
                        // tiles sum the rest as the packed product would, so
                        // the sums are the same bits (for finite `W_hh`: a
                        // zero times an infinity was NaN).
                        let nonzero = i + 1 - first;
                        let w0 = weights.slice(s![.., first..first + nonzero]);
                        gemm_tiles(
                            T::one(),
                            &ops.slice(s![.., ..nonzero]),
                            &w0.t(),
                            beta,
                            &mut out,
                        );
                    } else {
                        w.gemm(T::one(), &ops, beta, &mut out);
                    }
                }
                let rows = StepRows {
                    b: n,
                    t,
                    ti,
                    h,
                    sw,
                    cache_row: rw,
                    gate_row: gh,
                };
                rows.forward(cell, cache, hp, (state, prev_time), states);
            }
        });
    });
}

/// Back-propagation through time for a run of [`recurrent_forward_into`]
/// (`cache` and `states` as it wrote them), given the gradients of the
/// states: adds the gradients of `x`, `h0`, `c0` and the parameters into
/// `grads` where given.
///
/// # Panics
/// If the shapes do not fit or a buffer has the wrong shape, naming the cell
/// and the shapes.
#[track_caller]
pub fn recurrent_backward_into<T: Float, C: Cell>(
    cell: &C,
    run: &Run<'_, T>,
    cache: ArrayView3<'_, T>,
    states: ArrayView3<'_, T>,
    dout: StateGrads<'_, T>,
    grads: Grads<'_, T>,
    scratch: BackwardScratch<'_, T>,
) {
    let d = run.dims(cell);
    let (b, t, i, h, name) = (d.batch, d.steps, d.input, d.hidden, cell.name());
    let (gh, sw, cw, rw, gw) = (
        C::GATES * h,
        C::state_width(h),
        C::cache_width(h),
        d.cache_row_width::<C>(),
        C::grad_width(h),
    );
    let BackwardScratch {
        mut dgates,
        mut carry,
        mut initial,
        mut block_grads,
    } = scratch;
    check_buffer(
        name,
        "cache",
        &cache,
        &d.cache_shape::<C>(CacheFor::Backward),
    );
    check_buffer(name, "states", &states, &[b, t, sw]);
    check_buffer(name, "gate gradient", &dgates, &[t, b, gw]);
    check_buffer(name, "carry", &carry, &[b, sw]);
    check_buffer(name, "initial state", &initial, &[b, sw]);
    check_buffer(name, "block gradient", &block_grads, &d.block_grads::<C>());
    check_grads::<T, C>(name, &d, &dout, &grads);
    if b == 0 {
        // An empty batch adds nothing to any gradient.
        return;
    }
    let hid = if C::SPLIT_GRAD { gh..2 * gh } else { 0..gh };
    let Grads {
        x: dx,
        h0: dh0,
        c0: dc0,
        w_ih: dw_ih,
        w_hh: dw_hh,
        b_ih: db_ih,
        b_hh: db_hh,
    } = grads;
    let want_dh0 = dh0.is_some();
    let param_grads = dw_ih.is_some() || dw_hh.is_some() || db_ih.is_some() || db_hh.is_some();
    // Per step and block while the rows are in cache, or after the loop.
    let per_step = d.grad_block::<C>().filter(|_| param_grads);
    let keep_steps = dx.is_some() || (param_grads && per_step.is_none());

    run.initial_state(h, initial.view_mut());
    carry.fill(T::zero());
    let (cache_s, states_s, init_s) = (
        cache.as_slice().expect("standard layout"),
        states.as_slice().expect("standard layout"),
        initial.as_slice().expect("standard layout"),
    );
    let ow = d.operand_width();
    let shared = [
        Shared::new(dgates.as_slice_mut().expect("standard layout")),
        Shared::new(carry.as_slice_mut().expect("standard layout")),
        Shared::new(block_grads.as_slice_mut().expect("standard layout")),
    ];
    // W_hh packed once for every step's product on every part.
    with_packed_rhs(&run.w_hh, |w_hh| {
        let block = per_step.unwrap_or(1);
        for_each_batch_part(b, block, t * gh * (h + ow), &|r| {
            // SAFETY: as in the forward, disjoint batch ranges; the parts
            // start on block boundaries, so their blocks are disjoint too.
            let (first_block, blocks) = match per_step {
                Some(block) => (r.start / block, r.len().div_ceil(block)),
                None => (0, 0),
            };
            let [ds, acc] = unsafe {
                [
                    shared[1].slice(r.start * sw..r.end * sw),
                    shared[2].slice(first_block * gw * ow..(first_block + blocks) * gw * ow),
                ]
            };
            let n = r.len();
            let states = &states_s[r.start * t * sw..r.end * t * sw];
            let init = &init_s[r.start * sw..r.end * sw];
            for k in (0..t).rev() {
                let ti = run.time(k, t);
                {
                    let mut carry =
                        ArrayViewMut2::from_shape((n, sw), &mut *ds).expect("sized above");
                    if let Some(dh) = &dout.h {
                        add_into(
                            carry.slice_mut(s![.., ..h]),
                            dh.slice(s![r.clone(), ti, ..]),
                        );
                    }
                    if let Some(dc) = &dout.c {
                        add_into(
                            carry.slice_mut(s![.., h..]),
                            dc.slice(s![r.clone(), ti, ..]),
                        );
                    }
                    if k == t - 1 {
                        if let Some(dh) = &dout.h_n {
                            add_into(carry.slice_mut(s![.., ..h]), dh.slice(s![r.clone(), ..]));
                        }
                        if let Some(dc) = &dout.c_n {
                            add_into(carry.slice_mut(s![.., h..]), dc.slice(s![r.clone(), ..]));
                        }
                    }
                }
                let rows = StepRows {
                    b: n,
                    t,
                    ti,
                    h,
                    sw,
                    cache_row: rw,
                    gate_row: gw,
                };
                let prev_time = (k > 0).then(|| run.time(k - 1, t));
                let cache = &cache_s[(ti * b + r.start) * rw..(ti * b + r.end) * rw];
                // Only the input's gradient, and parameter gradients summed
                // after the loop, read the gate gradients after their step:
                // otherwise every step reuses the first step's rows, which
                // stay in cache.
                let slot = if keep_steps { ti } else { 0 };
                // SAFETY: as above: this part's rows of the step.
                let dg =
                    unsafe { shared[0].slice((slot * b + r.start) * gw..(slot * b + r.end) * gw) };
                rows.backward(cell, cache, states, init, prev_time, ds, dg);
                let step_dg = ArrayView2::from_shape((n, gw), &*dg).expect("sized above");
                if per_step.is_some() {
                    // The parameters' gradients, `Σ dgᵀ [x_t, 1, h_{t-1}]`, per
                    // block while the step's rows are still in cache: the
                    // operands' 1 gives the biases' sums.
                    let ops = ArrayView2::from_shape((n, rw), cache).expect("sized above");
                    let ops = ops.slice(s![.., cw..]);
                    let mut acc = ArrayViewMut3::from_shape((blocks, gw, ow), &mut *acc)
                        .expect("sized above");
                    let beta = if k == t - 1 { T::zero() } else { T::one() };
                    // A zero h_{-1} adds nothing to W_hh's sums (unless this
                    // step is also the first summed, whose beta of 0 writes them).
                    let nonzero = if k == 0 && k != t - 1 && run.h0.is_none() {
                        i + 1
                    } else {
                        ow
                    };
                    for (j, mut acc) in acc.outer_iter_mut().enumerate() {
                        let rows = j * block..((j + 1) * block).min(n);
                        let (dg, ops) = (
                            step_dg.slice(s![rows.clone(), ..]),
                            ops.slice(s![rows, ..nonzero]),
                        );
                        let acc = acc.slice_mut(s![.., ..nonzero]);
                        add_operand_products::<T, C>(dg, ops, i, beta, acc);
                    }
                }
                if k == 0 && !want_dh0 {
                    // The initial state's gradient: nobody reads it.
                    continue;
                }
                // The previous hidden state's gradient through W_hh.
                let mut carry = ArrayViewMut2::from_shape((n, sw), &mut *ds).expect("sized above");
                w_hh.gemm(
                    T::one(),
                    &step_dg.slice(s![.., hid.clone()]),
                    T::one(),
                    &mut carry.slice_mut(s![.., ..h]),
                );
            }
        });
    });
    if let Some(mut dh0) = dh0 {
        dh0 += &carry.slice(s![.., ..h]);
    }
    if let Some(mut dc0) = dc0 {
        dc0 += &carry.slice(s![.., h..]);
    }
    if param_grads && per_step.is_none() {
        // Every step's rows in one product (time first: both are matrices).
        let dg = dgates.view().into_shape_with_order((t * b, gw));
        let ops = cache.into_shape_with_order((t * b, rw));
        let (dg, ops) = (dg.expect("standard layout"), ops.expect("standard layout"));
        let acc = block_grads.index_axis_mut(Axis(0), 0);
        add_operand_products::<T, C>(dg, ops.slice(s![.., cw..]), i, T::zero(), acc);
    }
    add_block_sums::<T, C>(block_grads.view(), i, [dw_ih, dw_hh], [db_ih, db_hh]);
    if let Some(mut dx) = dx {
        // Each step's input gradient, on the tiles alone: a row's is the
        // same bits alone or batched (by shape, `gemm` could split the inner
        // dimension of a batch's product).
        for (ti, dg) in dgates.outer_iter().enumerate() {
            let mut dx = dx.index_axis_mut(Axis(1), ti);
            gemm_tiles(
                T::one(),
                &dg.slice(s![.., ..gh]),
                &run.w_ih,
                T::one(),
                &mut dx,
            );
        }
    }
}

/// Checks the shapes of the given state gradients and gradient buffers.
#[track_caller]
fn check_grads<T, C: Cell>(name: &str, d: &Dims, dout: &StateGrads<'_, T>, g: &Grads<'_, T>) {
    let (b, t, i, h, gh) = (d.batch, d.steps, d.input, d.hidden, C::GATES * d.hidden);
    assert!(
        C::CELL_STATE || (dout.c.is_none() && dout.c_n.is_none() && g.c0.is_none()),
        "{name}: cell-state gradients given, but only an LSTM has a cell state"
    );
    /// What, its shape when given, and the shape it must have.
    type Check<'a> = (&'a str, Option<&'a [usize]>, &'a [usize]);
    let checks: [Check<'_>; 11] = [
        (
            "the outputs' gradient",
            dout.h.as_ref().map(|a| a.shape()),
            &[b, t, h],
        ),
        (
            "the cell states' gradient",
            dout.c.as_ref().map(|a| a.shape()),
            &[b, t, h],
        ),
        (
            "h_n's gradient",
            dout.h_n.as_ref().map(|a| a.shape()),
            &[b, h],
        ),
        (
            "c_n's gradient",
            dout.c_n.as_ref().map(|a| a.shape()),
            &[b, h],
        ),
        ("x's gradient", g.x.as_ref().map(|a| a.shape()), &[b, t, i]),
        ("h0's gradient", g.h0.as_ref().map(|a| a.shape()), &[b, h]),
        ("c0's gradient", g.c0.as_ref().map(|a| a.shape()), &[b, h]),
        (
            "weight_ih's gradient",
            g.w_ih.as_ref().map(|a| a.shape()),
            &[gh, i],
        ),
        (
            "weight_hh's gradient",
            g.w_hh.as_ref().map(|a| a.shape()),
            &[gh, h],
        ),
        (
            "bias_ih's gradient",
            g.b_ih.as_ref().map(|a| a.shape()),
            &[gh],
        ),
        (
            "bias_hh's gradient",
            g.b_hh.as_ref().map(|a| a.shape()),
            &[gh],
        ),
    ];
    for (what, got, want) in checks {
        if let Some(got) = got {
            assert!(got == want, "{name}: {what} must be {want:?}, got {got:?}");
        }
    }
}

/// `to += g`.
fn add_into<T: Float>(mut to: ArrayViewMut2<'_, T>, g: ArrayView2<'_, T>) {
    to += &g;
}

/// Runs `f` on parts of the batch `0..b`, in parallel when the work repays
/// it: batch rows are independent through time, so each part runs the whole
/// recurrence on its rows, its products included, with no hand-off per step
/// (`macs` is the per-row work). Parts start on multiples of `align`.
fn for_each_batch_part(
    b: usize,
    align: usize,
    macs: usize,
    f: &(dyn Fn(std::ops::Range<usize>) + Sync),
) {
    let parts = parts_for(b, b.saturating_mul(macs) >> 6).min(b.div_ceil(align));
    let step = b.div_ceil(parts.max(1)).next_multiple_of(align);
    if parts <= 1 {
        return f(0..b);
    }
    for_each_part(parts, &|p| {
        let start = (p * step).min(b);
        let end = (start + step).min(b);
        if start < end {
            f(start..end)
        }
    });
}
