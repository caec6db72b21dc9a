//! Batch and layer normalization, forward beside backward (batch norm in
//! `norm/batch.rs`).
//!
//! Both normalize `x̂ = (x - μ) / √(σ² + ε)` with the biased variance and then
//! scale and shift: `y = γ x̂ + β`. Batch norm takes μ, σ² per channel (axis 1)
//! over every other axis; layer norm per sample over the last axes.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use std::cell::RefCell;

use super::lanes::{add_lane_sums, fold_lanes, lane_sum, lane_sums, lanes, LANES};
use super::owned::owned;
use crate::parallel::{for_each_range, parts_for, Shared};
use crate::Float;

/// `1 / √(σ² + ε)`.
fn inv_std<T: Float>(var: T, eps: f64) -> T {
    T::one() / (var + T::lit(eps)).sqrt()
}

/// Runs an `_into` backward on zeroed buffers and returns `(dx, dγ, dβ)`.
fn fresh_grads<T: Float>(
    dx_dim: IxDyn,
    param_dim: IxDyn,
    backward: impl FnOnce(NormGrads<'_, T>),
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let mut dx = super::owned::zeros(dx_dim);
    let (mut dgamma, mut dbeta) = (ArrayD::zeros(param_dim.clone()), ArrayD::zeros(param_dim));
    backward(NormGrads {
        dx: dx.view_mut(),
        dgamma: dgamma.view_mut(),
        dbeta: dbeta.view_mut(),
    });
    (dx, dgamma, dbeta)
}

/// Where the `_into` backward passes put their gradients: `dx` is
/// overwritten; `dgamma` and `dbeta` are added to (parameter gradients accumulate).
pub struct NormGrads<'a, T> {
    /// The input's gradient, of the input's shape.
    pub dx: ArrayViewMutD<'a, T>,
    /// Added to: the scale's gradient.
    pub dgamma: ArrayViewMutD<'a, T>,
    /// Added to: the shift's gradient.
    pub dbeta: ArrayViewMutD<'a, T>,
}

fn rows<T: Float>(op: &str, x: &ArrayViewD<'_, T>, normalized: usize) -> (usize, usize) {
    assert!(
        normalized >= 1 && normalized <= x.ndim(),
        "{op}: cannot normalize the last {normalized} axes of shape {:?}",
        x.shape()
    );
    let m: usize = x.shape()[x.ndim() - normalized..].iter().product();
    (x.len() / m.max(1), m)
}

/// A row's mean and `1 / √(biased variance + ε)`.
#[inline(always)]
fn row_stats<T: Float>(row: &[T], eps: f64) -> (T, T) {
    let m = T::lit(row.len() as f64);
    let mean = lane_sum(row, |e| e) / m;
    let var = lane_sum(row, |e| (e - mean) * (e - mean)) / m;
    (mean, inv_std(var, eps))
}

/// Runs `f` on a norm's rows, planes or channels, compiled for the widest
/// vectors the CPU has (an explicit function: these loops are too large for
/// a closure to be inlined into `simd::widest`).
macro_rules! widest_rows {
    ($f:ident($($arg:ident: $ty:ty),*)) => {
        $crate::run_widest!(<T: Float> ($($arg: $ty = $arg),*) => $f($($arg),*))
    };
}

mod batch;
pub use batch::*;

/// Forward rows: `y = (x − μ) σ̂ γ + β` on rows of `γ`'s length; each row's
/// `[μ, σ̂]` into `stats` unless it is empty.
#[inline(always)]
fn layer_norm_rows<T: Float>(xs: &[T], g: &[T], b: &[T], eps: f64, y: &mut [T], stats: &mut [T]) {
    let m = g.len();
    for (r, (row, out)) in xs.chunks_exact(m).zip(y.chunks_exact_mut(m)).enumerate() {
        let (mean, inv) = row_stats(row, eps);
        if let Some(s) = stats.get_mut(2 * r..2 * r + 2) {
            s.copy_from_slice(&[mean, inv]);
        }
        for (((o, &x), &g), &b) in out.iter_mut().zip(row).zip(g).zip(b) {
            *o = (x - mean) * inv * g + b;
        }
    }
}

/// Backward rows: `dx`, and `dγ`, `dβ` added to; each row's `[μ, σ̂]` from
/// `stats` (the forward's), or recomputed where it is empty.
#[inline(always)]
fn layer_norm_backward_rows<T: Float>(
    [xs, gs, g, stats]: [&[T]; 4],
    eps: f64,
    dx: &mut [T],
    [dgamma, dbeta]: [&mut [T]; 2],
) {
    let m = g.len();
    let mf = T::lit(m as f64);
    for (r, ((row, grow), drow)) in xs
        .chunks_exact(m)
        .zip(gs.chunks_exact(m))
        .zip(dx.chunks_exact_mut(m))
        .enumerate()
    {
        let (mean, inv) = match stats.get(2 * r..2 * r + 2) {
            Some(&[mean, inv]) => (mean, inv),
            _ => row_stats(row, eps),
        };
        // x̂ into dx for now (one operation per loop, so each vectorizes).
        for (d, &x) in drow.iter_mut().zip(row) {
            *d = (x - mean) * inv;
        }
        for (((dg, db), &dy), &xhat) in dgamma
            .iter_mut()
            .zip(dbeta.iter_mut())
            .zip(grow)
            .zip(&*drow)
        {
            *dg += dy * xhat;
            *db += dy;
        }
        let full = m - m % LANES;
        let chunks = grow
            .chunks_exact(LANES)
            .zip(g.chunks_exact(LANES))
            .zip(drow.chunks_exact(LANES));
        let [sum_d, sum_dx] = lane_sums(
            chunks,
            #[inline(always)]
            |((dy, g), xhat)| {
                let d: [T; LANES] = lanes(|l| dy[l] * g[l]);
                [d, lanes(|l| d[l] * xhat[l])]
            },
        );
        let (mut sd, mut sdx) = (fold_lanes(sum_d), fold_lanes(sum_dx));
        for j in full..m {
            let d = grow[j] * g[j];
            sd += d;
            sdx += d * drow[j];
        }
        let k = inv / mf;
        for ((d, &dy), &g) in drow.iter_mut().zip(grow).zip(g) {
            *d = k * (mf * dy * g - sd - *d * sdx);
        }
    }
}

thread_local! {
    /// The `dγ`, `dβ` partial sums of a layer norm backward's parts but the
    /// first, reused across calls.
    static PARTIALS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Layer norm over the last `normalized` axes; `gamma`, `beta` have their shape.
pub fn layer_norm<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
) -> ArrayD<T> {
    owned(x.raw_dim(), |y| {
        layer_norm_into(x, gamma, beta, normalized, eps, y)
    })
}

/// [`layer_norm`] into a preallocated `y` of `x`'s shape.
pub fn layer_norm_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
    y: ArrayViewMutD<'_, T>,
) {
    layer_norm_stats_into(x, gamma, beta, normalized, eps, y, &mut []);
}

/// [`layer_norm_into`] keeping each row's mean and `1 / √(σ² + ε)` in
/// `stats` (`[μ, σ̂]` per row, or empty for none) for
/// [`layer_norm_backward_stats_into`], which then need not recompute them.
pub fn layer_norm_stats_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    beta: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
    mut y: ArrayViewMutD<'_, T>,
    stats: &mut [T],
) {
    let (n, m) = rows("layer_norm", &x, normalized);
    assert!(
        gamma.len() == m
            && beta.len() == m
            && y.shape() == x.shape()
            && (stats.is_empty() || stats.len() == 2 * n),
        "layer_norm: weight {:?} does not match the last {normalized} axes of {:?} (output {:?}, {} statistics)",
        gamma.shape(),
        x.shape(),
        y.shape(),
        stats.len()
    );
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout");
    let (g, b) = (gamma.as_standard_layout(), beta.as_standard_layout());
    let (g, b) = (
        g.as_slice().expect("standard"),
        b.as_slice().expect("standard"),
    );
    if n == 0 || m == 0 {
        return;
    }
    let y = y.as_slice_mut().expect("standard-layout output");
    let y = Shared::new(y);
    let keep = !stats.is_empty();
    let stats = Shared::new(stats);
    for_each_range(n, n * m, &|rows| {
        let r = rows.start * m..rows.end * m;
        let xs = &xs[r.clone()];
        // SAFETY: the parts' row ranges are disjoint.
        let (y, stats) = unsafe {
            let s = if keep {
                2 * rows.start..2 * rows.end
            } else {
                0..0
            };
            (y.slice(r), stats.slice(s))
        };
        widest_rows!(layer_norm_rows(
            xs: &[T],
            g: &[T],
            b: &[T],
            eps: f64,
            y: &mut [T],
            stats: &mut [T]
        ));
    });
}

/// Gradients of [`layer_norm`]: `(dx, dγ, dβ)`.
pub fn layer_norm_backward<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
) -> (ArrayD<T>, ArrayD<T>, ArrayD<T>) {
    let (dx_dim, param_dim) = (x.raw_dim(), gamma.raw_dim());
    fresh_grads(dx_dim, param_dim, |g| {
        layer_norm_backward_into(x, gamma, dy, normalized, eps, g)
    })
}

/// [`layer_norm_backward`] into preallocated buffers (see [`NormGrads`]).
pub fn layer_norm_backward_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
    grads: NormGrads<'_, T>,
) {
    layer_norm_backward_stats_into(x, gamma, dy, normalized, eps, &[], grads);
}

/// [`layer_norm_backward_into`] given the forward's `stats` (see
/// [`layer_norm_stats_into`]; empty: recomputed). The same bits either way.
pub fn layer_norm_backward_stats_into<T: Float>(
    x: ArrayViewD<'_, T>,
    gamma: ArrayViewD<'_, T>,
    dy: ArrayViewD<'_, T>,
    normalized: usize,
    eps: f64,
    stats: &[T],
    grads: NormGrads<'_, T>,
) {
    let (n, m) = rows("layer_norm", &x, normalized);
    assert!(
        gamma.len() == m && dy.shape() == x.shape() && grads.dx.shape() == x.shape()
            && grads.dgamma.len() == m && grads.dbeta.len() == m
            && (stats.is_empty() || stats.len() == 2 * n),
        "layer_norm backward: weight {:?}, gradient {:?}, input gradient {:?}, {} statistics for input {:?} normalized over its last {normalized} axes",
        gamma.shape(),
        dy.shape(),
        grads.dx.shape(),
        stats.len(),
        x.shape()
    );
    if n == 0 || m == 0 {
        return;
    }
    let (xs, gs) = (x.as_standard_layout(), dy.as_standard_layout());
    let (xs, gs) = (
        xs.as_slice().expect("standard"),
        gs.as_slice().expect("standard"),
    );
    let g = gamma.as_standard_layout();
    let g = g.as_slice().expect("standard");
    let NormGrads {
        mut dx,
        mut dgamma,
        mut dbeta,
    } = grads;
    let dx = dx.as_slice_mut().expect("standard-layout gradient");
    let dgamma = dgamma.as_slice_mut().expect("standard-layout gradient");
    let dbeta = dbeta.as_slice_mut().expect("standard-layout gradient");
    // The rows in chunks whose number depends on the size alone, their dγ, dβ
    // added in chunk order: the same bits on any number of threads.
    let chunks = if n * m >= crate::parallel::PARALLEL_ELEMENTS {
        crate::parallel::REDUCTION_CHUNKS.min(n)
    } else {
        1
    };
    let parts = parts_for(n, n * m);
    let step = n.div_ceil(chunks);
    let dx = Shared::new(dx);
    // Rows `chunk · step ..`, their dγ, dβ added into `params`.
    let rows = |chunk: usize, params: [&mut [T]; 2]| {
        let rows = (chunk * step).min(n)..((chunk + 1) * step).min(n);
        let r = rows.start * m..rows.end * m;
        let stats = if stats.is_empty() {
            stats
        } else {
            &stats[2 * rows.start..2 * rows.end]
        };
        let inputs = [&xs[r.clone()], &gs[r.clone()], g, stats];
        // SAFETY: the chunks' row ranges are disjoint.
        let dx = unsafe { dx.slice(r) };
        widest_rows!(layer_norm_backward_rows(
            inputs: [&[T]; 4],
            eps: f64,
            dx: &mut [T],
            params: [&mut [T]; 2]
        ));
    };
    if chunks == 1 {
        return rows(0, [dgamma, dbeta]);
    }
    PARTIALS.with(|cell| {
        let mut buf = cell.borrow_mut();
        let words = ((chunks - 1) * 2 * m * size_of::<T>()).div_ceil(size_of::<f64>());
        if buf.len() < words {
            buf.resize(words, 0.0);
        }
        const { assert!(std::mem::align_of::<T>() <= std::mem::align_of::<f64>()) };
        // SAFETY: the buffer holds `words` f64, at least `(chunks − 1) · 2m`
        // values of `T`, whose alignment is at most f64's (checked above).
        let partials = unsafe {
            std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), (chunks - 1) * 2 * m)
        };
        partials.fill(T::zero());
        let shared = Shared::new(partials);
        let (dgamma, dbeta) = (Shared::new(dgamma), Shared::new(dbeta));
        crate::parallel::for_each_chunk(chunks, parts, &|chunk| {
            // SAFETY: chunk 0 alone writes dγ and dβ; chunk c ≥ 1 its own slot.
            let params = unsafe {
                if chunk == 0 {
                    [dgamma.slice(0..m), dbeta.slice(0..m)]
                } else {
                    let slot = shared.slice((chunk - 1) * 2 * m..chunk * 2 * m);
                    let (a, b) = slot.split_at_mut(m);
                    [a, b]
                }
            };
            rows(chunk, params);
        });
        // In chunk order, so the result depends neither on timing nor on threads.
        // SAFETY: the chunks have finished.
        let (dgamma, dbeta) = unsafe { (dgamma.slice(0..m), dbeta.slice(0..m)) };
        let partials = unsafe { shared.slice(0..(chunks - 1) * 2 * m) };
        for slot in partials.chunks_exact(2 * m) {
            for (d, &p) in dgamma.iter_mut().zip(&slot[..m]) {
                *d += p;
            }
            for (d, &p) in dbeta.iter_mut().zip(&slot[m..]) {
                *d += p;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    /// The layer norm of each row and its gradients, from the formulas in
    /// the module docs, in `f64` one element at a time: `(y, dx, dγ, dβ)`.
    fn reference(
        x: &Array2<f64>,
        gamma: &Array1<f64>,
        beta: &Array1<f64>,
        dy: &Array2<f64>,
        eps: f64,
    ) -> [ArrayD<f64>; 4] {
        let (n, m) = x.dim();
        let (mut y, mut dx) = (Array2::zeros((n, m)), Array2::zeros((n, m)));
        let (mut dg, mut db) = (Array1::zeros(m), Array1::zeros(m));
        for r in 0..n {
            let mean = x.row(r).sum() / m as f64;
            let var = x.row(r).iter().map(|&v| (v - mean).powi(2)).sum::<f64>() / m as f64;
            let inv = 1.0 / (var + eps).sqrt();
            let xhat = x.row(r).mapv(|v| (v - mean) * inv);
            let d = &dy.row(r) * gamma;
            let (sd, sdx) = (d.sum(), (&d * &xhat).sum());
            for j in 0..m {
                y[[r, j]] = xhat[j] * gamma[j] + beta[j];
                dx[[r, j]] = inv / m as f64 * (m as f64 * d[j] - sd - xhat[j] * sdx);
                dg[j] += dy[[r, j]] * xhat[j];
                db[j] += dy[[r, j]];
            }
        }
        [y.into_dyn(), dx.into_dyn(), dg.into_dyn(), db.into_dyn()]
    }

    #[test]
    fn layer_norm_matches_the_formulas_split_or_not() {
        let eps = 1e-5;
        // Widths with and without a partial chunk of lanes; 1500 rows of 64
        // are enough work to be split among threads, 3 rows are not.
        for (n, m) in [(3, 5), (3, 64), (1500, 64), (1500, 50), (1200, 131)] {
            let x = Array2::from_shape_fn((n, m), |(i, j)| ((i * m + j) as f64 * 0.71).sin() * 3.0);
            let dy = Array2::from_shape_fn((n, m), |(i, j)| ((i * m + j) as f64 * 0.37).cos());
            let gamma = Array1::from_shape_fn(m, |j| 1.0 + 0.1 * j as f64);
            let beta = Array1::from_shape_fn(m, |j| 0.05 * j as f64);
            let want = reference(&x, &gamma, &beta, &dy, eps);
            let y = layer_norm(
                x.view().into_dyn(),
                gamma.view().into_dyn(),
                beta.view().into_dyn(),
                1,
                eps,
            );
            // The parameters' gradients are added to what is there.
            let mut dx = ArrayD::from_elem(x.shape(), f64::NAN);
            let (mut dg, mut db) = (
                ArrayD::from_elem(vec![m], 1.0),
                ArrayD::from_elem(vec![m], 2.0),
            );
            layer_norm_backward_into(
                x.view().into_dyn(),
                gamma.view().into_dyn(),
                dy.view().into_dyn(),
                1,
                eps,
                NormGrads {
                    dx: dx.view_mut(),
                    dgamma: dg.view_mut(),
                    dbeta: db.view_mut(),
                },
            );
            assert_all_close(
                &format!("{n} × {m}"),
                [y.clone(), dx.clone(), &dg - 1.0, &db - 2.0],
                &want,
            );

            // With the forward's statistics kept, the same bits both ways.
            let mut stats = vec![f64::NAN; 2 * n];
            let mut y_kept = ArrayD::from_elem(x.shape(), f64::NAN);
            let (g, b) = (gamma.view().into_dyn(), beta.view().into_dyn());
            let xd = x.view().into_dyn();
            layer_norm_stats_into(
                xd.view(),
                g.view(),
                b,
                1,
                eps,
                y_kept.view_mut(),
                &mut stats,
            );
            assert_eq!(y_kept, y, "{n} × {m}: y");
            let mut dx_kept = ArrayD::from_elem(x.shape(), f64::NAN);
            let (mut dg_kept, mut db_kept) = (
                ArrayD::from_elem(vec![m], 1.0),
                ArrayD::from_elem(vec![m], 2.0),
            );
            let grads = NormGrads {
                dx: dx_kept.view_mut(),
                dgamma: dg_kept.view_mut(),
                dbeta: db_kept.view_mut(),
            };
            let dyd = dy.view().into_dyn();
            layer_norm_backward_stats_into(xd.view(), g.view(), dyd.view(), 1, eps, &stats, grads);
            assert_eq!(
                [&dx_kept, &dg_kept, &db_kept],
                [&dx, &dg, &db],
                "{n} × {m}: gradients"
            );
            // And they are what the backward reads: another mean moves row 0.
            stats[0] += 1.0;
            let mut dx_moved = ArrayD::from_elem(x.shape(), f64::NAN);
            let grads = NormGrads {
                dx: dx_moved.view_mut(),
                dgamma: dg_kept.view_mut(),
                dbeta: db_kept.view_mut(),
            };
            layer_norm_backward_stats_into(xd, g, dyd, 1, eps, &stats, grads);
            let row0 = |a: &ArrayD<f64>| a.index_axis(ndarray::Axis(0), 0).to_owned();
            assert_ne!(row0(&dx_moved), row0(&dx), "{n} × {m}: stats not read");
        }
    }

    /// `(y, dx, dγ, dβ)` against the reference, each to 1e-12 of its largest value.
    pub(super) fn assert_all_close(at: &str, got: [ArrayD<f64>; 4], want: &[ArrayD<f64>; 4]) {
        for (what, (g, w)) in ["y", "dx", "dgamma", "dbeta"]
            .iter()
            .zip(got.iter().zip(want))
        {
            let worst = (g - w).iter().fold(0.0f64, |a, &d| a.max(d.abs()));
            let scale = w.iter().fold(1.0f64, |a, &v| a.max(v.abs()));
            assert!(worst <= 1e-12 * scale, "{what} at {at}: off by {worst:e}");
        }
    }
}
