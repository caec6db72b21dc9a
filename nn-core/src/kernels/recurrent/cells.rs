//! The three cells' steps, each forward beside its backward.

use crate::Float;

/// `a` cut into `N` consecutive blocks of `h` (the gates of one step), each
/// sliced to exactly `h` so that indexing below `h` needs no bounds checks
/// and the loops over them vectorize.
fn blocks<T, const N: usize>(a: &[T], h: usize) -> [&[T]; N] {
    std::array::from_fn(|k| &a[k * h..(k + 1) * h])
}

/// [`blocks`] of a mutable slice.
fn blocks_mut<T, const N: usize>(a: &mut [T], h: usize) -> [&mut [T]; N] {
    let mut rest = &mut a[..N * h];
    std::array::from_fn(|_| {
        let (block, tail) = std::mem::take(&mut rest).split_at_mut(h);
        rest = tail;
        block
    })
}

/// The step of a recurrent cell, forward beside backward, over one sequence
/// of the batch and every hidden unit. The driver
/// ([`recurrent_forward_into`](super::recurrent_forward_into),
/// [`recurrent_backward_into`](super::recurrent_backward_into)) does the
/// products and the bookkeeping; a cell only turns the gates'
/// pre-activations into the new state and differentiates that.
pub trait Cell: Clone + Send + Sync + 'static {
    /// Gates per hidden unit: the row blocks of `W_ih`, `W_hh` and the biases.
    const GATES: usize;
    /// Whether the state holds a memory cell `c` beside `h` (the LSTM).
    const CELL_STATE: bool;
    /// Values per hidden unit a step caches for backward (the gates, and for
    /// the GRU the hidden part of its candidate).
    const CACHED: usize = Self::GATES;
    /// Whether the gradient of the hidden projection `h W_hhᵀ + b_hh` differs
    /// from that of the input projection (the GRU's `r ⊙ (W_hn h + b_hn)`).
    const SPLIT_GRAD: bool = false;

    /// The layer's name, Keras's (`"SimpleRNN"`, `"LSTM"`, `"GRU"`): what
    /// summaries show and misuse panics name.
    fn name(&self) -> &'static str;

    /// One step. On entry `cache` (at least `CACHED·H`) begins with the
    /// gates' pre-activations (`G·H`) and `prev` holds the previous state
    /// (`S`). Without [`Cell::SPLIT_GRAD`] the pre-activations are the whole
    /// sum `x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh` and `hp` is to be
    /// ignored; with it they are the input projection `x_t W_ihᵀ + b_ih`,
    /// and `hp` is the hidden projection `h_{t-1} W_hhᵀ + b_hh` (`G·H`).
    /// Writes the new state into `next` and what backward needs into `cache`.
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        hp: &[T],
        prev: &[T],
        next: &mut [T],
    );

    /// Backward of [`Cell::forward_step`]. On entry `dstate` (`S`) holds the
    /// gradient of the step's state `cur`; on exit, the part of the previous
    /// state's gradient that does not pass through `W_hh`. Writes the
    /// gradient of the input projection into `dgates[..G·H]` and, when
    /// [`Cell::SPLIT_GRAD`], that of the hidden projection into
    /// `dgates[G·H..2·G·H]`.
    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        prev: &[T],
        cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    );

    /// Width `S` of a step's state: `2H` with a memory cell, else `H`.
    fn state_width(hidden: usize) -> usize {
        hidden * if Self::CELL_STATE { 2 } else { 1 }
    }

    /// Width of a step's cache.
    fn cache_width(hidden: usize) -> usize {
        hidden * Self::CACHED
    }

    /// Width of a step's gate gradients (see [`Cell::backward_step`]).
    fn grad_width(hidden: usize) -> usize {
        hidden * Self::GATES * if Self::SPLIT_GRAD { 2 } else { 1 }
    }
}

/// The Elman RNN cell, `h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)`:
/// PyTorch's `nn.RNN` `nonlinearity`, Keras's `SimpleRNN` activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RnnCell {
    /// `tanh` (the default of both).
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

impl Cell for RnnCell {
    const GATES: usize = 1;
    const CELL_STATE: bool = false;

    fn name(&self) -> &'static str {
        "SimpleRNN"
    }

    /// Caches `h_t`, from which both derivatives follow.
    #[inline(always)]
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        _hp: &[T],
        _prev: &[T],
        next: &mut [T],
    ) {
        let [cache] = blocks_mut(cache, hidden);
        let [next] = blocks_mut(next, hidden);
        match self {
            RnnCell::Tanh => cache.iter_mut().for_each(|z| *z = z.tanh_fast()),
            // `max` would turn NaN into 0; PyTorch's relu keeps it.
            RnnCell::Relu => cache.iter_mut().for_each(|z| {
                if *z < T::zero() {
                    *z = T::zero()
                }
            }),
        }
        next.copy_from_slice(cache);
    }

    #[inline(always)]
    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        _prev: &[T],
        _cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        let [cache] = blocks(cache, hidden);
        let [dstate] = blocks_mut(dstate, hidden);
        let [dgates] = blocks_mut(dgates, hidden);
        match self {
            RnnCell::Tanh => {
                for j in 0..hidden {
                    dgates[j] = dstate[j] * (T::one() - cache[j] * cache[j]);
                }
            }
            // PyTorch's `threshold_backward`: the gradient passes where the output is positive.
            RnnCell::Relu => {
                for j in 0..hidden {
                    dgates[j] = if cache[j] > T::zero() {
                        dstate[j]
                    } else {
                        T::zero()
                    };
                }
            }
        }
        dstate.fill(T::zero());
    }
}

/// The LSTM cell, gates in PyTorch's order `i, f, g, o`:
/// `i = σ(·), f = σ(·), g = tanh(·), o = σ(·)` of the summed projections,
/// `c_t = f ⊙ c_{t-1} + i ⊙ g`, `h_t = o ⊙ tanh(c_t)`. The state is `[h, c]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LstmCell;

impl Cell for LstmCell {
    const GATES: usize = 4;
    const CELL_STATE: bool = true;

    fn name(&self) -> &'static str {
        "LSTM"
    }

    /// Caches the activated gates `[i, f, g, o]`.
    #[inline(always)]
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        _hp: &[T],
        prev: &[T],
        next: &mut [T],
    ) {
        let h = hidden;
        let [ci, cf, cg, co] = blocks_mut(cache, h);
        let [_, c_prev] = blocks(prev, h);
        let [h_next, c_next] = blocks_mut(next, h);
        lstm_forward(
            [ci, cf, cg, co],
            &c_prev[..h],
            &mut h_next[..h],
            &mut c_next[..h],
        );
    }

    /// `tanh(c_t)` is recomputed from the state rather than cached.
    #[inline(always)]
    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        prev: &[T],
        cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        let h = hidden;
        let [ci, cf, cg, co] = blocks(cache, h);
        let [_, c_prev] = blocks(prev, h);
        let [_, c_cur] = blocks(cur, h);
        let [dh, dc] = blocks_mut(dstate, h);
        let [di, df, dg, do_] = blocks_mut(dgates, h);
        lstm_backward(
            [ci, cf, cg, co],
            [c_prev, c_cur],
            [dh, dc],
            [di, df, dg, do_],
        );
    }
}

/// The LSTM step on one row, in passes of one operation each over
/// contiguous blocks: loops this simple vectorize (the activations are
/// branch-free), where one loop doing everything stayed scalar.
#[inline(always)]
fn lstm_forward<T: Float>(
    [ci, cf, cg, co]: [&mut [T]; 4],
    c_prev: &[T],
    h_next: &mut [T],
    c_next: &mut [T],
) {
    for gate in [&mut *ci, &mut *cf, &mut *co] {
        for z in gate.iter_mut() {
            *z = z.sigmoid_fast();
        }
    }
    for z in cg.iter_mut() {
        *z = z.tanh_fast();
    }
    for ((((c, &f), &cp), &i), &g) in c_next.iter_mut().zip(&*cf).zip(c_prev).zip(&*ci).zip(&*cg) {
        *c = f * cp + i * g;
    }
    for (hn, &c) in h_next.iter_mut().zip(&*c_next) {
        *hn = c.tanh_fast();
    }
    for (hn, &o) in h_next.iter_mut().zip(&*co) {
        *hn *= o;
    }
}

/// The LSTM step's backward on one row (see [`lstm_forward`]): `tanh(c_t)`
/// into `do_` first (a loop of its own vectorizes), then the arithmetic.
#[inline(always)]
fn lstm_backward<T: Float>(
    [ci, cf, cg, co]: [&[T]; 4],
    [c_prev, c_cur]: [&[T]; 2],
    [dh, dc]: [&mut [T]; 2],
    [di, df, dg, do_]: [&mut [T]; 4],
) {
    for (t, &c) in do_.iter_mut().zip(c_cur) {
        *t = c.tanh_fast();
    }
    lstm_backward_arith(ci, cf, cg, co, c_prev, dh, dc, di, df, dg, do_);
}

/// Each array its own argument: references passed directly are known not
/// to overlap, so the loop vectorizes without run-time overlap checks.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_backward_arith<T: Float>(
    ci: &[T],
    cf: &[T],
    cg: &[T],
    co: &[T],
    c_prev: &[T],
    dh: &mut [T],
    dc: &mut [T],
    di: &mut [T],
    df: &mut [T],
    dg: &mut [T],
    do_: &mut [T],
) {
    let (n, one) = (dh.len(), T::one());
    let (ci, cf, cg, co, c_prev) = (&ci[..n], &cf[..n], &cg[..n], &co[..n], &c_prev[..n]);
    let (dc, di, df, dg, do_) = (
        &mut dc[..n],
        &mut di[..n],
        &mut df[..n],
        &mut dg[..n],
        &mut do_[..n],
    );
    for j in 0..n {
        let (i, f, g, o, tc) = (ci[j], cf[j], cg[j], co[j], do_[j]);
        let dhj = dh[j];
        let dcj = dc[j] + dhj * o * (one - tc * tc);
        di[j] = dcj * g * i * (one - i);
        df[j] = dcj * c_prev[j] * f * (one - f);
        dg[j] = dcj * i * (one - g * g);
        do_[j] = dhj * tc * o * (one - o);
        dh[j] = T::zero();
        dc[j] = dcj * f;
    }
}

/// The GRU cell, gates in PyTorch's order `r, z, n`:
/// `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` alike,
/// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))` (the hidden bias inside
/// the product, as PyTorch and Keras's `reset_after`),
/// `h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GruCell;

impl Cell for GruCell {
    const GATES: usize = 3;
    const CELL_STATE: bool = false;
    const CACHED: usize = 4;
    const SPLIT_GRAD: bool = true;

    fn name(&self) -> &'static str {
        "GRU"
    }

    /// Caches `[r, z, n, W_hn h + b_hn]`.
    #[inline(always)]
    fn forward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &mut [T],
        hp: &[T],
        prev: &[T],
        next: &mut [T],
    ) {
        let h = hidden;
        let [cr, cz, cn, chn] = blocks_mut(cache, h);
        let [hr, hz, hn] = blocks(hp, h);
        let [h_prev] = blocks(prev, h);
        let [h_next] = blocks_mut(next, h);
        // In passes of one operation each, so every loop vectorizes.
        for (gate, hidden) in [(&mut *cr, hr), (&mut *cz, hz)] {
            for (z, &p) in gate.iter_mut().zip(hidden) {
                *z = (*z + p).sigmoid_fast();
            }
        }
        chn.copy_from_slice(hn);
        for ((n, &r), &p) in cn.iter_mut().zip(&*cr).zip(hn) {
            *n = (*n + r * p).tanh_fast();
        }
        for (((o, &z), &n), &p) in h_next.iter_mut().zip(&*cz).zip(&*cn).zip(h_prev) {
            *o = (T::one() - z) * n + z * p;
        }
    }

    #[inline(always)]
    fn backward_step<T: Float>(
        &self,
        hidden: usize,
        cache: &[T],
        prev: &[T],
        _cur: &[T],
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        let h = hidden;
        let [cr, cz, cn, chn] = blocks(cache, h);
        let [h_prev] = blocks(prev, h);
        let [ds] = blocks_mut(dstate, h);
        let [dr_x, dz_x, dn_x, dr_h, dz_h, dn_h] = blocks_mut(dgates, h);
        gru_backward_arith(
            cr, cz, cn, chn, h_prev, ds, dr_x, dz_x, dn_x, dr_h, dz_h, dn_h,
        );
    }
}

/// The GRU step's backward on one row, each array its own argument (see
/// [`lstm_backward_arith`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_backward_arith<T: Float>(
    cr: &[T],
    cz: &[T],
    cn: &[T],
    chn: &[T],
    h_prev: &[T],
    ds: &mut [T],
    dr_x: &mut [T],
    dz_x: &mut [T],
    dn_x: &mut [T],
    dr_h: &mut [T],
    dz_h: &mut [T],
    dn_h: &mut [T],
) {
    let (n, one) = (ds.len(), T::one());
    let (cr, cz, cn, chn, h_prev) = (&cr[..n], &cz[..n], &cn[..n], &chn[..n], &h_prev[..n]);
    let (dr_x, dz_x, dn_x) = (&mut dr_x[..n], &mut dz_x[..n], &mut dn_x[..n]);
    let (dr_h, dz_h, dn_h) = (&mut dr_h[..n], &mut dz_h[..n], &mut dn_h[..n]);
    for j in 0..n {
        let (r, z, nv, hn) = (cr[j], cz[j], cn[j], chn[j]);
        let dh = ds[j];
        let dn = dh * (one - z) * (one - nv * nv);
        let dr = dn * hn * r * (one - r);
        let dz = dh * (h_prev[j] - nv) * z * (one - z);
        dr_x[j] = dr;
        dz_x[j] = dz;
        dn_x[j] = dn;
        // The hidden projection's candidate part reaches n through r.
        dr_h[j] = dr;
        dz_h[j] = dz;
        dn_h[j] = dn * r;
        ds[j] = dh * z;
    }
}
