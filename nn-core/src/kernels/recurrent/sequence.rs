//! The sequence driver: forward over time and back-propagation through
//! time, into the caller's buffers.

use std::ops::Range;

use ndarray::{s, ArrayView1, ArrayView2, ArrayView3, Axis, Zip};
use ndarray::{ArrayViewMut1, ArrayViewMut2, ArrayViewMut3};

use super::shapes::check_shapes;
use super::step::StepRows;
use super::{Cell, Dims, Shapes};
use crate::kernels::gemm::{gemm, with_packed_rhs};
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

/// The forward's scratch, sized `[B, G·H]` and `[B, S]`, standard layout.
pub struct ForwardScratch<'a, T> {
    /// A step's hidden projection.
    pub hidden: ArrayViewMut2<'a, T>,
    /// The previous step's state.
    pub state: ArrayViewMut2<'a, T>,
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
    /// Every step's gate gradients: `[B, T, grad_width]` (see [`Cell::grad_width`]).
    pub dgates: ArrayViewMut3<'a, T>,
    /// The running gradient of the state: `[B, S]`.
    pub carry: ArrayViewMut2<'a, T>,
    /// The initial state: `[B, S]`.
    pub initial: ArrayViewMut2<'a, T>,
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
/// [B, T, S]` and what backward needs into `cache: [B, T, cache_width]`
/// (both standard layout).
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
    let (b, t, h, name) = (d.batch, d.steps, d.hidden, cell.name());
    let (gh, sw, cw) = (C::GATES * h, C::state_width(h), C::cache_width(h));
    let ForwardScratch {
        hidden: mut hp,
        mut state,
    } = scratch;
    check_buffer(name, "cache", &cache, &[b, t, cw]);
    check_buffer(name, "states", &states, &[b, t, sw]);
    check_buffer(name, "hidden projection", &hp, &[b, gh]);
    check_buffer(name, "state", &state, &[b, sw]);

    // Where the two projections are only ever summed (no split gradient),
    // b_ih joins b_hh in the small per-step hidden projection instead of
    // being written into every step's input projection.
    let fold_b_ih = !C::SPLIT_GRAD;
    // The input projection of every step at once: cache[.., ..G·H] = x W_ihᵀ (+ b_ih).
    {
        let mut rows = cache
            .view_mut()
            .into_shape_with_order((b * t, cw))
            .expect("standard layout");
        let mut xp = rows.slice_mut(s![.., ..gh]);
        let beta = if fold_b_ih {
            T::zero()
        } else {
            xp.assign(&run.b_ih);
            T::one()
        };
        row_blocks(run.x, |x, r| {
            gemm(
                T::one(),
                &x,
                &run.w_ih.t(),
                beta,
                &mut xp.slice_mut(s![r, ..]),
            )
        });
    }
    run.initial_state(h, state.view_mut());
    let shared = [
        Shared::new(cache.as_slice_mut().expect("standard layout")),
        Shared::new(states.as_slice_mut().expect("standard layout")),
        Shared::new(hp.as_slice_mut().expect("standard layout")),
        Shared::new(state.as_slice_mut().expect("standard layout")),
    ];
    // W_hhᵀ packed once for every step's product on every part.
    with_packed_rhs(&run.w_hh.t(), |w_hh_t| {
        for_each_batch_part(b, t * gh * h, &|r| {
            // SAFETY: the parts' batch ranges are disjoint, and each array is
            // laid out batch row by batch row.
            let [cache, states, hp, state] = unsafe {
                [
                    shared[0].slice(r.start * t * cw..r.end * t * cw),
                    shared[1].slice(r.start * t * sw..r.end * t * sw),
                    shared[2].slice(r.start * gh..r.end * gh),
                    shared[3].slice(r.start * sw..r.end * sw),
                ]
            };
            let n = r.len();
            for k in 0..t {
                let ti = run.time(k, t);
                let mut hp2 = ArrayViewMut2::from_shape((n, gh), &mut *hp).expect("sized above");
                if fold_b_ih {
                    Zip::from(&mut hp2)
                        .and_broadcast(&run.b_ih)
                        .and_broadcast(&run.b_hh)
                        .for_each(|p, &bi, &bh| *p = bi + bh);
                } else {
                    hp2.assign(&run.b_hh);
                }
                let prev = ArrayView2::from_shape((n, sw), &*state).expect("sized above");
                w_hh_t.gemm(T::one(), &prev.slice(s![.., ..h]), T::one(), &mut hp2);
                let rows = StepRows {
                    b: n,
                    t,
                    ti,
                    h,
                    sw,
                    cw,
                    gh,
                };
                rows.forward(cell, cache, hp, state, states);
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
    let (b, t, h, name) = (d.batch, d.steps, d.hidden, cell.name());
    let (gh, sw, cw, gw) = (
        C::GATES * h,
        C::state_width(h),
        C::cache_width(h),
        C::grad_width(h),
    );
    let BackwardScratch {
        mut dgates,
        mut carry,
        mut initial,
    } = scratch;
    check_buffer(name, "cache", &cache, &[b, t, cw]);
    check_buffer(name, "states", &states, &[b, t, sw]);
    check_buffer(name, "gate gradient", &dgates, &[b, t, gw]);
    check_buffer(name, "carry", &carry, &[b, sw]);
    check_buffer(name, "initial state", &initial, &[b, sw]);
    check_grads::<T, C>(name, &d, &dout, &grads);
    let hid = if C::SPLIT_GRAD { gh..2 * gh } else { 0..gh };

    run.initial_state(h, initial.view_mut());
    carry.fill(T::zero());
    let (cache_s, states_s, init_s) = (
        cache.as_slice().expect("standard layout"),
        states.as_slice().expect("standard layout"),
        initial.as_slice().expect("standard layout"),
    );
    let shared = [
        Shared::new(dgates.as_slice_mut().expect("standard layout")),
        Shared::new(carry.as_slice_mut().expect("standard layout")),
    ];
    // W_hh packed once for every step's product on every part.
    with_packed_rhs(&run.w_hh, |w_hh| {
        for_each_batch_part(b, t * gh * h, &|r| {
            // SAFETY: as in the forward, disjoint batch ranges.
            let [dg, ds] = unsafe {
                [
                    shared[0].slice(r.start * t * gw..r.end * t * gw),
                    shared[1].slice(r.start * sw..r.end * sw),
                ]
            };
            let n = r.len();
            let cache = &cache_s[r.start * t * cw..r.end * t * cw];
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
                    cw,
                    gh: gw,
                };
                let prev_time = (k > 0).then(|| run.time(k - 1, t));
                rows.backward(cell, cache, states, init, prev_time, ds, dg);
                // The previous hidden state's gradient through W_hh.
                let dgates = ArrayView3::from_shape((n, t, gw), &*dg).expect("sized above");
                let mut carry = ArrayViewMut2::from_shape((n, sw), &mut *ds).expect("sized above");
                w_hh.gemm(
                    T::one(),
                    &dgates.slice(s![.., ti, hid.clone()]),
                    T::one(),
                    &mut carry.slice_mut(s![.., ..h]),
                );
            }
        });
    });
    let Grads {
        x: dx,
        h0: dh0,
        c0: dc0,
        w_ih: dw_ih,
        w_hh: dw_hh,
        b_ih: db_ih,
        b_hh: db_hh,
    } = grads;
    if let Some(mut dh0) = dh0 {
        dh0 += &carry.slice(s![.., ..h]);
    }
    if let Some(mut dc0) = dc0 {
        dc0 += &carry.slice(s![.., h..]);
    }

    // Every step's gate gradients at once.
    let dgates = dgates.view();
    let rows = dgates
        .into_shape_with_order((b * t, gw))
        .expect("standard layout");
    let (dgx, dgh) = (rows.slice(s![.., ..gh]), rows.slice(s![.., hid.clone()]));
    match (db_ih, db_hh) {
        // Without a split gradient both biases get the same sums: one pass.
        (Some(di), Some(dh)) if !C::SPLIT_GRAD => add_row_sums(&mut [di, dh], dgx),
        (di, dh) => {
            if let Some(db) = di {
                add_row_sums(&mut [db], dgx);
            }
            if let Some(db) = dh {
                add_row_sums(&mut [db], dgh);
            }
        }
    }
    if let Some(mut dw) = dw_ih {
        row_blocks(run.x, |x, r| {
            gemm(T::one(), &dgx.slice(s![r, ..]).t(), &x, T::one(), &mut dw)
        });
    }
    if let Some(dx) = dx {
        row_blocks_mut(dx, |mut dx, r| {
            gemm(
                T::one(),
                &dgx.slice(s![r, ..]),
                &run.w_ih,
                T::one(),
                &mut dx,
            )
        });
    }
    if let Some(mut dw) = dw_hh {
        // Σ_t dgh_tᵀ h_{t-1}, every step of every sequence in one product
        // (long enough to run near the GEMM's peak, where one per step was
        // t − 1 short ones, each a parallel region): in the flattened rows `[b·t, ·]`
        // each step's row is paired with the row one step earlier in the
        // run's order — the row before it, or after it when the run goes
        // backwards — which is right except across the b − 1 boundaries
        // between sequences; those pairs are taken back out by a short second
        // product.
        let dg3 = dgates;
        if t > 1 {
            let n = b * t;
            let hs = states
                .into_shape_with_order((n, sw))
                .expect("standard layout");
            let (dgh, hs) = (rows.slice(s![.., hid.clone()]), hs.slice(s![.., ..h]));
            let (later, earlier) = if run.reverse {
                (dgh.slice(s![..n - 1, ..]), hs.slice(s![1.., ..]))
            } else {
                (dgh.slice(s![1.., ..]), hs.slice(s![..n - 1, ..]))
            };
            gemm(T::one(), &later.t(), &earlier, T::one(), &mut dw);
            if b > 1 {
                let (later, earlier) = if run.reverse {
                    (
                        dg3.slice(s![..b - 1, t - 1, hid.clone()]),
                        states.slice(s![1.., 0, ..h]),
                    )
                } else {
                    (
                        dg3.slice(s![1.., 0, hid.clone()]),
                        states.slice(s![..b - 1, t - 1, ..h]),
                    )
                };
                gemm(-T::one(), &later.t(), &earlier, T::one(), &mut dw);
            }
        }
        if run.h0.is_some() {
            let first = run.time(0, t);
            gemm(
                T::one(),
                &dg3.slice(s![.., first, hid]).t(),
                &initial.slice(s![.., ..h]),
                T::one(),
                &mut dw,
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

/// Adds the column sums of `m` (each column summed in row order) into every
/// accumulator, reading `m` once.
fn add_row_sums<T: Float>(accs: &mut [ArrayViewMut1<'_, T>], m: ArrayView2<'_, T>) {
    for row in m.rows() {
        for acc in accs.iter_mut() {
            acc.zip_mut_with(&row, |a, &g| *a += g);
        }
    }
}

/// `to += g`.
fn add_into<T: Float>(mut to: ArrayViewMut2<'_, T>, g: ArrayView2<'_, T>) {
    to += &g;
}

/// Calls `f` with `x: [B, T, K]` as matrices of rows `(b, t)` and their row
/// range in the flattened `[B·T, K]`: once with every row when the layout
/// allows, else once per sequence (no copy either way).
fn row_blocks<'a, T: Float>(
    x: ArrayView3<'a, T>,
    mut f: impl FnMut(ArrayView2<'a, T>, Range<usize>),
) {
    let (b, t, k) = x.dim();
    match x.into_shape_with_order((b * t, k)) {
        Ok(rows) => f(rows, 0..b * t),
        Err(_) => {
            for bi in 0..b {
                f(x.index_axis_move(Axis(0), bi), bi * t..(bi + 1) * t);
            }
        }
    }
}

/// [`row_blocks`] of a mutable array.
fn row_blocks_mut<T: Float>(
    mut x: ArrayViewMut3<'_, T>,
    mut f: impl FnMut(ArrayViewMut2<'_, T>, Range<usize>),
) {
    let (b, t, k) = x.dim();
    if x.is_standard_layout() {
        f(
            x.into_shape_with_order((b * t, k))
                .expect("standard layout"),
            0..b * t,
        );
    } else {
        for (bi, seq) in x.outer_iter_mut().enumerate() {
            f(seq, bi * t..(bi + 1) * t);
        }
    }
}

/// Runs `f` on parts of the batch `0..b`, in parallel when the work repays
/// it: batch rows are independent through time, so each part runs the whole
/// recurrence on its rows, its products included, with no hand-off per step
/// (`macs` is the per-row work).
fn for_each_batch_part(b: usize, macs: usize, f: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
    let parts = parts_for(b, b.saturating_mul(macs) >> 6);
    let step = b.div_ceil(parts.max(1));
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
