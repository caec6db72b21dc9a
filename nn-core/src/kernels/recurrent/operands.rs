//! A step's operands and the weights and gradients that meet them: the
//! rows `[x_t, 1, h_{t-1}]` the forward keeps beside the cell's cache, the
//! joined weights `[W_ih, b, W_hh]` a step's product takes them by, and the
//! parameter gradients `Σ dgᵀ [x_t, 1, h_{t-1}]` (the 1 gives the biases').

use ndarray::{s, ArrayView2, ArrayView3, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis, Zip};

use super::{Cell, Run};
use crate::kernels::gemm::{gemm, gemm_tiles};
use crate::Float;

/// Fills the joined weights `[W_ih, b, W_hh]` (`W_ih` only where `joined`
/// reads it), whose bias column is what the step's product adds through the
/// operands' 1: both biases, or `b_hh` alone for a split gradient (`b_ih`
/// then goes into the input projection).
pub(super) fn join_weights<T: Float, C: Cell>(
    run: &Run<'_, T>,
    joined: bool,
    mut w: ArrayViewMut2<'_, T>,
) {
    let i = run.w_ih.ncols();
    if joined {
        w.slice_mut(s![.., ..i]).assign(&run.w_ih);
    }
    w.slice_mut(s![.., i + 1..]).assign(&run.w_hh);
    if C::SPLIT_GRAD {
        w.column_mut(i).assign(&run.b_hh);
    } else {
        Zip::from(w.column_mut(i))
            .and(&run.b_ih)
            .and(&run.b_hh)
            .for_each(|w, &bi, &bh| *w = bi + bh);
    }
}

/// Every step's input projection into the pre-activations of `cache: [T, B,
/// ·]`: `x_t W_ihᵀ`, plus `b_ih` for a split gradient.
pub(super) fn project_inputs<T: Float, C: Cell>(run: &Run<'_, T>, mut cache: ArrayViewMut3<'_, T>) {
    let gh = run.w_ih.nrows();
    for (ti, mut step) in cache.outer_iter_mut().enumerate() {
        let mut xp = step.slice_mut(s![.., ..gh]);
        let beta = if C::SPLIT_GRAD {
            xp.assign(&run.b_ih);
            T::one()
        } else {
            T::zero()
        };
        let x = run.x.index_axis(Axis(1), ti);
        // On the tiles alone: a row's projection is the same bits alone or
        // batched (by shape, `gemm` could take the dot kernel for one row).
        gemm_tiles(T::one(), &x, &run.w_ih.t(), beta, &mut xp);
    }
}

/// Adds the blocks' parameter gradients `[gw, I + 1 + H]`, in block order,
/// into the weights' `[dW_ih, dW_hh]` and biases' `[db_ih, db_hh]` gradients
/// where given: the input part's rows against `[x, 1]`, the hidden part's
/// (the same rows unless split) against `[1, h]`.
pub(super) fn add_block_sums<T: Float, C: Cell>(
    blocks: ArrayView3<'_, T>,
    input: usize,
    [mut dw_ih, mut dw_hh]: [Option<ArrayViewMut2<'_, T>>; 2],
    [mut db_ih, mut db_hh]: [Option<ArrayViewMut1<'_, T>>; 2],
) {
    let gh = blocks.shape()[1] / if C::SPLIT_GRAD { 2 } else { 1 };
    let hid = if C::SPLIT_GRAD { gh..2 * gh } else { 0..gh };
    for acc in blocks.outer_iter() {
        let (x_part, h_part) = (acc.slice(s![..gh, ..]), acc.slice(s![hid.clone(), ..]));
        if let Some(dw) = &mut dw_ih {
            *dw += &x_part.slice(s![.., ..input]);
        }
        if let Some(db) = &mut db_ih {
            *db += &x_part.column(input);
        }
        if let Some(dw) = &mut dw_hh {
            *dw += &h_part.slice(s![.., input + 1..]);
        }
        if let Some(db) = &mut db_hh {
            *db += &h_part.column(input);
        }
    }
}

/// Writes each row's step operands `[x_t, 1, h_{t-1}]` after the cell's
/// cache (`cw` values) of its `cache` row (`rw` wide), `h_{t-1}` from the
/// first `h` values at `prev[row · stride..]`: slice copies, not array
/// assignments, whose overhead showed on small layers.
pub(super) fn stage_operands<T: Float>(
    x: ArrayView2<'_, T>,
    (prev, stride): (&[T], usize),
    h: usize,
    cache: &mut [T],
    (cw, rw): (usize, usize),
) {
    for (bi, (row, x)) in cache.chunks_exact_mut(rw).zip(x.rows()).enumerate() {
        let (xs, rest) = row[cw..].split_at_mut(x.len());
        match x.as_slice() {
            Some(x) => xs.copy_from_slice(x),
            None => xs.iter_mut().zip(x).for_each(|(o, &v)| *o = v),
        }
        rest[0] = T::one();
        rest[1..].copy_from_slice(&prev[bi * stride..bi * stride + h]);
    }
}

/// `acc = Σ_rows dgᵀ [x, 1, h] + beta · acc` for the gate gradients `dg`
/// and operand rows `ops` of the same batch rows. With [`Cell::SPLIT_GRAD`]
/// the input part meets `[x, 1]` and the hidden part `[1, h]` (the corners of
/// `acc` they leave are never read).
pub(super) fn add_operand_products<T: Float, C: Cell>(
    dg: ArrayView2<'_, T>,
    ops: ArrayView2<'_, T>,
    input: usize,
    beta: T,
    mut acc: ArrayViewMut2<'_, T>,
) {
    if C::SPLIT_GRAD {
        let gh = dg.ncols() / 2;
        let (mut ax, mut ah) = acc.view_mut().split_at(Axis(0), gh);
        let (dgx, dgh) = dg.split_at(Axis(1), gh);
        let (x1, h1) = (ops.slice(s![.., ..=input]), ops.slice(s![.., input..]));
        gemm(
            T::one(),
            &dgx.t(),
            &x1,
            beta,
            &mut ax.slice_mut(s![.., ..=input]),
        );
        gemm(
            T::one(),
            &dgh.t(),
            &h1,
            beta,
            &mut ah.slice_mut(s![.., input..]),
        );
    } else {
        gemm(T::one(), &dg.t(), &ops, beta, &mut acc);
    }
}
