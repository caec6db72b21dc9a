//! The single-threaded blocked product (the Goto/BLIS loop nest): panels of `b`
//! and blocks of `a` are packed into per-thread buffers that are allocated once
//! and reused, then swept by the micro-kernels.

use std::cell::RefCell;

use super::tile::{Kernels, PackFn, Sweep, TileArgs};
use crate::Float;

/// A strided matrix, addressed by raw pointer so parts of one product can be
/// handed to several threads. Strides are in elements and may be negative.
#[derive(Clone, Copy)]
pub struct Mat<T> {
    pub ptr: *mut T,
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: a `Mat` is a view; the product that creates one guarantees that the
// parts written by different threads are disjoint and that inputs are not written.
unsafe impl<T: Sync> Send for Mat<T> {}
unsafe impl<T: Sync> Sync for Mat<T> {}

impl<T> Mat<T> {
    /// The element at `(i, j)`; wrapping, so a pointer one block past the end is fine.
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> *mut T {
        self.ptr
            .wrapping_offset(i as isize * self.rs + j as isize * self.cs)
    }

    /// `values` as one row repeated down every row (row stride 0): the
    /// `row` a product reads in place of `c` (see [`gemm_piece`]). Only read.
    pub fn row(values: &[T]) -> Self {
        Mat {
            ptr: values.as_ptr().cast_mut(),
            rows: 1,
            cols: values.len(),
            rs: 0,
            cs: 1,
        }
    }

    /// Asserts that this is what a row packer ([`Kernels::pack_rows`])
    /// takes: a strip of `rows` rows, each contiguous.
    pub fn assert_row_strip(&self, rows: usize) {
        assert!(
            self.rows == rows && self.cs == 1,
            "gemm: a row strip of {} rows, column stride {}",
            self.rows,
            self.cs
        );
    }

    /// Rows `r0..r0 + rows` and columns `c0..c0 + cols`.
    pub fn block(&self, r0: usize, rows: usize, c0: usize, cols: usize) -> Self {
        Mat {
            ptr: self.at(r0, c0),
            rows,
            cols,
            ..*self
        }
    }
}

/// 64-byte aligned storage, so packed panels start on a cache line.
#[derive(Clone, Copy)]
#[repr(align(64))]
pub(super) struct Line {
    _bytes: [u8; 64],
}

impl Line {
    /// A line of zero bytes.
    pub(super) const ZERO: Line = Line { _bytes: [0; 64] };
}

thread_local! {
    static PACKED: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// The most 64-byte lines a packing of `ks`'s blocks can ask for.
fn most_lines<T>(ks: &Kernels<T>) -> usize {
    let lines = |n: usize| (n * size_of::<T>()).div_ceil(64);
    lines(ks.mc * ks.kc) + lines(ks.kc * ks.nc)
}

/// Grows this thread's packing buffers to the most any product, `f32` or
/// `f64`, can ask for (see [`super::reserve_scratch`]).
pub(crate) fn reserve_packing() {
    PACKED.with(|cell| {
        // Borrowed: a product on this thread is packing (it runs no parallel
        // loop meanwhile, so this is not reached today).
        if let Ok(mut buf) = cell.try_borrow_mut() {
            let most = most_lines(f32::gemm_kernels()).max(most_lines(f64::gemm_kernels()));
            if buf.len() < most {
                buf.resize(most, Line::ZERO);
            }
        }
    })
}

/// Runs `f` with this thread's packing buffers for `a` (`a_len` elements) and
/// `b` (`b_len`); they grow to the largest request and are then reused.
fn with_packing<T, R>(a_len: usize, b_len: usize, f: impl FnOnce(*mut T, *mut T) -> R) -> R {
    let lines = |n: usize| (n * size_of::<T>()).div_ceil(64);
    PACKED.with(|cell| {
        let mut buf = cell.borrow_mut();
        let need = lines(a_len) + lines(b_len);
        if buf.len() < need {
            buf.resize(need, Line::ZERO);
        }
        let base = buf.as_mut_ptr();
        // SAFETY: both regions lie inside `buf`, which is 64-byte aligned.
        let (a, b) = unsafe { (base.cast::<T>(), base.add(lines(a_len)).cast::<T>()) };
        f(a, b)
    })
}

/// Packs rows `0..a.rows` of `a` (all `k = a.cols` columns) into strips of
/// `mr` rows: strip `s` starts at `s · mr · k` and holds, for each column `p`,
/// that column's `rows` values (the last strip may be shorter). `packer`
/// packs a full strip of a row-contiguous `a`, where the kernel set has a
/// vectorized way to.
unsafe fn pack_a<T: Float>(a: Mat<T>, mr: usize, packer: Option<PackFn<T>>, out: *mut T) {
    let k = a.cols;
    for r0 in (0..a.rows).step_by(mr) {
        let rows = mr.min(a.rows - r0);
        let strip = out.add(r0 * k);
        if let (1, true, Some(pack)) = (a.cs, rows == mr, packer) {
            pack(a.block(r0, rows, 0, k), strip);
        } else if a.cs == 1 {
            for i in 0..rows {
                let src = a.at(r0 + i, 0);
                for p in 0..k {
                    *strip.add(p * rows + i) = *src.add(p);
                }
            }
        } else if a.rs == 1 {
            // Columns contiguous (a transposed operand, such as the `xᵀ` of
            // a weight gradient): each column's values are one short copy,
            // of a length known at compile time for full strips.
            match rows {
                6 => copy_columns::<T, 6>(a, r0, strip),
                12 => copy_columns::<T, 12>(a, r0, strip),
                _ => copy_columns_of(a, r0, rows, strip),
            }
        } else {
            for p in 0..k {
                for i in 0..rows {
                    *strip.add(p * rows + i) = *a.at(r0 + i, p);
                }
            }
        }
    }
}

/// Packs rows `r0..r0 + R` of a column-contiguous `a` (`a.rs == 1`) as
/// [`pack_a`] lays out a strip.
#[inline(always)]
unsafe fn copy_columns<T, const R: usize>(a: Mat<T>, r0: usize, strip: *mut T) {
    copy_columns_of(a, r0, R, strip)
}

/// [`copy_columns`] for a row count known only at run time.
#[inline(always)]
unsafe fn copy_columns_of<T>(a: Mat<T>, r0: usize, rows: usize, strip: *mut T) {
    for p in 0..a.cols {
        std::ptr::copy_nonoverlapping(a.at(r0, p), strip.add(p * rows), rows);
    }
}

/// Packs `b` into strips of `nr` columns, zero-padded to full width: strip `s`
/// starts at `s · nr · k` and holds, for each row `p`, `nr` values.
/// `packer` packs one strip of a `b` with contiguous columns, where the kernel
/// set has a vectorized way to.
unsafe fn pack_b<T: Float>(b: Mat<T>, nr: usize, packer: Option<PackFn<T>>, out: *mut T) {
    let k = b.rows;
    for c0 in (0..b.cols).step_by(nr) {
        let cols = nr.min(b.cols - c0);
        let strip = out.add(c0 * k);
        if b.cs == 1 && cols == nr {
            // Whole strips (most of them): copies of a length known at
            // compile time, not a library call per row.
            match nr {
                8 => copy_rows::<T, 8>(b, c0, strip),
                16 => copy_rows::<T, 16>(b, c0, strip),
                32 => copy_rows::<T, 32>(b, c0, strip),
                _ => copy_rows_of(b, c0, nr, strip),
            }
        } else if b.cs == 1 {
            for p in 0..k {
                let dst = std::slice::from_raw_parts_mut(strip.add(p * nr), nr);
                let src = std::slice::from_raw_parts(b.at(p, c0), cols);
                dst[..cols].copy_from_slice(src);
                dst[cols..].fill(T::zero());
            }
        } else if let (1, Some(pack)) = (b.rs, packer) {
            pack(b.block(0, k, c0, cols), strip);
        } else {
            for j in 0..nr {
                if j < cols {
                    for p in 0..k {
                        *strip.add(p * nr + j) = *b.at(p, c0 + j);
                    }
                } else {
                    for p in 0..k {
                        *strip.add(p * nr + j) = T::zero();
                    }
                }
            }
        }
    }
}

/// Packs the `N` columns from `c0` of a row-contiguous `b` (`b.cs == 1`) as
/// [`pack_b`] lays out a whole strip.
#[inline(always)]
unsafe fn copy_rows<T, const N: usize>(b: Mat<T>, c0: usize, strip: *mut T) {
    copy_rows_of(b, c0, N, strip)
}

/// [`copy_rows`] for a width known only at run time.
#[inline(always)]
unsafe fn copy_rows_of<T>(b: Mat<T>, c0: usize, n: usize, strip: *mut T) {
    for p in 0..b.rows {
        std::ptr::copy_nonoverlapping(b.at(p, c0), strip.add(p * n), n);
    }
}

/// `c = beta · c`, with `beta = 0` writing zeros (NaN in `c` is not propagated).
unsafe fn scale<T: Float>(beta: T, c: Mat<T>) {
    for i in 0..c.rows {
        for j in 0..c.cols {
            let e = c.at(i, j);
            *e = if beta == T::zero() {
                T::zero()
            } else {
                beta * *e
            };
        }
    }
}

/// Elements [`pack_whole_b`] writes for a `k × n` operand: every panel
/// [`gemm`] would pack, each zero-padded to whole strips.
pub fn packed_b_len<T>(ks: &Kernels<T>, k: usize, n: usize) -> usize {
    let nc = ks.nc.min(n.next_multiple_of(ks.nr)).max(1);
    let widths: usize = (0..n)
        .step_by(nc)
        .map(|jc| nc.min(n - jc).next_multiple_of(ks.nr))
        .sum();
    k * widths
}

/// Packs all of `b` as [`gemm`] packs it panel by panel, in the order it
/// sweeps them, so that many products can share one packing
/// ([`gemm_prepacked`]).
///
/// # Safety
/// `b` is valid for its strides; `out` holds [`packed_b_len`] elements.
pub unsafe fn pack_whole_b<T: Float>(ks: &Kernels<T>, b: Mat<T>, out: *mut T) {
    let (k, n) = (b.rows, b.cols);
    if k == 0 || n == 0 {
        return;
    }
    let kc = ks.kc.min(k);
    let nc = ks.nc.min(n.next_multiple_of(ks.nr));
    let mut at = out;
    for jc in (0..n).step_by(nc) {
        let nb = nc.min(n - jc);
        for pc in (0..k).step_by(kc) {
            let kb = kc.min(k - pc);
            pack_b(b.block(pc, kb, jc, nb), ks.nr, ks.pack_columns, at);
            at = at.add(kb * nb.next_multiple_of(ks.nr));
        }
    }
}

/// `c = alpha · a · b + beta · c` on this thread.
///
/// # Safety
/// `a` is `m × k`, `b` is `k × n` and `c` is `m × n`, all valid for their
/// strides; `c` does not overlap `a` or `b`, and no other thread writes `c`.
pub unsafe fn gemm<T: Float>(ks: &Kernels<T>, alpha: T, a: Mat<T>, b: Mat<T>, beta: T, c: Mat<T>) {
    gemm_piece(ks, alpha, a, b, beta, c, takes_dot(alpha, &a, &b), None)
}

/// Whether [`gemm`] takes the dot-product kernel for this product. (`suits`
/// asks for a long inner dimension; empty or zero-scaled products take the
/// loop nest's early exits.)
pub fn takes_dot<T: Float>(alpha: T, a: &Mat<T>, b: &Mat<T>) -> bool {
    a.rows > 0 && b.cols > 0 && alpha != T::zero() && super::dot::suits(a, b)
}

/// [`gemm`] on one piece of a product split over threads: the dot-product
/// kernel where the whole product takes it (`whole_takes_dot`), not by the
/// piece's own shape, so that every element is summed the same way on any
/// number of threads. With a `row` (`n` contiguous values), `beta` scales it
/// in place of `c`: `c = alpha · a · b + beta · row` on every row.
///
/// # Safety
/// As [`gemm`]; with `whole_takes_dot`, the piece is a block of rows or
/// columns of a product that [`super::dot::suits`], and there is no `row`;
/// `row` holds `n` values.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_piece<T: Float>(
    ks: &Kernels<T>,
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: Mat<T>,
    whole_takes_dot: bool,
    row: Option<Mat<T>>,
) {
    if whole_takes_dot {
        debug_assert!(row.is_none(), "gemm: the dot kernel reads no row");
        super::dot::gemm(alpha, a, b, beta, c)
    } else {
        product(ks, alpha, a, b, None, (beta, row), c)
    }
}

/// [`gemm`] with `b` (`k × n`) already packed by [`pack_whole_b`] at `packed`.
///
/// # Safety
/// As [`gemm`]; `packed` holds `b` packed by [`pack_whole_b`] with `ks`.
pub unsafe fn gemm_prepacked<T: Float>(
    ks: &Kernels<T>,
    alpha: T,
    a: Mat<T>,
    (k, n, packed): (usize, usize, *const T),
    beta: T,
    c: Mat<T>,
) {
    let b = Mat {
        ptr: std::ptr::null_mut(),
        rows: k,
        cols: n,
        rs: 0,
        cs: 0,
    };
    product(ks, alpha, a, b, Some(packed), (beta, None), c)
}

/// Which operands a product reads in place rather than packing: `(a, b)`;
/// `prepacked`: `b` comes packed already.
pub(super) fn reads_in_place<T>(
    ks: &Kernels<T>,
    a: &Mat<T>,
    b: &Mat<T>,
    prepacked: bool,
) -> (bool, bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // Packing pays for itself by reuse. A panel of `b` is swept once per row
    // strip: with few strips, or when all of `b` fits in L1, read it in place
    // (the tiles need contiguous rows for that). A block of `a` is swept once
    // per column strip: with few, read it in place. Rows contiguous (a batch
    // of inputs) are packed too where the kernels pack whole strips of them
    // vectorized, a strip's `mr` streams becoming one: on the Intel Xeon of
    // the README's tables, one core, 512³ ran 8 % faster and 128 × 512 × 512
    // 5 % (alternating runs, 2026-12-05), where an earlier machine had run
    // them 2-5 % faster read in place; with AVX2's `f32` kernels, 256³ 6 %
    // and 512³ 8 % faster. Without that packer (`f64`, the portable tile),
    // or with fewer rows than a strip, they are read in place, unless they
    // lie a multiple of 4 KiB apart and so compete for the same L1 sets
    // (1024³ and 2048³ lost 10-15 % read in place).
    let direct_b = !prepacked && ks.direct_b && b.cs == 1 && (m <= 2 * ks.mr || k * n <= 8192);
    let direct_a = n <= 4 * ks.nr
        || (a.cs == 1
            && (ks.pack_rows.is_none() || m < ks.mr)
            && !(a.rs.unsigned_abs() * size_of::<T>()).is_multiple_of(4096));
    (direct_a, direct_b)
}

/// The loop nest of [`gemm`]; `packed` is `b` already packed (its `ptr` then
/// unused); `beta` scales `c`, or the `row` in its place (see [`gemm_piece`]).
unsafe fn product<T: Float>(
    ks: &Kernels<T>,
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    packed: Option<*const T>,
    (beta, row): (T, Option<Mat<T>>),
    c: Mat<T>,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == T::zero() {
        match row {
            Some(row) => {
                for i in 0..m {
                    for j in 0..n {
                        *c.at(i, j) = beta * *row.at(0, j);
                    }
                }
            }
            None => scale(beta, c),
        }
        return;
    }
    let (direct_a, direct_b) = reads_in_place(ks, &a, &b, packed.is_some());
    let kc = ks.kc.min(k);
    let mc = ks.mc.min(m);
    let nc = ks.nc.min(n.next_multiple_of(ks.nr));
    let b_len = if direct_b || packed.is_some() {
        0
    } else {
        kc * nc
    };
    // Where the next prepacked panel starts: they lie in the order of the
    // loops over `jc` and `pc`.
    let mut next_panel = packed;
    with_packing(
        if direct_a { 0 } else { mc * kc },
        b_len,
        |a_buf: *mut T, b_buf: *mut T| {
            for jc in (0..n).step_by(nc) {
                let nb = nc.min(n - jc);
                for pc in (0..k).step_by(kc) {
                    let kb = kc.min(k - pc);
                    let beta = if pc == 0 { beta } else { T::one() };
                    let panel = b.block(pc, kb, jc, nb);
                    let b_buf = match next_panel {
                        Some(here) => {
                            next_panel = Some(here.add(kb * nb.next_multiple_of(ks.nr)));
                            here.cast_mut()
                        }
                        None => {
                            if !direct_b {
                                pack_b(panel, ks.nr, ks.pack_columns, b_buf);
                            }
                            b_buf
                        }
                    };
                    for ic in (0..m).step_by(mc) {
                        let mb = mc.min(m - ic);
                        if !direct_a {
                            pack_a(a.block(ic, mb, pc, kb), ks.mr, ks.pack_rows, a_buf);
                        }
                        // One tile: rows `ir..` of the block by columns
                        // `jr..` of the panel.
                        let tile = |ir: usize, jr: usize| {
                            let rows = ks.mr.min(mb - ir);
                            let (a_strip, a_rs, a_cs) = if direct_a {
                                (a.at(ic + ir, pc) as *const T, a.rs, a.cs)
                            } else {
                                (a_buf.add(ir * kb) as *const T, 1, rows as isize)
                            };
                            let (b_strip, ldb) = if direct_b {
                                (panel.at(0, jr) as *const T, b.rs)
                            } else {
                                (b_buf.add(jr * kb) as *const T, ks.nr as isize)
                            };
                            let at = c.at(ic + ir, jc + jr);
                            // The row stands in for `c` in the first panel's
                            // `beta` term only: later panels add to what the
                            // first wrote.
                            debug_assert!(row.is_none_or(|r| r.cs == 1));
                            let (src, src_rs, src_cs) = match row {
                                Some(row) if pc == 0 => (row.at(0, jc + jr) as *const T, 0, 1),
                                _ => (at as *const T, c.rs, c.cs),
                            };
                            let args = TileArgs {
                                k: kb,
                                a: a_strip,
                                a_rs,
                                a_cs,
                                b: b_strip,
                                ldb,
                                b_whole: !direct_b,
                                c: at,
                                rsc: c.rs,
                                csc: c.cs,
                                src,
                                src_rs,
                                src_cs,
                                cols: ks.nr.min(nb - jr),
                                alpha,
                                beta,
                            };
                            (ks.tiles[rows - 1])(&args);
                        };
                        // Every tile sums the same way in either order.
                        match ks.sweep {
                            Sweep::RowsOfA => {
                                for jr in (0..nb).step_by(ks.nr) {
                                    for ir in (0..mb).step_by(ks.mr) {
                                        tile(ir, jr);
                                    }
                                }
                            }
                            Sweep::ColumnsOfB => {
                                for ir in (0..mb).step_by(ks.mr) {
                                    for jr in (0..nb).step_by(ks.nr) {
                                        tile(ir, jr);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    );
}

/// Checks a vectorized row packer ([`Kernels::pack_rows`]) against the
/// layout [`pack_a`] gives a strip of `rows` rows, for column counts around
/// 8- and 16-wide blocks, rows `k + 5` apart, and that it writes nothing
/// past the strip (16 slots of NaN after it).
///
/// # Safety
/// The CPU runs `pack`.
#[cfg(test)]
pub(super) unsafe fn check_row_packer(rows: usize, pack: PackFn<f32>) {
    for k in [1, 7, 8, 9, 15, 16, 17, 40, 256] {
        let stride = k + 5;
        let a: Vec<f32> = (0..rows * stride).map(|v| v as f32).collect();
        let mut strip = vec![f32::NAN; rows * k + 16];
        let strip_of = Mat {
            ptr: a.as_ptr().cast_mut(),
            rows,
            cols: k,
            rs: stride as isize,
            cs: 1,
        };
        // SAFETY: `strip_of` lies inside `a`; `strip` holds `rows · k`
        // values and more; the caller vouches for the CPU.
        unsafe { pack(strip_of, strip.as_mut_ptr()) };
        for p in 0..k {
            for i in 0..rows {
                assert_eq!(
                    strip[p * rows + i],
                    a[i * stride + p],
                    "k {k} column {p} row {i}"
                );
            }
        }
        assert!(
            strip[rows * k..].iter().all(|v| v.is_nan()),
            "k {k}: written past the strip"
        );
    }
}
