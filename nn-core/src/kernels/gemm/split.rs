//! How a product is shared out over the cores: by blocks of rows or of
//! columns, whichever leaves the largest piece less work, or by chunks of a
//! long inner dimension added in a fixed order, so the result does not
//! depend on the number of threads.

use std::cell::RefCell;

use super::blocked::{self, Mat};
use super::tile::Kernels;
use super::{reserve_scratch, worth_splitting};
use crate::Float;

thread_local! {
    /// Partial products of a split inner dimension, reused across calls.
    static PARTIALS: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// The most `f64` words [`PARTIALS`] can need: the inner dimension is split
/// only for outputs under 64 × 64, into at most `REDUCTION_CHUNKS` chunks.
const MOST_PARTIAL_WORDS: usize = (crate::parallel::REDUCTION_CHUNKS - 1) * 63 * 63;

/// Grows this thread's [`PARTIALS`] to the most any split can ask for (see
/// [`super::reserve_scratch`]).
pub(super) fn reserve_partials() {
    PARTIALS.with(|cell| {
        // Borrowed: a split on this thread holds it, and reserved it first.
        if let Ok(mut buf) = cell.try_borrow_mut() {
            if buf.len() < MOST_PARTIAL_WORDS {
                buf.resize(MOST_PARTIAL_WORDS, 0.0);
            }
        }
    })
}

/// Runs `product(a_rows, c_rows)` on blocks of whole tiles' rows of `a: m ×
/// k` and `c: m × n`, one per core where the product is large and has two
/// tiles of rows, else once on the whole: the split of the products that
/// keep their kernel whatever the shape ([`gemm_tiles`](super::gemm_tiles),
/// [`PackedRhs::gemm`](super::PackedRhs::gemm)).
///
/// # Safety
/// `product` is safe to call on any block of rows of `a` and `c`, which no
/// other thread writes meanwhile.
pub(super) unsafe fn by_row_blocks<T>(
    ks: &Kernels<T>,
    (a, c): (Mat<T>, Mat<T>),
    k: usize,
    product: &(dyn Fn(Mat<T>, Mat<T>) + Sync),
) where
    T: Sync,
{
    let (m, n) = (c.rows, c.cols);
    let parts = if worth_splitting(m, k, n) && m >= 2 * ks.mr {
        crate::threads()
    } else {
        1
    };
    if parts <= 1 {
        return product(a, c);
    }
    let rows = piece(m, parts, ks.mr);
    crate::parallel::for_each_part(parts, &|p| {
        let r0 = (p * rows).min(m);
        let r = rows.min(m - r0);
        if r > 0 {
            product(a.block(r0, r, 0, k), c.block(r0, r, 0, n));
        }
    });
}

/// The length of each of `parts` pieces of `len`, in whole blocks of
/// `align` (the last piece shorter, or empty).
fn piece(len: usize, parts: usize, align: usize) -> usize {
    len.div_ceil(parts).next_multiple_of(align)
}

/// Whether splitting the rows leaves the largest piece less work than
/// splitting the columns. Pieces are whole tiles, so an even split can
/// still be lopsided: 128 rows over two threads are 72 and 56 (tiles of 12
/// rows) where 128 columns are 64 and 64 (tiles of 32). And each piece
/// packs what it reads (where `blocked::product` packs at all): a piece of
/// rows all of `b`'s columns, a piece of columns all of `a`'s rows, once
/// per `nc`-wide panel of its columns.
pub(super) fn rows_balance_better<T>(
    ks: &Kernels<T>,
    parts: usize,
    a: &Mat<T>,
    b: &Mat<T>,
) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // The largest piece, in whole tiles.
    let rows = piece(m, parts, ks.mr).min(m.next_multiple_of(ks.mr));
    let cols = piece(n, parts, ks.nr).min(n.next_multiple_of(ks.nr));
    // A piece's multiply-adds and packing, per unit of `k`.
    let work = |a: &Mat<T>, b: &Mat<T>| {
        let (direct_a, direct_b) = blocked::reads_in_place(ks, a, b, false);
        let tiles = a.rows.next_multiple_of(ks.mr) * b.cols.next_multiple_of(ks.nr);
        // The packed layout keeps `a`'s columns and `b`'s rows together:
        // copies where the operand is contiguous that way.
        let pack_a = if direct_a {
            0
        } else {
            let per_value = if a.rs == 1 && a.cs != 1 {
                COPY_MACS
            } else {
                TRANSPOSE_MACS
            };
            per_value * a.rows * b.cols.div_ceil(ks.nc)
        };
        let pack_b = if direct_b {
            0
        } else {
            let per_value = if b.cs == 1 { COPY_MACS } else { TRANSPOSE_MACS };
            per_value * b.cols.next_multiple_of(ks.nr)
        };
        tiles + pack_a + pack_b
    };
    work(&a.block(0, rows.min(m), 0, k), b) < work(a, &b.block(0, k, 0, cols.min(n)))
}

/// The time to transpose one value while packing, in multiply-adds of the
/// tiles (12 × 32 tiles do 32 a cycle). Measured on the Intel Xeon of the
/// README's tables (two cores, 2026-12-05): packing the whole of `a` on
/// each core took 7 % of a 512³ product split by columns, about 19
/// multiply-adds a value; rounded down, as an operand already in cache
/// packs faster. Split by rows (each core packing its own rows of `a`, and
/// all of `b` by copies) 384³ then ran 8 % faster, 512³ 4 %, 1024³ 6 %,
/// where the tiles alone tied or chose columns.
const TRANSPOSE_MACS: usize = 16;

/// The time to copy one value while packing: an estimate (a vector of 16
/// values moved in about the time the tiles do 32 multiply-adds), small
/// beside a transpose.
const COPY_MACS: usize = 1;

/// Runs the product on `parts` threads (0: too small to split): parts of
/// the rows or of the columns, whichever leaves the largest piece less
/// work, its tiles and its packing ([`rows_balance_better`]), when the
/// output has 64 of either (each
/// output element still summed in one order), otherwise of the inner
/// dimension (a convolution's weight gradient: small output, long sum) in a
/// number of chunks that depends on `k` alone, their partial products added
/// in chunk order — so the result does not depend on the number of threads.
/// With a `row`, `beta · row` stands in for `beta · c` on every row (the
/// kernels that cannot read it get it copied into `c` first).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn split<T: Float>(
    ks: &Kernels<T>,
    parts: usize,
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    (beta, row): (T, Option<Mat<T>>),
    c: Mat<T>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // Decided once for the whole product: a piece's own shape could choose
    // another kernel, and so another order of sums, on another thread count.
    let dot = blocked::takes_dot(alpha, &a, &b);
    let whole = parts == 0 || ((m >= 64 || n >= 64) && parts < 2);
    if let (Some(r), true) = (row, dot || (!whole && m < 64 && n < 64)) {
        // The dot kernel and a split inner dimension read `c` itself. (A row
        // comes with `beta = 1` alone, `gemm_bias_raw`'s: `beta · row` then
        // adds no rounding.)
        debug_assert!(beta == T::one(), "gemm: a row scaled by beta {beta:?}");
        for i in 0..m {
            for j in 0..n {
                *c.at(i, j) = beta * *r.at(0, j);
            }
        }
        return split(ks, parts, alpha, a, b, (T::one(), None), c);
    }
    if whole {
        return blocked::gemm_piece(ks, alpha, a, b, beta, c, dot, row);
    }
    if m >= 64 && (n < 64 || rows_balance_better(ks, parts, &a, &b)) {
        let rows = piece(m, parts, ks.mr);
        crate::parallel::for_each_part(parts, &|p| {
            let r0 = (p * rows).min(m);
            let r = rows.min(m - r0);
            if r > 0 {
                blocked::gemm_piece(
                    ks,
                    alpha,
                    a.block(r0, r, 0, k),
                    b,
                    beta,
                    c.block(r0, r, 0, n),
                    dot,
                    row,
                );
            }
        });
    } else if n >= 64 {
        let cols = piece(n, parts, ks.nr);
        crate::parallel::for_each_part(parts, &|p| {
            let c0 = (p * cols).min(n);
            let w = cols.min(n - c0);
            if w > 0 {
                blocked::gemm_piece(
                    ks,
                    alpha,
                    a,
                    b.block(0, k, c0, w),
                    beta,
                    c.block(0, m, c0, w),
                    dot,
                    row.map(|r| r.block(0, 1, c0, w)),
                );
            }
        });
    } else {
        // Chunks of the same depth (the last shorter), none empty; their
        // number depends on `k` alone.
        let depth = piece(k, crate::parallel::REDUCTION_CHUNKS.min(k).max(1), 1);
        let chunks = k.div_ceil(depth).max(1);
        reserve_scratch();
        PARTIALS.with(|cell| {
            let mut buf = cell.borrow_mut();
            let words = ((chunks - 1) * m * n * size_of::<T>()).div_ceil(size_of::<f64>());
            debug_assert!(
                words <= MOST_PARTIAL_WORDS,
                "gemm: partials past their bound"
            );
            if buf.len() < words {
                buf.resize(words, 0.0);
            }
            // Chunks 1.. write their sums into row blocks of one scratch matrix.
            let scratch = Mat {
                ptr: buf.as_mut_ptr().cast::<T>(),
                rows: (chunks - 1) * m,
                cols: n,
                rs: n as isize,
                cs: 1,
            };
            let partial = |p: usize| scratch.block((p - 1) * m, m, 0, n);
            crate::parallel::for_each_chunk(chunks, parts, &|p| {
                let p0 = (p * depth).min(k);
                let d = depth.min(k - p0);
                let (into, beta) = if p == 0 {
                    (c, beta)
                } else {
                    (partial(p), T::zero())
                };
                blocked::gemm(
                    ks,
                    alpha,
                    a.block(0, m, p0, d),
                    b.block(p0, d, 0, n),
                    beta,
                    into,
                );
            });
            for p in 1..chunks {
                let part = partial(p);
                for i in 0..m {
                    for j in 0..n {
                        *c.at(i, j) += *part.at(i, j);
                    }
                }
            }
        });
    }
}
