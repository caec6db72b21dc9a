//! One time step's rows: the cells' element-wise math over (part of) the
//! batch, compiled for the widest vectors the CPU has.

use super::Cell;
use crate::prefetch::prefetch_lines;
use crate::run_widest;
use crate::Float;

/// The rows of one time step: the cells' element-wise math over (part of)
/// the batch, compiled for the widest vectors the CPU has (the cells' loops
/// vectorize; the crate's baseline is SSE2). The step's cache, hidden
/// projection and gate gradients are its own `[b, ·]` rows; the states are
/// the part's `[b, T, S]`.
#[derive(Clone, Copy)]
pub(super) struct StepRows {
    /// Rows of the batch, steps of the sequence.
    pub(super) b: usize,
    pub(super) t: usize,
    /// The step's time index.
    pub(super) ti: usize,
    /// Hidden units.
    pub(super) h: usize,
    /// Widths of a row of the states, of the step's cache (the cell's part
    /// and the operands), and of the hidden projection or gate gradients.
    pub(super) sw: usize,
    pub(super) cache_row: usize,
    pub(super) gate_row: usize,
}

impl StepRows {
    /// [`Cell::forward_step`] on every row of the step; the previous state
    /// is `initial` at the first step (`prev_time` `None`), else the row of
    /// `states` at `prev_time`.
    pub(super) fn forward<T: Float, C: Cell>(
        self,
        cell: &C,
        cache: &mut [T],
        hp: &[T],
        (initial, prev_time): (&[T], Option<usize>),
        states: &mut [T],
    ) {
        run_widest!(<T: Float, C: Cell> (
            rows: StepRows = self,
            cell: &C = cell,
            cache: &mut [T] = cache,
            hp: &[T] = hp,
            initial: &[T] = initial,
            prev_time: Option<usize> = prev_time,
            states: &mut [T] = states,
        ) => rows.forward_rows(cell, cache, hp, initial, prev_time, states))
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn forward_rows<T: Float, C: Cell>(
        self,
        cell: &C,
        cache: &mut [T],
        hp: &[T],
        initial: &[T],
        prev_time: Option<usize>,
        states: &mut [T],
    ) {
        let StepRows {
            b,
            t,
            ti,
            h,
            sw,
            cache_row: cw,
            gate_row: gh,
        } = self;
        for bi in 0..b {
            let row = bi * t + ti;
            // The next sequence's state is a whole sequence further on (a
            // write fetches the line too).
            if bi + 1 < b {
                let next = row + t;
                prefetch_lines(&states[next * sw..(next + 1) * sw]);
            }
            let (prev, next) = match prev_time {
                None => (
                    &initial[bi * sw..(bi + 1) * sw],
                    &mut states[row * sw..(row + 1) * sw],
                ),
                Some(tp) => two_rows(states, bi * t + tp, row, sw),
            };
            cell.forward_step(
                h,
                &mut cache[bi * cw..(bi + 1) * cw],
                &hp[bi * gh..(bi + 1) * gh],
                prev,
                next,
            );
        }
    }

    /// [`Cell::backward_step`] on every row of the step; `prev_time` is the
    /// previous step's time index, `None` at the first step (whose previous
    /// state is `initial`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward<T: Float, C: Cell>(
        self,
        cell: &C,
        cache: &[T],
        states: &[T],
        initial: &[T],
        prev_time: Option<usize>,
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        run_widest!(<T: Float, C: Cell> (
            rows: StepRows = self,
            cell: &C = cell,
            cache: &[T] = cache,
            states: &[T] = states,
            initial: &[T] = initial,
            prev_time: Option<usize> = prev_time,
            dstate: &mut [T] = dstate,
            dgates: &mut [T] = dgates,
        ) => rows.backward_rows(cell, cache, states, initial, prev_time, dstate, dgates))
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn backward_rows<T: Float, C: Cell>(
        self,
        cell: &C,
        cache: &[T],
        states: &[T],
        initial: &[T],
        prev_time: Option<usize>,
        dstate: &mut [T],
        dgates: &mut [T],
    ) {
        let StepRows {
            b,
            t,
            ti,
            h,
            sw,
            cache_row: cw,
            gate_row: gw,
        } = self;
        for bi in 0..b {
            let row = bi * t + ti;
            // The next row's cache, written long ago by the forward, and its
            // states, a whole sequence further on.
            if bi + 1 < b {
                let next = row + t;
                prefetch_lines(&cache[(bi + 1) * cw..(bi + 2) * cw]);
                prefetch_lines(&states[next * sw..(next + 1) * sw]);
            }
            let prev = match prev_time {
                None => &initial[bi * sw..(bi + 1) * sw],
                Some(tp) => {
                    let p = bi * t + tp;
                    &states[p * sw..(p + 1) * sw]
                }
            };
            cell.backward_step(
                h,
                &cache[bi * cw..(bi + 1) * cw],
                prev,
                &states[row * sw..(row + 1) * sw],
                &mut dstate[bi * sw..(bi + 1) * sw],
                &mut dgates[bi * gw..(bi + 1) * gw],
            );
        }
    }
}

/// Row `read` of `rows` (each `width` long) to read and row `write` to
/// write, two different rows.
fn two_rows<T>(rows: &mut [T], read: usize, write: usize, width: usize) -> (&[T], &mut [T]) {
    if read < write {
        let (before, from) = rows.split_at_mut(write * width);
        (
            &before[read * width..(read + 1) * width],
            &mut from[..width],
        )
    } else {
        let (before, from) = rows.split_at_mut(read * width);
        (
            &from[..width],
            &mut before[write * width..(write + 1) * width],
        )
    }
}
