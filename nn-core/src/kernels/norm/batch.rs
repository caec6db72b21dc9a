//! Batch normalization of `[n, c, …]`: statistics per channel (axis 1) over
//! the batch and every trailing axis.
//!
//! The input is read as `n·c` contiguous planes (its trailing axes), plane
//! `p` belonging to channel `p % c`. Per-channel sums are split over the
//! channels, each channel summed by one thread in one order (the same bits on
//! any number of threads) in [`LANES`] partial sums, which vectorize where a
//! single chain of additions does not; the element-wise passes are split over
//! the planes. Backward visits each channel once where it can (not under
//! synchronized batch norm, whose sums wait for the other ranks'): the
//! channel's sums, then its input gradient while its input and gradient are
//! still in the core's cache. A 2-D input `[n, c]` (planes of one element, after a dense
//! layer) is read row by row instead, so the loops run along the channels.
//! The `_into` functions allocate nothing on standard-layout input for up to
//! [`INLINE_CHANNELS`] channels, without [`crate::distributed::with_sync_batch_norm`].

use std::mem::MaybeUninit;
use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn};
use smallvec::SmallVec;

use super::{add_lane_sums, fold_lanes, inv_std, lanes, NormGrads, LANES};
use crate::kernels::activation::PlainRelu;
use crate::kernels::owned::{as_uninit, Output};
use crate::kernels::pointwise::Pointwise;
use crate::parallel::{for_each_range, Shared};
use crate::Float;

/// Channels whose per-channel sums and coefficients stay on the stack (28 KB
/// at most): wider layers allocate them in backward.
const INLINE_CHANNELS: usize = 512;

/// `(channels, plane length)` of `[n, c, …]`; the plane length is 0 when
/// there is nothing to normalize.
fn geometry(x: &[usize]) -> (usize, usize) {
    let (n, c) = (x[0], x[1]);
    let s = x[2..].iter().product::<usize>();
    (c, if n * c == 0 { 0 } else { s })
}

/// The elements of `x`, which [`ndarray::ArrayBase::as_standard_layout`] made
/// standard-layout.
fn contiguous<'a, T: Float>(x: &'a ndarray::CowArray<'_, T, IxDyn>) -> &'a [T] {
    x.as_slice().expect("standard layout")
}

/// Runs `f` on the element ranges of whole pieces of `piece` elements (the
/// planes, or the rows of a 2-D input) out of `len`, split over the cores,
/// with the index of each range's first piece.
fn for_each_piece(len: usize, piece: usize, f: &(dyn Fn(Range<usize>, usize) + Sync)) {
    for_each_range(len / piece, len, &|pieces| {
        f(pieces.start * piece..pieces.end * piece, pieces.start)
    });
}

/// `Σ f(e)` over the elements of channel `ci` of `xs` (`[n, c, s]`), in
/// [`LANES`] partial sums (the convolutions' bias gradient sums this way too).
#[inline(always)]
pub(crate) fn channel_sum<T: Float>(
    xs: &[T],
    [c, s]: [usize; 2],
    ci: usize,
    f: impl Fn(T) -> T,
) -> T {
    let (mut acc, mut rest) = ([[T::zero(); LANES]], T::zero());
    for start in (ci * s..xs.len()).step_by(c * s) {
        let chunks = xs[start..start + s].chunks_exact(LANES);
        for &e in chunks.remainder() {
            rest += f(e);
        }
        add_lane_sums(
            &mut acc,
            chunks,
            #[inline(always)]
            |c| [lanes(|l| f(c[l]))],
        );
    }
    let [acc] = acc;
    fold_lanes(acc) + rest
}

/// Mean and biased variance of channels `first..first + mean.len()`.
#[inline(always)]
fn stats_of_channels<T: Float>(
    xs: &[T],
    cs: [usize; 2],
    first: usize,
    mean: &mut [T],
    var: &mut [T],
) {
    let m = T::lit((xs.len() / cs[0]) as f64);
    for (k, (mu, v)) in mean.iter_mut().zip(var.iter_mut()).enumerate() {
        let ci = first + k;
        let centre = channel_sum(xs, cs, ci, |e| e) / m;
        *mu = centre;
        *v = channel_sum(xs, cs, ci, |e| (e - centre) * (e - centre)) / m;
    }
}

/// [`stats_of_channels`] for `[n, c]` (`xs` its rows): sums along the
/// channels, row after row (each channel's in row order, whatever the split).
#[inline(always)]
fn stats_of_columns<T: Float>(xs: &[T], c: usize, first: usize, mean: &mut [T], var: &mut [T]) {
    let (cols, m) = (first..first + mean.len(), T::lit((xs.len() / c) as f64));
    mean.fill(T::zero());
    var.fill(T::zero());
    for row in xs.chunks_exact(c) {
        for (mu, &e) in mean.iter_mut().zip(&row[cols.clone()]) {
            *mu += e;
        }
    }
    mean.iter_mut().for_each(|mu| *mu /= m);
    for row in xs.chunks_exact(c) {
        for ((v, &mu), &e) in var.iter_mut().zip(&*mean).zip(&row[cols.clone()]) {
            *v += (e - mu) * (e - mu);
        }
    }
    var.iter_mut().for_each(|v| *v /= m);
}

/// Per-channel statistics of `x` (`[n, c, …]`): the mean and the biased
/// variance over every axis but 1, and the element count per channel.
pub fn channel_stats<T: Float>(x: ArrayViewD<'_, T>) -> (Vec<T>, Vec<T>, usize) {
    let c = x.shape().get(1).copied().unwrap_or(0);
    let (mut mean, mut var) = (vec![T::zero(); c], vec![T::zero(); c]);
    let m = channel_stats_into(x, &mut mean, &mut var);
    (mean, var, m)
}

/// [`channel_stats`] into `mean` and `var` (one slot per channel); returns the
/// element count per channel.
pub fn channel_stats_into<T: Float>(x: ArrayViewD<'_, T>, mean: &mut [T], var: &mut [T]) -> usize {
    assert!(
        x.ndim() >= 2 && mean.len() == x.shape()[1] && var.len() == x.shape()[1],
        "batch_norm: expected input [batch, {}, …], got {:?}",
        mean.len(),
        x.shape()
    );
    let (c, s) = geometry(x.shape());
    let m = x.len() / c.max(1);
    if s == 0 {
        // The mean of nothing, as 0 / 0 gives it.
        mean.fill(T::zero() / T::zero());
        var.fill(T::zero() / T::zero());
    } else {
        let x = x.as_standard_layout();
        let xs = contiguous(&x);
        let cs = [c, s];
        let (means, vars) = (Shared::new(mean), Shared::new(var));
        for_each_range(c, 2 * xs.len(), &|channels| {
            // SAFETY: the parts' channel ranges are disjoint.
            let (mean, var) =
                unsafe { (means.slice(channels.clone()), vars.slice(channels.clone())) };
            let first = channels.start;
            if s == 1 {
                widest_rows!(stats_of_columns(
                    xs: &[T],
                    c: usize,
                    first: usize,
                    mean: &mut [T],
                    var: &mut [T]
                ));
            } else {
                widest_rows!(stats_of_channels(
                    xs: &[T],
                    cs: [usize; 2],
                    first: usize,
                    mean: &mut [T],
                    var: &mut [T]
                ));
            }
        });
    }
    if crate::distributed::batch_norm_synced() {
        return synced_stats(m, mean, var);
    }
    m
}

/// Makes this rank's per-channel mean and variance (over `m` elements each)
/// those of every rank's elements together ([`crate::distributed::with_sync_batch_norm`]):
/// first the mean, then each rank's squared deviations from it, so no large
/// sums cancel. Returns the element count over all ranks.
fn synced_stats<T: Float>(m: usize, mean: &mut [T], var: &mut [T]) -> usize {
    let c = mean.len();
    let mf = m as f64;
    // A rank without elements (its mean 0 / 0) adds nothing.
    let weighted = |v: T| if m == 0 { 0.0 } else { mf * v.as_f64() };
    let mut sums: Vec<f64> = mean.iter().map(|&mu| weighted(mu)).collect();
    sums.push(mf);
    crate::distributed::sum_for_batch_norm(&mut sums);
    let total = sums[c];
    let global: Vec<f64> = sums[..c].iter().map(|s| s / total).collect();
    let mut squares: Vec<f64> = (0..c)
        .map(|ci| {
            let d = mean[ci].as_f64() - global[ci];
            if m == 0 {
                0.0
            } else {
                mf * (var[ci].as_f64() + d * d)
            }
        })
        .collect();
    crate::distributed::sum_for_batch_norm(&mut squares);
    for ci in 0..c {
        mean[ci] = T::lit(global[ci]);
        var[ci] = T::lit(squares[ci] / total);
    }
    total as usize
}

fn per_channel<T: Float>(x: &ArrayViewD<'_, T>, values: &[T]) -> ArrayD<T> {
    let mut shape = vec![1; x.ndim()];
    shape[1] = values.len();
    ArrayD::from_shape_vec(IxDyn(&shape), values.to_vec()).expect("one value per channel")
}

/// `γ (x - μ) / √(σ² + ε) + β` with the given per-channel statistics.
pub fn batch_norm<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> ArrayD<T> {
    let mut y = ArrayD::uninit(x.raw_dim());
    let slots = y.as_slice_mut().expect("a new array is one slice");
    normalize_slots(x, gamma, beta, [mean, var], eps, false, slots);
    // SAFETY: `normalize_slots` wrote every element.
    unsafe { y.assume_init() }
}

/// `relu(z)`: the `relu` activation's own formula, so the fused layer
/// gives its values.
#[inline(always)]
fn relu<T: Float>(z: T) -> T {
    PlainRelu.f(z)
}

/// The gradient of `z` from that of `relu(z)`, as the `relu` activation's
/// backward computes it (`g · [z > 0]`; its derivative reads `z` alone).
#[inline(always)]
fn through_relu<T: Float>(g: T, z: T) -> T {
    g * PlainRelu.df(z, z)
}

/// `y = (x − μ) a + β` on planes `first..`, `a = γ / √(σ² + ε)` per channel;
/// then `relu(y)` when `relu_after`.
#[inline(always)]
fn normalize_planes<T: Float>(
    xs: &[T],
    [c, s]: [usize; 2],
    first: usize,
    [mean, var, gamma, beta]: [&[T]; 4],
    eps: f64,
    relu_after: bool,
    y: &mut [MaybeUninit<T>],
) {
    for (k, (xp, yp)) in xs.chunks_exact(s).zip(y.chunks_exact_mut(s)).enumerate() {
        let ci = (first + k) % c;
        let (m, a, b) = (mean[ci], inv_std(var[ci], eps) * gamma[ci], beta[ci]);
        if relu_after {
            for (o, &v) in yp.iter_mut().zip(xp) {
                o.write(relu((v - m) * a + b));
            }
        } else {
            for (o, &v) in yp.iter_mut().zip(xp) {
                o.write((v - m) * a + b);
            }
        }
    }
}

/// [`normalize_planes`] for `[n, c]` rows.
#[inline(always)]
fn normalize_rows<T: Float>(
    xs: &[T],
    [mean, var, gamma, beta]: [&[T]; 4],
    eps: f64,
    relu_after: bool,
    y: &mut [MaybeUninit<T>],
) {
    // One loop per case, so the plain one carries no per-element test.
    #[inline(always)]
    fn each<T: Float>(
        xs: &[T],
        ch: [&[T]; 4],
        eps: f64,
        y: &mut [MaybeUninit<T>],
        f: impl Fn(T) -> T,
    ) {
        let [mean, var, gamma, beta] = ch;
        let c = mean.len();
        for (xr, yr) in xs.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            let channel = mean.iter().zip(var).zip(gamma).zip(beta);
            for ((o, &v), (((&m, &va), &g), &b)) in yr.iter_mut().zip(xr).zip(channel) {
                o.write(f((v - m) * (inv_std(va, eps) * g) + b));
            }
        }
    }
    let ch = [mean, var, gamma, beta];
    if relu_after {
        each(xs, ch, eps, y, relu)
    } else {
        each(xs, ch, eps, y, |z| z)
    }
}

/// [`batch_norm`] into a preallocated `y` of `x`'s shape.
pub fn batch_norm_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
    y: ArrayViewMutD<'_, T>,
) {
    normalize_into(x, gamma, beta, [mean, var], eps, false, y)
}

/// `relu` of [`batch_norm`], in the same pass, into `y`: the same values as
/// [`batch_norm_into`] followed by the `relu` activation, without writing
/// and reading back the normalized values (batch norm and its activation
/// are memory-bound passes).
pub fn batch_norm_relu_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
    y: ArrayViewMutD<'_, T>,
) {
    normalize_into(x, gamma, beta, [mean, var], eps, true, y)
}

/// [`batch_norm_into`], then `relu` when `relu_after`.
fn normalize_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    stats: [&[T]; 2],
    eps: f64,
    relu_after: bool,
    mut y: ArrayViewMutD<'_, T>,
) {
    assert!(
        y.shape() == x.shape(),
        "batch_norm: output {:?} for an input {:?}",
        y.shape(),
        x.shape()
    );
    let ys = y.as_slice_mut().expect("standard-layout output");
    // SAFETY: only values of `T` are written.
    normalize_slots(x, gamma, beta, stats, eps, relu_after, unsafe {
        as_uninit(ys)
    })
}

/// [`normalize_into`] into every element of `y`, `x`'s elements in
/// standard order (a fresh array is not filled first).
fn normalize_slots<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    [mean, var]: [&[T]; 2],
    eps: f64,
    relu_after: bool,
    y: &mut [MaybeUninit<T>],
) {
    let c = x.shape()[1];
    assert!(
        gamma.len() == c
            && beta.len() == c
            && mean.len() == c
            && var.len() == c
            && y.len() == x.len(),
        "batch_norm: {c} channels but weight {:?}, bias {:?}, {} means, {} variances, {} outputs for {:?}",
        gamma.shape(),
        beta.shape(),
        mean.len(),
        var.len(),
        y.len(),
        x.shape()
    );
    let (c, s) = geometry(x.shape());
    if s == 0 {
        return;
    }
    let (x, gamma, beta) = (
        x.as_standard_layout(),
        gamma.as_standard_layout(),
        beta.as_standard_layout(),
    );
    let (xs, gamma, beta) = (contiguous(&x), contiguous(&gamma), contiguous(&beta));
    let y = Shared::new(y);
    let (cs, channel) = ([c, s], [mean, var, gamma, beta]);
    for_each_piece(xs.len(), if s == 1 { c } else { s }, &|r, first| {
        let xs = &xs[r.clone()];
        // SAFETY: the parts' ranges are disjoint.
        let y = unsafe { y.slice(r) };
        if s == 1 {
            widest_rows!(normalize_rows(
                xs: &[T],
                channel: [&[T]; 4],
                eps: f64,
                relu_after: bool,
                y: &mut [MaybeUninit<T>]
            ));
        } else {
            widest_rows!(normalize_planes(
                xs: &[T],
                cs: [usize; 2],
                first: usize,
                channel: [&[T]; 4],
                eps: f64,
                relu_after: bool,
                y: &mut [MaybeUninit<T>]
            ));
        }
    });
}

/// Training-mode gradients (batch statistics depend on `x`):
/// `dx = γ/(M σ̂) (M dy - Σdy - x̂ Σ(dy x̂))`, `dγ = Σ dy x̂`, `dβ = Σ dy`.
pub fn batch_norm_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let mut dx = ArrayD::uninit(x.raw_dim());
    let (mut dgamma, mut dbeta) = (
        ArrayD::zeros(gamma.raw_dim()),
        ArrayD::zeros(gamma.raw_dim()),
    );
    let out = Output::fresh(dx.as_slice_mut().expect("a new array is one slice"));
    let params = [dgamma.view_mut(), dbeta.view_mut()];
    backward_slots(
        x,
        gamma,
        None,
        dy,
        [mean, var],
        eps,
        out,
        params,
        Passes::Chosen,
    );
    // SAFETY: `backward_slots` took every range of `dx` once.
    (unsafe { dx.assume_init() }, dgamma, dbeta)
}

/// The output gradient `g` of element `x` of a channel, taken back through
/// the `relu` that followed the normalization when `relu` holds the
/// channel's `[a, β]` (its output was `relu((x − μ) a + β)`).
#[inline(always)]
fn dy_of<T: Float>(g: T, x: T, mu: T, relu: Option<[T; 2]>) -> T {
    match relu {
        Some([a, b]) => through_relu(g, (x - mu) * a + b),
        None => g,
    }
}

/// `[Σdy, Σ dy (x − μ)]` of channels `first..first + sums.len()`;
/// `relu_coef`: per channel `[a, β]` when a `relu` followed (see [`dy_of`]).
#[inline(always)]
fn grad_sums_of_channels<T: Float>(
    [xs, gs]: [&[T]; 2],
    [c, s]: [usize; 2],
    first: usize,
    mean: &[T],
    relu_coef: Option<&[[T; 2]]>,
    sums: &mut [[T; 2]],
) {
    for (k, out) in sums.iter_mut().enumerate() {
        let ci = first + k;
        let mu = mean[ci];
        let at = [xs, gs];
        // One loop per case, so the plain one carries no per-element test.
        *out = match relu_coef.map(|r| r[ci]) {
            Some(r) => channel_grad_sums(at, [c, s], ci, mu, |g, x| dy_of(g, x, mu, Some(r))),
            None => channel_grad_sums(at, [c, s], ci, mu, |g, _| g),
        };
    }
}

/// `[Σ g, Σ g (x − μ)]` over channel `ci`, `g = dy(dy_elem, x)`, in
/// [`LANES`] partial sums.
#[inline(always)]
fn channel_grad_sums<T: Float>(
    [xs, gs]: [&[T]; 2],
    [c, s]: [usize; 2],
    ci: usize,
    mu: T,
    dy: impl Fn(T, T) -> T,
) -> [T; 2] {
    let mut acc = [[T::zero(); LANES]; 2];
    let (mut rg, mut rgx) = (T::zero(), T::zero());
    for start in (ci * s..xs.len()).step_by(c * s) {
        let (xc, gc) = (
            xs[start..start + s].chunks_exact(LANES),
            gs[start..start + s].chunks_exact(LANES),
        );
        for (&x, &g) in xc.remainder().iter().zip(gc.remainder()) {
            let g = dy(g, x);
            rg += g;
            rgx += g * (x - mu);
        }
        add_lane_sums(
            &mut acc,
            xc.zip(gc),
            #[inline(always)]
            |(x, g)| {
                let g: [T; LANES] = lanes(|l| dy(g[l], x[l]));
                [g, lanes(|l| g[l] * (x[l] - mu))]
            },
        );
    }
    let [ag, agx] = acc;
    [fold_lanes(ag) + rg, fold_lanes(agx) + rgx]
}

/// [`grad_sums_of_channels`] for `[n, c]` rows.
#[inline(always)]
fn grad_sums_of_columns<T: Float>(
    [xs, gs]: [&[T]; 2],
    c: usize,
    first: usize,
    mean: &[T],
    relu_coef: Option<&[[T; 2]]>,
    sums: &mut [[T; 2]],
) {
    // One loop per case, so the plain one carries no per-element test.
    #[inline(always)]
    fn each<T: Float>(
        [xs, gs]: [&[T]; 2],
        c: usize,
        first: usize,
        mean: &[T],
        sums: &mut [[T; 2]],
        dy: impl Fn(T, T, usize) -> T,
    ) {
        let cols = first..first + sums.len();
        sums.fill([T::zero(); 2]);
        for (xr, gr) in xs.chunks_exact(c).zip(gs.chunks_exact(c)) {
            let row = xr[cols.clone()].iter().zip(&gr[cols.clone()]);
            for (k, (out, (&x, &g))) in sums.iter_mut().zip(row).enumerate() {
                let ci = first + k;
                let mu = mean[ci];
                let g = dy(g, x, ci);
                out[0] += g;
                out[1] += g * (x - mu);
            }
        }
    }
    let at = [xs, gs];
    match relu_coef {
        Some(r) => each(at, c, first, mean, sums, |g, x, ci| {
            dy_of(g, x, mean[ci], Some(r[ci]))
        }),
        None => each(at, c, first, mean, sums, |g, _, _| g),
    }
}

/// [`input_grad_planes`] for `[n, c]` rows.
#[inline(always)]
fn input_grad_rows<T: Float>(
    [xs, gs]: [&[T]; 2],
    coef: &[[T; 5]],
    relu_coef: Option<&[[T; 2]]>,
    dx: &mut [T],
) {
    // One loop per case, so the plain one carries no per-element test.
    #[inline(always)]
    fn each<T: Float>(
        [xs, gs]: [&[T]; 2],
        coef: &[[T; 5]],
        dx: &mut [T],
        dy: impl Fn(T, T, usize) -> T,
    ) {
        let c = coef.len();
        let rows = xs.chunks_exact(c).zip(gs.chunks_exact(c));
        for ((xr, gr), dr) in rows.zip(dx.chunks_exact_mut(c)) {
            for (ci, (((d, &x), &g), &[mu, inv, alpha, delta, zeta])) in
                dr.iter_mut().zip(xr).zip(gr).zip(coef).enumerate()
            {
                let g = dy(g, x, ci);
                *d = alpha * g - delta * ((x - mu) * inv) - zeta;
            }
        }
    }
    match relu_coef {
        Some(r) => each([xs, gs], coef, dx, |g, x, ci| {
            dy_of(g, x, coef[ci][0], Some(r[ci]))
        }),
        None => each([xs, gs], coef, dx, |g, _, _| g),
    }
}

/// `dx = α dy − δ x̂ − ζ` on planes `first..`, with `[μ, 1/σ̂, α, δ, ζ]` per
/// channel (and `relu_coef` as in [`grad_sums_of_channels`]).
#[inline(always)]
fn input_grad_planes<T: Float>(
    [xs, gs]: [&[T]; 2],
    [c, s]: [usize; 2],
    first: usize,
    coef: &[[T; 5]],
    relu_coef: Option<&[[T; 2]]>,
    dx: &mut [T],
) {
    let planes = xs.chunks_exact(s).zip(gs.chunks_exact(s));
    for (k, ((xp, gp), dp)) in planes.zip(dx.chunks_exact_mut(s)).enumerate() {
        let ci = (first + k) % c;
        let [mu, inv, alpha, delta, zeta] = coef[ci];
        match relu_coef.map(|r| r[ci]) {
            Some(r) => {
                for ((d, &x), &g) in dp.iter_mut().zip(xp).zip(gp) {
                    let g = dy_of(g, x, mu, Some(r));
                    *d = alpha * g - delta * ((x - mu) * inv) - zeta;
                }
            }
            None => {
                for ((d, &x), &g) in dp.iter_mut().zip(xp).zip(gp) {
                    *d = alpha * g - delta * ((x - mu) * inv) - zeta;
                }
            }
        }
    }
}

/// Channel `ci`'s backward in one visit: its sums `[Σdy, Σ dy (x − μ)]`
/// into `sum`, then its input gradient into its planes of `dx`, as
/// [`channel_grad_sums`] and [`input_grad_planes`] compute them (the same
/// bits). `stats` is the channel's `[μ, σ², γ]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn channel_backward<T: Float>(
    [xs, gs]: [&[T]; 2],
    [c, s]: [usize; 2],
    ci: usize,
    [mu, var, gamma]: [T; 3],
    eps: f64,
    mf: T,
    relu: Option<[T; 2]>,
    sum: &mut [T; 2],
    dx: &Output<T>,
) {
    *sum = match relu {
        Some(r) => channel_grad_sums([xs, gs], [c, s], ci, mu, |g, x| dy_of(g, x, mu, Some(r))),
        None => channel_grad_sums([xs, gs], [c, s], ci, mu, |g, _| g),
    };
    let inv = inv_std(var, eps);
    let alpha = gamma * inv;
    let [sum_g, sum_gx] = *sum;
    let (delta, zeta) = (alpha * (sum_gx * inv) / mf, alpha * sum_g / mf);
    for start in (ci * s..xs.len()).step_by(c * s) {
        let (xp, gp) = (&xs[start..start + s], &gs[start..start + s]);
        // SAFETY: the planes of channel `ci` are this part's alone.
        let dp = unsafe { dx.slice(start..start + s) };
        match relu {
            Some(r) => {
                for ((d, &x), &g) in dp.iter_mut().zip(xp).zip(gp) {
                    let g = dy_of(g, x, mu, Some(r));
                    *d = alpha * g - delta * ((x - mu) * inv) - zeta;
                }
            }
            None => {
                for ((d, &x), &g) in dp.iter_mut().zip(xp).zip(gp) {
                    *d = alpha * g - delta * ((x - mu) * inv) - zeta;
                }
            }
        }
    }
}

/// [`batch_norm_backward`] into preallocated buffers (see [`NormGrads`]).
///
/// With [`crate::distributed::with_sync_batch_norm`] the statistics came from
/// every rank. Each rank's loss is the mean over its own `mᵣ` elements, so
/// its `dy` is `M / mᵣ` times the whole batch's: the sums over ranks weight
/// each rank's by `mᵣ / M`, and `dx` comes back at this rank's scale, as the
/// gradients of the layers below must. `dγ` and `dβ` stay this rank's (the
/// gradient average weights them).
pub fn batch_norm_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
    grads: NormGrads<'_, T>,
) {
    backward_impl(x, gamma, None, dy, [mean, var], eps, grads, Passes::Chosen)
}

/// [`batch_norm_backward_into`] of [`batch_norm_relu_into`]: `dy` is the
/// gradient of the `relu`'s output, taken back through it on the way (the
/// normalized values recomputed from `x`, never stored), so the result is
/// that of the `relu` activation's backward followed by
/// [`batch_norm_backward_into`], without the pass between them.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_relu_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
    grads: NormGrads<'_, T>,
) {
    backward_impl(
        x,
        gamma,
        Some(beta),
        dy,
        [mean, var],
        eps,
        grads,
        Passes::Chosen,
    )
}

/// How the backward reads the input and the output gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Passes {
    /// One visit per channel (the channel's sums, then its input gradient
    /// while it is in cache) where there are at least two channels per
    /// thread; otherwise two passes over the whole tensor, split over the
    /// planes. Both give the same bits.
    Chosen,
    /// One visit per channel wherever it can be (not under synchronized
    /// batch norm, nor for `[n, c]` rows), however many threads.
    #[cfg_attr(not(test), allow(dead_code))]
    PerChannel,
    /// The two passes, always.
    #[cfg_attr(not(test), allow(dead_code))]
    Two,
}

/// The backward of both: `relu_beta` is β when a `relu` followed.
#[allow(clippy::too_many_arguments)]
fn backward_impl<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    relu_beta: Option<ArrayViewD<'_, T>>,
    dy: ArrayViewD<'_, T>,
    stats: [&[T]; 2],
    eps: f64,
    grads: NormGrads<'_, T>,
    passes: Passes,
) {
    let NormGrads {
        mut dx,
        dgamma,
        dbeta,
    } = grads;
    assert!(
        dx.shape() == x.shape(),
        "batch_norm backward: input gradient {:?} for input {:?}",
        dx.shape(),
        x.shape()
    );
    let dx = Output::initialized(dx.as_slice_mut().expect("standard-layout gradient"));
    backward_slots(
        x,
        gamma,
        relu_beta,
        dy,
        stats,
        eps,
        dx,
        [dgamma, dbeta],
        passes,
    )
}

/// [`backward_impl`] with the input gradient's elements, in standard order,
/// in `dx` (each range taken once).
#[allow(clippy::too_many_arguments)]
fn backward_slots<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    relu_beta: Option<ArrayViewD<'_, T>>,
    dy: ArrayViewD<'_, T>,
    [mean, var]: [&[T]; 2],
    eps: f64,
    dx: Output<T>,
    [mut dgamma, mut dbeta]: [ArrayViewMutD<'_, T>; 2],
    passes: Passes,
) {
    let c = x.shape()[1];
    assert!(
        gamma.len() == c
            && dgamma.len() == c
            && dbeta.len() == c
            && mean.len() == c
            && var.len() == c
            && dy.shape() == x.shape()
            && dx.len() == x.len(),
        "batch_norm backward: weight {:?}, gradient {:?}, {} input gradients for input {:?}",
        gamma.shape(),
        dy.shape(),
        dx.len(),
        x.shape()
    );
    let (c, s) = geometry(x.shape());
    let synced = crate::distributed::batch_norm_synced();
    if s == 0 && !synced {
        return;
    }
    let (x, dy, gamma) = (
        x.as_standard_layout(),
        dy.as_standard_layout(),
        gamma.as_standard_layout(),
    );
    let (xs, gs, gamma) = (contiguous(&x), contiguous(&dy), contiguous(&gamma));
    let inputs = [xs, gs];
    // Per channel `[a, β]` of the forward's `relu((x − μ) a + β)`, `a`
    // computed as the forward computes it, so the mask is the forward's.
    let relu_coef: Option<SmallVec<[[T; 2]; INLINE_CHANNELS]>> = relu_beta.map(|beta| {
        assert!(
            beta.len() == c,
            "batch_norm backward: bias {:?} for {c} channels",
            beta.shape()
        );
        let beta = beta.as_standard_layout();
        let beta = contiguous(&beta);
        (0..c)
            .map(|ci| [inv_std(var[ci], eps) * gamma[ci], beta[ci]])
            .collect()
    });
    let relu_coef = relu_coef.as_deref();
    let mut sums: SmallVec<[[T; 2]; INLINE_CHANNELS]> = SmallVec::from_elem([T::zero(); 2], c);
    let m = xs.len() / c.max(1);
    let mf = T::lit(m as f64);
    // Under synchronized batch norm the sums wait for the other ranks'.
    let by_channel = s > 1
        && !synced
        && match passes {
            Passes::Chosen => c >= 2 * crate::threads(),
            Passes::PerChannel => true,
            Passes::Two => false,
        };
    if by_channel {
        // Channel by channel: the sums read a channel's input and gradient,
        // and its input gradient reads them again while they are still in
        // the core's cache (a channel of 128 planes of 28 × 28 is 800 KB).
        let shared = Shared::new(&mut sums);
        let cs = [c, s];
        for_each_range(c, 3 * xs.len(), &|channels| {
            for ci in channels {
                // SAFETY: each part sums, and writes the gradient of, its own
                // channels.
                let sum = unsafe { &mut shared.slice(ci..ci + 1)[0] };
                let stats = [mean[ci], var[ci], gamma[ci]];
                let relu = relu_coef.map(|r| r[ci]);
                let dx = &dx;
                widest_rows!(channel_backward(
                    inputs: [&[T]; 2],
                    cs: [usize; 2],
                    ci: usize,
                    stats: [T; 3],
                    eps: f64,
                    mf: T,
                    relu: Option<[T; 2]>,
                    sum: &mut [T; 2],
                    dx: &Output<T>
                ));
            }
        });
    } else if s > 0 {
        let (cs, shared) = ([c, s], Shared::new(&mut sums));
        for_each_range(c, 2 * xs.len(), &|channels| {
            let first = channels.start;
            // SAFETY: the parts' channel ranges are disjoint.
            let sums = unsafe { shared.slice(channels) };
            if s == 1 {
                widest_rows!(grad_sums_of_columns(
                    inputs: [&[T]; 2],
                    c: usize,
                    first: usize,
                    mean: &[T],
                    relu_coef: Option<&[[T; 2]]>,
                    sums: &mut [[T; 2]]
                ));
            } else {
                widest_rows!(grad_sums_of_channels(
                    inputs: [&[T]; 2],
                    cs: [usize; 2],
                    first: usize,
                    mean: &[T],
                    relu_coef: Option<&[[T; 2]]>,
                    sums: &mut [[T; 2]]
                ));
            }
        });
    }
    for ci in 0..c {
        let inv = inv_std(var[ci], eps);
        let [sum_g, sum_gx] = &mut sums[ci];
        *sum_gx *= inv;
        dgamma[ci] += *sum_gx;
        dbeta[ci] += *sum_g;
    }
    if synced {
        synced_grad_sums(m, &mut sums);
    }
    if by_channel || s == 0 {
        // The channel visits wrote the input gradient already.
        return;
    }
    let coef: SmallVec<[[T; 5]; INLINE_CHANNELS]> = (0..c)
        .map(|ci| {
            let inv = inv_std(var[ci], eps);
            let alpha = gamma[ci] * inv;
            let [sum_g, sum_gx] = sums[ci];
            [
                mean[ci],
                inv,
                alpha,
                alpha * sum_gx / mf,
                alpha * sum_g / mf,
            ]
        })
        .collect();
    let cs = [c, s];
    let dx = &dx;
    for_each_piece(xs.len(), if s == 1 { c } else { s }, &|r, first| {
        let inputs = [&xs[r.clone()], &gs[r.clone()]];
        let coef = &coef[..];
        // SAFETY: the parts' ranges are disjoint.
        let dx = unsafe { dx.slice(r) };
        if s == 1 {
            widest_rows!(input_grad_rows(
                inputs: [&[T]; 2],
                coef: &[[T; 5]],
                relu_coef: Option<&[[T; 2]]>,
                dx: &mut [T]
            ));
        } else {
            widest_rows!(input_grad_planes(
                inputs: [&[T]; 2],
                cs: [usize; 2],
                first: usize,
                coef: &[[T; 5]],
                relu_coef: Option<&[[T; 2]]>,
                dx: &mut [T]
            ));
        }
    });
}

/// Replaces this rank's `[Σdy, Σ dy x̂]` (over its `m` elements) by every
/// rank's, each rank's weighted by its share of the elements.
fn synced_grad_sums<T: Float>(m: usize, sums: &mut [[T; 2]]) {
    let (c, mf) = (sums.len(), m as f64);
    let mut all = vec![0.0f64; 2 * c + 1];
    for (ci, [g, gx]) in sums.iter().enumerate() {
        all[ci] = mf * g.as_f64();
        all[c + ci] = mf * gx.as_f64();
    }
    all[2 * c] = mf;
    crate::distributed::sum_for_batch_norm(&mut all);
    let total = all[2 * c];
    for (ci, s) in sums.iter_mut().enumerate() {
        *s = [T::lit(all[ci] / total), T::lit(all[c + ci] / total)];
    }
}

/// Evaluation-mode gradients (fixed running statistics): `dx = γ dy / √(σ² + ε)`.
pub fn batch_norm_eval_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    mean: &[T],
    var: &[T],
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let c = x.shape()[1];
    let inv: Vec<T> = var.iter().map(|&v| inv_std(v, eps)).collect();
    let scale: Vec<T> = inv.iter().zip(gamma.iter()).map(|(&i, &g)| i * g).collect();
    let dx = &dy * &per_channel(&x, &scale);
    let xhat = &(&x - &per_channel(&x, mean)) * &per_channel(&x, &inv);
    let mut axes: Vec<usize> = (0..x.ndim()).filter(|&a| a != 1).collect();
    axes.reverse();
    let reduce = |mut a: ArrayD<T>| {
        for &ax in &axes {
            a = a.sum_axis(Axis(ax));
        }
        a
    };
    let dgamma = reduce(&dy * &xhat);
    let dbeta = reduce(dy.to_owned());
    debug_assert_eq!(dgamma.len(), c);
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_output_matches_the_into_form_over_stale_memory() {
        use ndarray::Dimension;
        // `batch_norm` writes an array that is not filled first: every
        // element of memory holding NaN must be written, planes ([n, c, h,
        // w]) and rows ([n, c]), split over the cores (1.6 million values) or not.
        for shape in [&[128usize, 16, 28, 28][..], &[64, 10]] {
            let x = ArrayD::from_shape_fn(IxDyn(shape), |i| {
                ((0..i.ndim()).map(|a| i[a] * (2 * a + 3)).sum::<usize>() % 13) as f32 / 13.0
            });
            let c = shape[1];
            let (gamma, beta) = (
                ArrayD::from_elem(IxDyn(&[c]), 1.5f32),
                ArrayD::from_elem(IxDyn(&[c]), -0.25f32),
            );
            let (mean, var) = (vec![0.4f32; c], vec![0.09f32; c]);
            let mut y = ArrayD::zeros(x.raw_dim());
            batch_norm_into(
                x.view(),
                gamma.view(),
                beta.view(),
                &mean,
                &var,
                1e-5,
                y.view_mut(),
            );
            let mut fresh = vec![MaybeUninit::new(f32::NAN); x.len()];
            let stats = [&mean[..], &var[..]];
            normalize_slots(
                x.view(),
                gamma.view(),
                beta.view(),
                stats,
                1e-5,
                false,
                &mut fresh,
            );
            // SAFETY: every slot held a value before and after.
            let fresh: Vec<u32> = fresh
                .iter()
                .map(|v| unsafe { v.assume_init() }.to_bits())
                .collect();
            let want: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
            assert_eq!(fresh, want, "{shape:?}");
            // The input gradient, by channel visits and by two passes (the
            // rows take the passes either way), with and without the relu.
            let dy = y.mapv(|v| v * 0.5 - 0.125);
            for (passes, relu) in [(Passes::PerChannel, None), (Passes::Two, Some(beta.view()))] {
                let mut dx = ArrayD::zeros(x.raw_dim());
                let (mut dg, mut db) = (ArrayD::zeros(vec![c]), ArrayD::zeros(vec![c]));
                let grads = NormGrads {
                    dx: dx.view_mut(),
                    dgamma: dg.view_mut(),
                    dbeta: db.view_mut(),
                };
                backward_impl(
                    x.view(),
                    gamma.view(),
                    relu.clone(),
                    dy.view(),
                    stats,
                    1e-5,
                    grads,
                    passes,
                );
                let mut fresh = vec![MaybeUninit::new(f32::NAN); x.len()];
                let (mut dg, mut db) = (ArrayD::zeros(vec![c]), ArrayD::zeros(vec![c]));
                let params = [dg.view_mut(), db.view_mut()];
                let out = Output::fresh(&mut fresh);
                backward_slots(
                    x.view(),
                    gamma.view(),
                    relu,
                    dy.view(),
                    stats,
                    1e-5,
                    out,
                    params,
                    passes,
                );
                // SAFETY: every slot held a value before and after.
                let fresh: Vec<u32> = fresh
                    .iter()
                    .map(|v| unsafe { v.assume_init() }.to_bits())
                    .collect();
                let want: Vec<u32> = dx.iter().map(|v| v.to_bits()).collect();
                assert_eq!(fresh, want, "dx of {shape:?}, {passes:?}");
            }
        }
    }

    /// Batch norm of `x` (`[n, c, s]`) and its gradients from the formulas in
    /// the docs, in `f64` one element at a time: `(y, dx, dγ, dβ)`.
    fn reference(
        x: &ArrayD<f64>,
        gamma: &[f64],
        beta: &[f64],
        dy: &ArrayD<f64>,
        eps: f64,
    ) -> [ArrayD<f64>; 4] {
        let (n, c, s) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (mut y, mut dx) = (ArrayD::zeros(x.raw_dim()), ArrayD::zeros(x.raw_dim()));
        let (mut dg, mut db) = (ArrayD::zeros(vec![c]), ArrayD::zeros(vec![c]));
        let m = (n * s) as f64;
        for ci in 0..c {
            let at = |a: &ArrayD<f64>, i: usize, j: usize| a[[i, ci, j]];
            let cells = || (0..n).flat_map(|i| (0..s).map(move |j| (i, j)));
            let mean = cells().map(|(i, j)| at(x, i, j)).sum::<f64>() / m;
            let var = cells()
                .map(|(i, j)| (at(x, i, j) - mean).powi(2))
                .sum::<f64>()
                / m;
            let inv = 1.0 / (var + eps).sqrt();
            let sum_g = cells().map(|(i, j)| at(dy, i, j)).sum::<f64>();
            let sum_gx = cells()
                .map(|(i, j)| at(dy, i, j) * (at(x, i, j) - mean) * inv)
                .sum::<f64>();
            for (i, j) in cells() {
                let xhat = (at(x, i, j) - mean) * inv;
                y[[i, ci, j]] = gamma[ci] * xhat + beta[ci];
                dx[[i, ci, j]] = gamma[ci] * inv / m * (m * at(dy, i, j) - sum_g - xhat * sum_gx);
            }
            dg[ci] = sum_gx;
            db[ci] = sum_g;
        }
        [y, dx, dg, db]
    }

    /// Planes with and without a partial chunk of lanes; the large shapes
    /// are enough work to be split among threads, the small are not; planes
    /// of one element are the rows of a 2-D input `[n, c]`.
    const SHAPES: [(usize, usize, usize); 6] = [
        (2, 3, 5),
        (3, 2, 1),
        (4, 16, 196),
        (128, 16, 49),
        (7, 5, 33),
        (300, 600, 1),
    ];

    /// A deterministic input `[n, c, s]` (channels' means apart) and output
    /// gradient.
    fn inputs<T: Float>(n: usize, c: usize, s: usize) -> (ArrayD<T>, ArrayD<T>) {
        let x = ArrayD::from_shape_fn(vec![n, c, s], |d| {
            T::lit(((d[0] * 31 + d[1] * 7 + d[2]) as f64 * 0.71).sin() * 3.0 + d[1] as f64)
        });
        let dy = ArrayD::from_shape_fn(vec![n, c, s], |d| {
            T::lit(((d[0] * 13 + d[1] * 5 + d[2]) as f64 * 0.37).cos())
        });
        (x, dy)
    }

    /// A scale and a shift per channel, the shifts on both sides of zero so
    /// that every channel's `relu` clips some values.
    fn affine<T: Float>(c: usize) -> (ArrayD<T>, ArrayD<T>) {
        let gamma = ArrayD::from_shape_fn(vec![c], |j| T::lit(1.0 - 0.15 * j[0] as f64));
        let beta = ArrayD::from_shape_fn(vec![c], |j| T::lit(0.3 * j[0] as f64 % 1.0 - 0.5));
        (gamma, beta)
    }

    /// Fused batch norm + relu against batch norm, the `relu` activation and
    /// their backwards one after another: the same bits, forward and back.
    fn fused_relu_matches_the_composition<T: Float + std::fmt::Debug>() {
        use crate::activation::{relu, ActivationFn};
        let eps = 1e-5;
        for (n, c, s) in SHAPES {
            let (x, dy) = inputs::<T>(n, c, s);
            let (gamma, beta) = affine::<T>(c);
            let (mean, var, _) = channel_stats(x.view());
            let z = batch_norm(x.view(), gamma.view(), beta.view(), &mean, &var, eps);
            let want_y = relu.forward(z.view());
            let mut y = ArrayD::from_elem(x.shape(), T::nan());
            batch_norm_relu_into(
                x.view(),
                gamma.view(),
                beta.view(),
                &mean,
                &var,
                eps,
                y.view_mut(),
            );
            assert_eq!(y, want_y, "forward of {n} × {c} × {s}");
            assert!(y.iter().any(|&v| v == T::zero()) && y.iter().any(|&v| v > T::zero()));

            let mut dz = ArrayD::zeros(x.raw_dim());
            relu.backward_into(z.view(), want_y.view(), dy.view(), dz.view_mut());
            // `[dx, dγ, dβ]` of one backward, the parameters' added to ones.
            let grads = |backward: &dyn Fn(NormGrads<'_, T>)| {
                let mut dx = ArrayD::from_elem(x.shape(), T::nan());
                let (mut dg, mut db) = (ArrayD::ones(vec![c]), ArrayD::ones(vec![c]));
                backward(NormGrads {
                    dx: dx.view_mut(),
                    dgamma: dg.view_mut(),
                    dbeta: db.view_mut(),
                });
                [dx, dg, db]
            };
            let want = grads(&|g| {
                batch_norm_backward_into(x.view(), gamma.view(), dz.view(), &mean, &var, eps, g)
            });
            let got = grads(&|g| {
                batch_norm_relu_backward_into(
                    x.view(),
                    gamma.view(),
                    beta.view(),
                    dy.view(),
                    &mean,
                    &var,
                    eps,
                    g,
                )
            });
            for ((name, got), want) in ["dx", "dγ", "dβ"].into_iter().zip(got).zip(want) {
                assert_eq!(got, want, "{name} of {n} × {c} × {s}");
            }
        }
    }

    /// The backward's visit per channel gives the bits of its two passes,
    /// with and without the `relu`.
    fn channel_visits_match_the_two_passes<T: Float + std::fmt::Debug>() {
        let eps = 1e-5;
        for (n, c, s) in SHAPES {
            let (x, dy) = inputs::<T>(n, c, s);
            let (gamma, beta) = affine::<T>(c);
            let (mean, var, _) = channel_stats(x.view());
            for relu in [false, true] {
                let run = |passes| {
                    let mut dx = ArrayD::from_elem(x.shape(), T::nan());
                    let (mut dg, mut db) = (ArrayD::ones(vec![c]), ArrayD::ones(vec![c]));
                    let grads = NormGrads {
                        dx: dx.view_mut(),
                        dgamma: dg.view_mut(),
                        dbeta: db.view_mut(),
                    };
                    let beta = relu.then(|| beta.view());
                    let stats = [&mean[..], &var[..]];
                    backward_impl(
                        x.view(),
                        gamma.view(),
                        beta,
                        dy.view(),
                        stats,
                        eps,
                        grads,
                        passes,
                    );
                    [dx, dg, db]
                };
                let (got, want) = (run(Passes::PerChannel), run(Passes::Two));
                for ((name, got), want) in ["dx", "dγ", "dβ"].into_iter().zip(got).zip(want) {
                    assert_eq!(got, want, "{name} of {n} × {c} × {s}, relu {relu}");
                }
            }
        }
    }

    #[test]
    fn channel_visits_are_the_two_passes_in_f32_and_f64() {
        channel_visits_match_the_two_passes::<f32>();
        channel_visits_match_the_two_passes::<f64>();
    }

    #[test]
    fn fused_relu_is_the_composition_in_f32_and_f64() {
        fused_relu_matches_the_composition::<f32>();
        fused_relu_matches_the_composition::<f64>();
    }

    #[test]
    fn batch_norm_matches_the_formulas_split_or_not() {
        let eps = 1e-5;
        for (n, c, s) in SHAPES {
            let (x, dy) = inputs::<f64>(n, c, s);
            let gamma: Vec<f64> = (0..c).map(|j| 1.0 + 0.1 * j as f64).collect();
            let beta: Vec<f64> = (0..c).map(|j| 0.05 * j as f64).collect();
            let want = reference(&x, &gamma, &beta, &dy, eps);
            let (g, b) = (
                ndarray::aview1(&gamma).into_dyn(),
                ndarray::aview1(&beta).into_dyn(),
            );
            let (mean, var, m) = channel_stats(x.view());
            assert_eq!(m, n * s);
            let y = batch_norm(x.view(), g.view(), b, &mean, &var, eps);
            // The parameters' gradients are added to what is there.
            let mut dx = ArrayD::from_elem(x.shape(), f64::NAN);
            let (mut dg, mut db) = (
                ArrayD::from_elem(vec![c], 1.0),
                ArrayD::from_elem(vec![c], 2.0),
            );
            let grads = NormGrads {
                dx: dx.view_mut(),
                dgamma: dg.view_mut(),
                dbeta: db.view_mut(),
            };
            batch_norm_backward_into(x.view(), g, dy.view(), &mean, &var, eps, grads);
            let got = [y, dx, dg - 1.0, db - 2.0];
            super::super::tests::assert_all_close(&format!("{n} × {c} × {s}"), got, &want);
        }
    }
}
