//! The driver's allocating twins, for the tape.

use ndarray::{Array1, Array2, Array3, ArrayView3};

use super::*;
use crate::kernels::owned::zeros;
use crate::Float;

/// What [`recurrent_forward`] returns: the cache backward needs and every
/// step's state.
#[derive(Clone, Debug)]
pub struct Recorded<T> {
    /// [`Dims::cache_shape`]: `[T, B, cache_row_width]` for backward.
    pub cache: Array3<T>,
    /// `[B, T, S]`.
    pub states: Array3<T>,
}

/// [`recurrent_forward_into`] into new arrays.
#[track_caller]
pub fn recurrent_forward<T: Float, C: Cell>(cell: &C, run: &Run<'_, T>) -> Recorded<T> {
    recurrent_forward_for(cell, run, CacheFor::Backward)
}

/// [`recurrent_forward`] with the cache [`Dims::cache_shape`] gives for
/// `cache_for` (for inference, possibly one step's rows).
#[track_caller]
pub fn recurrent_forward_for<T: Float, C: Cell>(
    cell: &C,
    run: &Run<'_, T>,
    cache_for: CacheFor,
) -> Recorded<T> {
    let d = run.dims(cell);
    let (b, t, h) = (d.batch, d.steps, d.hidden);
    let mut cache = zeros(d.cache_shape::<C>(cache_for));
    let mut states = zeros((b, t, C::state_width(h)));
    let (mut hp, mut state) = (zeros((b, C::GATES * h)), zeros((b, C::state_width(h))));
    let mut weights = zeros(d.joined_weights::<C>());
    recurrent_forward_into(
        cell,
        run,
        cache.view_mut(),
        states.view_mut(),
        ForwardScratch {
            hidden: hp.view_mut(),
            state: state.view_mut(),
            weights: weights.view_mut(),
        },
    );
    Recorded { cache, states }
}

/// The gradients [`recurrent_backward`] computes, each where asked for.
#[derive(Clone, Debug)]
pub struct OwnedGrads<T> {
    /// `[B, T, I]`.
    pub x: Option<Array3<T>>,
    /// `[G·H, I]`.
    pub w_ih: Option<Array2<T>>,
    /// `[G·H, H]`.
    pub w_hh: Option<Array2<T>>,
    /// `[G·H]`.
    pub b_ih: Option<Array1<T>>,
    /// `[G·H]`.
    pub b_hh: Option<Array1<T>>,
    /// `[B, H]`.
    pub h0: Option<Array2<T>>,
    /// `[B, H]`.
    pub c0: Option<Array2<T>>,
}

/// [`recurrent_backward_into`] of a run's `cache` and `states` (as
/// [`recurrent_forward`] recorded them) into new arrays, for the gradients `need`
/// asks for, in the order `[x, w_ih, w_hh, b_ih, b_hh, h0, c0]`.
#[track_caller]
pub fn recurrent_backward<T: Float, C: Cell>(
    cell: &C,
    run: &Run<'_, T>,
    cache: ArrayView3<'_, T>,
    states: ArrayView3<'_, T>,
    dout: StateGrads<'_, T>,
    need: [bool; 7],
) -> OwnedGrads<T> {
    let d = run.dims(cell);
    let (b, t, h, gh) = (d.batch, d.steps, d.hidden, C::GATES * d.hidden);
    let zeros2 = |on: bool, r, c| on.then(|| zeros((r, c)));
    let mut g = OwnedGrads {
        x: need[0].then(|| zeros((b, t, d.input))),
        w_ih: zeros2(need[1], gh, d.input),
        w_hh: zeros2(need[2], gh, h),
        b_ih: need[3].then(|| zeros(gh)),
        b_hh: need[4].then(|| zeros(gh)),
        h0: zeros2(need[5], b, h),
        c0: zeros2(need[6] && C::CELL_STATE, b, h),
    };
    let mut dgates = zeros((t, b, C::grad_width(h)));
    let mut block_grads = zeros(d.block_grads::<C>());
    let (mut carry, mut initial) = (zeros((b, C::state_width(h))), zeros((b, C::state_width(h))));
    recurrent_backward_into(
        cell,
        run,
        cache,
        states,
        dout,
        Grads {
            x: g.x.as_mut().map(|a| a.view_mut()),
            h0: g.h0.as_mut().map(|a| a.view_mut()),
            c0: g.c0.as_mut().map(|a| a.view_mut()),
            w_ih: g.w_ih.as_mut().map(|a| a.view_mut()),
            w_hh: g.w_hh.as_mut().map(|a| a.view_mut()),
            b_ih: g.b_ih.as_mut().map(|a| a.view_mut()),
            b_hh: g.b_hh.as_mut().map(|a| a.view_mut()),
        },
        BackwardScratch {
            dgates: dgates.view_mut(),
            carry: carry.view_mut(),
            initial: initial.view_mut(),
            block_grads: block_grads.view_mut(),
        },
    );
    g
}
