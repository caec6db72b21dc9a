//! The one matrix product every kernel calls: a blocked GEMM with AVX-512
//! micro-kernels (AVX2 or plain Rust where the CPU lacks them, chosen at run
//! time), split over [`crate::threads`] cores for products large enough to
//! repay it.
//!
//! Written here rather than taken from `matrixmultiply` or the `gemm` crate
//! because both allocate a packing buffer on every call, and a warmed-up
//! training step must not allocate; here the buffers are per thread and reused.
//! On the 2-core AVX-512 machine this project first ran on (f32,
//! `cargo run --release --example bench -- gemm`) one core runs at 93–105
//! GFLOP/s against matrixmultiply's 100–106, two at 184–194; their threading
//! yields or spins while idle, ours sleeps ([`crate::parallel`]).
//!
//! Transposed operands are strided views: packing reads any strides, so
//! `a.t()` and `b.t()` are never copied.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocked;
mod dot;
mod flops;
mod packed;
mod portable;
mod split;
mod tile;

use ndarray::{
    ArrayBase, ArrayView1, ArrayView2, ArrayViewMut2, Data, DataMut, Ix2, RawArrayViewMut,
};

use crate::Float;
use blocked::Mat;
pub(crate) use flops::count_flops;
pub use flops::flops_so_far;
pub use packed::{with_packed_rhs, PackedRhs};
use split::{by_row_blocks, split};
#[doc(hidden)]
pub use tile::Kernels;

/// Products below this many multiply-adds run on one core: handing work to
/// another costs more. Splitting products down to 2²⁰ (a 64 × 128 × 128
/// layer) gains little in itself, but keeps the other core's worker polling
/// through a training step instead of falling asleep between larger
/// products and being woken (a system call and its latency).
const PARALLEL_MACS: usize = 1 << 20;

/// Whether an `m × k` by `k × n` product is large enough to split over
/// the threads (so also to run beside another one).
pub(crate) fn worth_splitting(m: usize, k: usize, n: usize) -> bool {
    m * k * n >= PARALLEL_MACS
}

/// The best `f32` kernels this CPU supports.
pub(crate) fn select_f32() -> &'static Kernels<f32> {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::kernels::cpu::avx512() {
            return &avx512::F32;
        }
        if crate::kernels::cpu::avx2() {
            return &avx2::F32;
        }
    }
    &portable::F32
}

/// The best `f64` kernels this CPU supports.
pub(crate) fn select_f64() -> &'static Kernels<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::kernels::cpu::avx512() {
            return &avx512::F64;
        }
        if crate::kernels::cpu::avx2() {
            return &avx2::F64;
        }
    }
    &portable::F64
}

fn mat<T, S: Data<Elem = T>>(x: &ArrayBase<S, Ix2>) -> Mat<T> {
    let s = x.strides();
    Mat {
        ptr: x.as_ptr() as *mut T,
        rows: x.nrows(),
        cols: x.ncols(),
        rs: s[0],
        cs: s[1],
    }
}

/// `c = alpha · a · b + beta · c`. With `beta = 0`, `c`'s old contents are
/// ignored (NaN included).
///
/// # Panics
/// If the shapes do not line up (`a: m × k`, `b: k × n`, `c: m × n`).
pub fn gemm<T, S1, S2, S3>(
    alpha: T,
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    beta: T,
    c: &mut ArrayBase<S3, Ix2>,
) where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
    S3: DataMut<Elem = T>,
{
    let c = Mat {
        ptr: c.as_mut_ptr(),
        ..mat(c)
    };
    // SAFETY: `c` is borrowed mutably, so it is valid for writes, holds
    // values, and overlaps neither input.
    unsafe { checked_product(alpha, a, b, (beta, None), c) }
}

/// [`gemm`] through the tiles alone, never the dot kernel nor a split inner
/// dimension (which [`gemm`] chooses by shape), split by rows over the
/// cores when large: every element summed in the order a
/// [`PackedRhs::gemm`] sums it, whatever the number of rows (a batch's rows
/// give the bits they give alone).
///
/// # Panics
/// As [`gemm`].
pub(crate) fn gemm_tiles<T: Float>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    line_up(a.shape(), b.shape(), [c.nrows(), c.ncols()]);
    let ks = T::gemm_kernels();
    let k = a.ncols();
    let (a, b) = (mat(a), mat(b));
    let c = Mat {
        ptr: c.as_mut_ptr(),
        ..mat(c)
    };
    // SAFETY: the shapes line up; `c` was borrowed mutably, so it is valid,
    // holds values and overlaps neither input.
    unsafe {
        by_row_blocks(ks, (a, c), k, &|a, c| {
            blocked::gemm_piece(ks, alpha, a, b, beta, c, false, None)
        })
    }
}

/// Checks that `a · b` fits `c`'s shape, naming all three, and counts the
/// product's FLOPs.
fn line_up(a: &[usize], b: &[usize], c: [usize; 2]) {
    let (m, k, n) = (a[0], a[1], b[1]);
    if b[0] != k || c != [m, n] {
        panic!("gemm: shapes {a:?} @ {b:?} -> {c:?} do not line up");
    }
    count_flops(m, k, n);
}

/// [`gemm`] into a raw view: with `beta = 0` the product writes every
/// element of `c` and reads none, so `c` may be memory not yet initialized
/// (a new output need not be zero-filled first; see
/// [`owned_written`](super::owned::owned_written)).
///
/// # Safety
/// `c` is valid for writes, no two of its elements share memory (the
/// product's parts write them from several threads), nothing else reads
/// or writes it during the call, it overlaps neither `a` nor `b`, and it
/// holds initialized values unless `beta = 0`.
///
/// # Panics
/// As [`gemm`].
pub unsafe fn gemm_raw<T, S1, S2>(
    alpha: T,
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    beta: T,
    c: RawArrayViewMut<T, Ix2>,
) where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
{
    checked_product(alpha, a, b, (beta, None), raw_mat(c))
}

/// `c = a · b + bias`, `bias` added to every row (a dense layer's `x Wᵀ +
/// b`), into a raw view as [`gemm_raw`] with `beta = 0`: the tiles read the
/// bias where they would read `c`, so it is not first copied into every row
/// of `c` (that copy was 3 % of a small transformer's epoch). The same bits
/// as that copy followed by `gemm_raw` with `beta = 1`.
///
/// # Safety
/// As [`gemm_raw`] with `beta = 0`.
///
/// # Panics
/// As [`gemm`], or if `bias` does not have one value per column of `c`.
pub unsafe fn gemm_bias_raw<T, S1, S2>(
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    bias: ArrayView1<'_, T>,
    c: RawArrayViewMut<T, Ix2>,
) where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
{
    assert!(
        bias.len() == c.ncols(),
        "gemm: a bias of {} values for an output of shape {:?}",
        bias.len(),
        c.shape()
    );
    let bias = bias.as_standard_layout();
    let row = Mat::row(bias.as_slice().expect("standard layout"));
    checked_product(T::one(), a, b, (T::one(), Some(row)), raw_mat(c))
}

fn raw_mat<T>(c: RawArrayViewMut<T, Ix2>) -> Mat<T> {
    let s = c.strides();
    Mat {
        ptr: c.as_ptr() as *mut T,
        rows: c.nrows(),
        cols: c.ncols(),
        rs: s[0],
        cs: s[1],
    }
}

/// [`gemm`] once `c` is a [`Mat`]: checks the shapes, counts the FLOPs and
/// splits the product over the threads; `beta` scales `c` or the row given
/// in its place (see [`split()`]).
///
/// # Safety
/// As [`gemm_raw`]; a row holds `n` values.
unsafe fn checked_product<T, S1, S2>(
    alpha: T,
    a: &ArrayBase<S1, Ix2>,
    b: &ArrayBase<S2, Ix2>,
    (beta, row): (T, Option<Mat<T>>),
    c: Mat<T>,
) where
    T: Float,
    S1: Data<Elem = T>,
    S2: Data<Elem = T>,
{
    line_up(a.shape(), b.shape(), [c.rows, c.cols]);
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let (a, b) = (mat(a), mat(b));
    let parts = if worth_splitting(m, k, n) {
        crate::threads()
    } else {
        0
    };
    // SAFETY: the shapes were checked; the caller vouches for `c`; `split`
    // gives each part a disjoint piece of `c`.
    unsafe { split(T::gemm_kernels(), parts, alpha, a, b, (beta, row), c) }
}

/// Grows this thread's product scratch (packing buffers, split partial
/// sums, its FLOP counter's entry) to the most any `f32` or `f64` product
/// can ask for. Which thread
/// runs which part of a parallel loop changes from call to call, so scratch
/// grown by request could meet a larger piece, and allocate, long after a
/// training step has warmed up: every thread that takes parts calls this
/// first (workers as they start, callers as they split work).
pub(crate) fn reserve_scratch() {
    blocked::reserve_packing();
    flops::register_this_thread();
    split::reserve_partials();
}

#[cfg(test)]
mod tests {
    use super::split::rows_balance_better;
    use super::tile::Sweep;
    use super::*;
    use ndarray::{s, Array2};

    pub(super) fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    /// Integer-valued operands: every partial sum is exact in both types, so
    /// any kernel, blocking or split must reproduce the naive product exactly.
    pub(super) fn ints(rows: usize, cols: usize, seed: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            ((i * 7 + j * 3 + seed) % 11) as f64 - 5.0
        })
    }

    /// Every kernel set this CPU runs, each also with its tiles in the other
    /// order ([`Sweep`]), so both orders are checked on any machine.
    fn kernel_sets() -> Vec<(&'static Kernels<f32>, &'static Kernels<f64>)> {
        let mut sets = vec![(&portable::F32, &portable::F64)];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                sets.push((&avx2::F32, &avx2::F64));
            }
            if is_x86_feature_detected!("avx512f") {
                sets.push((&avx512::F32, &avx512::F64));
            }
        }
        fn swept<T>(ks: &'static Kernels<T>) -> &'static Kernels<T> {
            let sweep = match ks.sweep {
                Sweep::RowsOfA => Sweep::ColumnsOfB,
                Sweep::ColumnsOfB => Sweep::RowsOfA,
            };
            let name = format!("{} ({sweep:?})", ks.name);
            Box::leak(Box::new(Kernels {
                name: Box::leak(name.into_boxed_str()),
                sweep,
                ..*ks
            }))
        }
        let other: Vec<_> = sets.iter().map(|&(a, b)| (swept(a), swept(b))).collect();
        sets.extend(other);
        sets
    }

    /// Shapes around every tile and block edge, with each operand plain,
    /// transposed and (for `c`) column-major, in both element types.
    #[test]
    fn every_kernel_layout_and_edge_matches_the_naive_product() {
        let shapes = [
            (1, 1, 1),
            (5, 3, 7),
            (12, 17, 32),
            (13, 40, 33),
            (25, 300, 65),
            (150, 257, 40),
            (7, 600, 1100),
            // A row-major `a` of a whole strip of rows or more is packed
            // where the kernels pack rows vectorized (`f32` on AVX-512, 12
            // rows a strip, and on AVX2, 6); other sets, and fewer rows,
            // pack it where its rows lie a multiple of 4 KiB apart (they
            // would share cache sets) and read it in place otherwise, as
            // AVX-512 reads (7, 600, 1100).
            (13, 1024, 300),
            // Small outputs, long sums: the dot-product path when both
            // operands are contiguous along k (a plain, b transposed), up
            // to its largest output, and just past it.
            (6, 1100, 25),
            (20, 1100, 20),
            (20, 1100, 21),
            (16, 1300, 150),
        ];
        for (k32, k64) in kernel_sets() {
            for &(m, k, n) in &shapes {
                let (a, b, c0) = (ints(m, k, 1), ints(k, n, 2), ints(m, n, 3));
                let want = naive(&a, &b) * 2.0 + &c0 * 0.5;
                let at = a.t().to_owned();
                let bt = b.t().to_owned();
                for (ta, tb, tc) in (0..8).map(|f| (f & 1 != 0, f & 2 != 0, f & 4 != 0)) {
                    let av = if ta { at.t() } else { a.view() };
                    let bv = if tb { bt.t() } else { b.view() };
                    let mut c = if tc {
                        c0.t().to_owned().reversed_axes()
                    } else {
                        c0.clone()
                    };
                    unsafe {
                        let cm = Mat {
                            ptr: c.as_mut_ptr(),
                            ..mat(&c)
                        };
                        blocked::gemm(k64, 2.0, mat(&av), mat(&bv), 0.5, cm);
                    }
                    assert_eq!(c, want, "{} f64 {m}x{k}x{n} {ta} {tb} {tc}", k64.name);

                    let (a32, b32) = (av.mapv(|v| v as f32), bv.mapv(|v| v as f32));
                    let mut c32 = c0.mapv(|v| v as f32);
                    unsafe {
                        let cm = Mat {
                            ptr: c32.as_mut_ptr(),
                            ..mat(&c32)
                        };
                        blocked::gemm(k32, 2.0, mat(&a32), mat(&b32), 0.5, cm);
                    }
                    assert_eq!(c32.mapv(|v| v as f64), want, "{} f32 {m}x{k}x{n}", k32.name);
                }
            }
        }
    }

    /// A tile of one vector of columns (AVX-512: 16 `f32`, 8 `f64`; AVX2:
    /// 8 and 4) skips the second vector's multiply-adds: its columns must be
    /// the bits they are in a wider product, for every tile height, across
    /// panels (`k` past `kc`), and into a column-major `c`; so must a
    /// partial tile of more than one vector over a packed strip (`b`
    /// transposed), which loads the strip's rows whole.
    #[test]
    fn narrow_tiles_give_the_bits_of_wide_ones() {
        fn check<T: Float>(ks: &Kernels<T>, lanes: usize) {
            let values = |rows: usize, cols: usize, seed: usize| {
                Array2::from_shape_fn((rows, cols), |(i, j)| {
                    T::lit((((i * 31 + j * 17 + seed) as f64) * 0.379).sin())
                })
            };
            let shapes = (1..=13).map(|m| (m, 40)).chain([(1, 3), (25, 300)]);
            for (m, k) in shapes {
                let (a, b) = (values(m, k, 1), values(k, 40, 2));
                // The same values with each column contiguous: packed.
                let bt_owned = b.t().to_owned();
                let b_transposed = bt_owned.t();
                let c0 = values(m, 40, 3);
                let product = |n: usize, column_major: bool, packed: bool| {
                    let start = c0.slice(s![.., ..n]);
                    let mut c = if column_major {
                        start.t().to_owned().reversed_axes()
                    } else {
                        start.to_owned()
                    };
                    let cm = Mat {
                        ptr: c.as_mut_ptr(),
                        ..mat(&c)
                    };
                    let (alpha, beta) = (T::lit(1.5), T::lit(0.5));
                    // SAFETY: the shapes fit; `c` is owned here.
                    let b = if packed { b_transposed } else { b.view() };
                    unsafe {
                        blocked::gemm(ks, alpha, mat(&a), mat(&b.slice(s![.., ..n])), beta, cm)
                    };
                    c.mapv(|v| v.as_f64().to_bits())
                };
                let wide = product(40, false, false);
                for n in [1, lanes / 2 + 2, lanes, lanes + 2] {
                    for (column_major, packed) in [(false, false), (true, false), (false, true)] {
                        assert_eq!(
                            product(n, column_major, packed),
                            wide.slice(s![.., ..n]),
                            "{} {m}x{k}x{n} column-major {column_major} packed {packed}",
                            ks.name
                        );
                    }
                }
            }
        }
        for (k32, k64) in kernel_sets() {
            // Half a tile's columns: one vector of the AVX kernels.
            check(k32, k32.nr / 2);
            check(k64, k64.nr / 2);
        }
    }

    /// `c = a · b + bias` on every row of `c`, through `ks`'s tiles alone.
    ///
    /// # Safety
    /// The shapes fit: `a: m × k`, `b: k × n`, `c: m × n`, `n` biases.
    unsafe fn with_bias_row<T: Float>(
        ks: &Kernels<T>,
        a: &Array2<T>,
        b: &Array2<T>,
        bias: &[T],
        c: &mut Array2<T>,
    ) {
        let row = Mat::row(bias);
        let cm = Mat {
            ptr: c.as_mut_ptr(),
            ..mat(c)
        };
        let one = T::one();
        blocked::gemm_piece(ks, one, mat(a), mat(b), one, cm, false, Some(row));
    }

    /// A bias row in place of `c`, through every kernel set, row- and
    /// column-major `c` (NaN before: never read), one panel and several
    /// (`k` past `kc`), full and masked tails: `a · b + bias` on every row,
    /// exact in integers.
    #[test]
    fn every_kernel_adds_a_bias_row_in_place_of_c() {
        for (k32, k64) in kernel_sets() {
            for (m, k, n) in [(1, 1, 1), (13, 40, 33), (25, 300, 65), (7, 9, 100)] {
                let (a, b) = (ints(m, k, 1), ints(k, n, 2));
                let bias = ints(1, n, 4).row(0).to_owned();
                let want = naive(&a, &b) + &bias;
                for column_major in [false, true] {
                    let dims = if column_major { (n, m) } else { (m, n) };
                    let mut c = Array2::from_elem(dims, f64::NAN);
                    let mut c32 = Array2::from_elem(dims, f32::NAN);
                    if column_major {
                        c = c.reversed_axes();
                        c32 = c32.reversed_axes();
                    }
                    let (a32, b32, bias32) = (
                        a.mapv(|v| v as f32),
                        b.mapv(|v| v as f32),
                        bias.mapv(|v| v as f32),
                    );
                    // SAFETY: the operands are owned here and their shapes fit.
                    unsafe {
                        with_bias_row(k64, &a, &b, bias.as_slice().unwrap(), &mut c);
                        with_bias_row(k32, &a32, &b32, bias32.as_slice().unwrap(), &mut c32);
                    }
                    let what = format!("{} {m}x{k}x{n} column-major {column_major}", k64.name);
                    assert_eq!(c, want, "f64 {what}");
                    assert_eq!(c32.mapv(|v| v as f64), want, "f32 {what}");
                }
            }
        }
    }

    /// [`gemm_bias_raw`] gives the bits of the bias copied into every row
    /// and then added with `beta = 1`, on every path: split by rows, by
    /// columns, by the inner dimension, the dot kernel, and one core, each
    /// also driven in 0–3 parts whatever this machine's thread count; with
    /// no inner dimension, the bias alone.
    #[test]
    fn a_bias_row_gives_the_bits_of_its_copy() {
        let value = |i: usize| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 1.7;
        for (m, k, n) in [
            (128, 200, 96),
            (40, 300, 200),
            (20, 4000, 20),
            (6, 1100, 25),
            (3, 5, 7),
            // A 10-class layer at batch 16: partial tiles over packed
            // strips, a whole first vector and a masked second.
            (16, 64, 10),
            (16, 64, 26),
        ] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| value(i * k + j));
            // `Wᵀ` of a row-major `W`, as a dense layer reads it.
            let w = Array2::from_shape_fn((n, k), |(i, j)| value(3 * (i * k + j) + 1));
            let bias = ndarray::Array1::from_shape_fn(n, |j| value(5 * j + 2));
            let mut want = Array2::from_shape_fn((m, n), |(_, j)| bias[j]);
            gemm(1.0, &a, &w.t(), 1.0, &mut want);
            let mut got = Array2::from_elem((m, n), f32::NAN);
            unsafe { gemm_bias_raw(&a, &w.t(), bias.view(), got.raw_view_mut()) };
            assert_eq!(got, want, "{m}x{k}x{n}");
            // Every split, whatever this machine's thread count (0: whole),
            // against the copy split alike.
            let wt = w.t();
            let row = Mat::row(bias.as_slice().unwrap());
            let in_parts = |parts, mut c: Array2<f32>, row| {
                // SAFETY: `c` is owned here, shaped `m × n`; `row` holds `n` values.
                unsafe {
                    let cm = Mat {
                        ptr: c.as_mut_ptr(),
                        ..mat(&c)
                    };
                    let ks = f32::gemm_kernels();
                    split(ks, parts, 1.0, mat(&a), mat(&wt), (1.0, row), cm);
                }
                c
            };
            for parts in 0..4 {
                let copied = in_parts(parts, Array2::from_shape_fn((m, n), |(_, j)| bias[j]), None);
                let got = in_parts(parts, Array2::from_elem((m, n), f32::NAN), Some(row));
                assert_eq!(got, copied, "{m}x{k}x{n} in {parts} parts");
            }
        }
        // No inner dimension: the bias alone.
        let (a, b) = (Array2::<f32>::zeros((3, 0)), Array2::<f32>::zeros((0, 5)));
        let bias = ndarray::Array1::from_shape_fn(5, |j| j as f32 - 1.5);
        let mut got = Array2::from_elem((3, 5), f32::NAN);
        unsafe { gemm_bias_raw(&a, &b, bias.view(), got.raw_view_mut()) };
        assert_eq!(got, Array2::from_shape_fn((3, 5), |(_, j)| bias[j]));
    }

    #[test]
    #[should_panic(expected = "gemm: a bias of 3 values for an output of shape [2, 4]")]
    fn a_bias_of_the_wrong_length_is_refused() {
        let (a, b) = (Array2::<f32>::zeros((2, 5)), Array2::<f32>::zeros((5, 4)));
        let mut c = Array2::<f32>::zeros((2, 4));
        let bias = ndarray::Array1::<f32>::zeros(3);
        unsafe { gemm_bias_raw(&a, &b, bias.view(), c.raw_view_mut()) };
    }

    #[test]
    fn beta_zero_ignores_nan_and_alpha_zero_only_scales() {
        let (a, b) = (ints(13, 9, 0), ints(9, 35, 1));
        let mut c = Array2::from_elem((13, 35), f64::NAN);
        gemm(1.0, &a, &b, 0.0, &mut c);
        assert_eq!(c, naive(&a, &b));
        let mut c = Array2::from_elem((13, 35), 4.0);
        gemm(0.0, &a, &b, 0.5, &mut c);
        assert_eq!(c, Array2::from_elem((13, 35), 2.0));
    }

    /// Every kernel set, full and masked column tails (3 columns, and 10:
    /// a whole first vector), `b` read in place and packed (transposed),
    /// row- and column-major `c`: with `beta = 0` the NaN already in `c`
    /// never leaks.
    #[test]
    fn every_kernel_ignores_nan_in_c_when_beta_is_zero() {
        for (n, b_transposed) in [(35, false), (35, true), (26, false), (26, true)] {
            let (a, b) = (ints(13, 9, 0), ints(9, n, 1));
            let want = naive(&a, &b);
            let bt = b.t().to_owned();
            let b = if b_transposed { bt.t() } else { b.view() };
            let (a32, b32) = (a.mapv(|v| v as f32), b.mapv(|v| v as f32));
            let b32 = if b_transposed {
                b32.t().as_standard_layout().to_owned().reversed_axes()
            } else {
                b32
            };
            for (k32, k64) in kernel_sets() {
                for column_major in [false, true] {
                    // Column-major: a transposed standard array, reversed back.
                    let dims = if column_major { (n, 13) } else { (13, n) };
                    let mut c = Array2::from_elem(dims, f64::NAN);
                    let mut c32 = Array2::from_elem(dims, f32::NAN);
                    if column_major {
                        c = c.reversed_axes();
                        c32 = c32.reversed_axes();
                    }
                    unsafe {
                        let cm = Mat {
                            ptr: c.as_mut_ptr(),
                            ..mat(&c)
                        };
                        blocked::gemm(k64, 1.0, mat(&a), mat(&b), 0.0, cm);
                        let cm = Mat {
                            ptr: c32.as_mut_ptr(),
                            ..mat(&c32)
                        };
                        blocked::gemm(k32, 1.0, mat(&a32), mat(&b32), 0.0, cm);
                    }
                    let case = format!(
                        "{n} columns, b transposed {b_transposed}, column-major {column_major}"
                    );
                    assert_eq!(c, want, "{} f64, {case}", k64.name);
                    assert_eq!(c32.mapv(|v| v as f64), want, "{} f32, {case}", k32.name);
                }
            }
        }
    }

    /// `split` in `parts` parts of `c = alpha · a · b + beta · c` (f64 kernels).
    fn split_into(
        parts: usize,
        alpha: f64,
        a: &Array2<f64>,
        b: &Array2<f64>,
        beta: f64,
        c: &mut Array2<f64>,
    ) {
        let cm = Mat {
            ptr: c.as_mut_ptr(),
            ..mat(c)
        };
        // SAFETY: the shapes line up; `c` is borrowed mutably.
        unsafe {
            split(
                f64::gemm_kernels(),
                parts,
                alpha,
                mat(a),
                mat(b),
                (beta, None),
                cm,
            )
        }
    }

    /// With `beta = 0` the product writes every element of `c` on every
    /// branch of the split (rows: 48 columns are too few to split; columns;
    /// a long inner dimension), in one to three parts, and through
    /// `gemm_raw`: the NaN standing in for memory not yet initialized never
    /// shows.
    #[test]
    fn raw_products_write_every_element_when_beta_is_zero() {
        let shapes = [
            (512, 256, 48),
            (128, 784, 128),
            (20, 256, 1024),
            (8, 65536, 12),
            (13, 9, 35),
            (3, 0, 5),
        ];
        for (m, k, n) in shapes {
            let (a, b) = (ints(m, k, 0), ints(k, n, 1));
            let want = naive(&a, &b) * 2.0;
            let mut c = Array2::from_elem((m, n), f64::NAN);
            unsafe { gemm_raw(2.0, &a, &b, 0.0, c.raw_view_mut()) };
            assert_eq!(c, want, "{m}x{k}x{n}");
            // (`gemm` splits only products of 2²⁰ multiply-adds, never an
            // empty inner dimension.)
            for parts in [1, 2, 3].into_iter().filter(|_| k > 0) {
                let mut c = Array2::from_elem((m, n), f64::NAN);
                split_into(parts, 2.0, &a, &b, 0.0, &mut c);
                assert_eq!(c, want, "{m}x{k}x{n} in {parts} parts");
            }
        }
    }

    /// Two threads split a 128 × 128 output by columns (64 and 64, where
    /// rows would be 72 and 56 in tiles of 12), as `mlp_big`'s forward
    /// product `x · W₁ᵀ`, and `mlp_big`'s 512 × 784 weight gradient by rows
    /// (264 and 248, where columns would be 416 and 368 in tiles of 32).
    /// A 1024³ product goes by rows where its tiles alone tie (516 and 508
    /// rows against 512 and 512 columns, 516 · 1024 = 1032 · 512 tile
    /// multiply-adds per unit of `k`): a piece of columns would pack all of
    /// `a` (16 · 1024 against 16 · 516 for the rows, with `b` copied, 1024
    /// against 512). `mlp_big`'s forward `x · W₁ᵀ` goes by columns: its
    /// pieces pack all of `x` (16 · 128) and half of `W₁ᵀ` (16 · 256) beside
    /// 132 · 256 tile multiply-adds, against 16 · 72, 16 · 512 and 72 · 512
    /// by rows. A 1024 × k × 4096 product goes by columns: `a` is packed
    /// again for each 1024-wide panel of `b`, by either piece.
    /// (The choice reads only shapes, strides and tile sizes, so any CPU can
    /// check it.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_split_follows_the_larger_piece() {
        let ks = &avx512::F32;
        let mat = |rows, cols, rs, cs| Mat::<f32> {
            ptr: std::ptr::null_mut(),
            rows,
            cols,
            rs,
            cs,
        };
        let plain = |rows, cols| mat(rows, cols, cols as isize, 1);
        let transposed = |rows, cols| mat(rows, cols, 1, rows as isize);
        let by_rows = |a: Mat<f32>, b: Mat<f32>| rows_balance_better(ks, 2, &a, &b);
        assert!(!by_rows(plain(128, 128), plain(128, 128)));
        assert!(!by_rows(plain(128, 784), transposed(784, 512)));
        assert!(by_rows(transposed(512, 128), plain(128, 784)));
        assert!(by_rows(plain(1024, 1024), plain(1024, 1024)));
        assert!(!by_rows(plain(1024, 256), plain(256, 4096)));
    }

    #[test]
    fn every_split_gives_the_plain_product() {
        // Shapes above the threshold that take each branch: tall, wide, long inner.
        for (m, k, n) in [(512, 128, 80), (20, 256, 1024), (8, 65536, 12)] {
            let (a, b) = (ints(m, k, 0), ints(k, n, 1));
            let want = naive(&a, &b) * 2.0 + 0.5;
            for parts in [1, 2, 3] {
                let mut c = Array2::from_elem((m, n), 1.0);
                split_into(parts, 2.0, &a, &b, 0.5, &mut c);
                assert_eq!(c, want, "{m}x{k}x{n} in {parts} parts");
            }
        }
    }

    #[test]
    fn a_split_inner_dimension_gives_the_same_bits_on_any_number_of_threads() {
        // Values that round: the sum's order shows in the last bits.
        let (m, k, n) = (8, 65536, 12);
        let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 17) % 97) as f64 / 7.3);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 13 + j * 5) % 89) as f64 / 3.1);
        let product = |parts| {
            let mut c = Array2::from_elem((m, n), 1.0);
            unsafe {
                let cm = Mat {
                    ptr: c.as_mut_ptr(),
                    ..mat(&c)
                };
                split(
                    f64::gemm_kernels(),
                    parts,
                    1.0,
                    mat(&a),
                    mat(&b),
                    (0.0, None),
                    cm,
                );
            }
            c
        };
        let one = product(1);
        for parts in [2, 3, 8] {
            assert_eq!(product(parts), one, "{parts} threads");
        }
    }

    #[test]
    fn sub_views_write_only_their_block() {
        let (a, b) = (ints(20, 30, 0), ints(30, 40, 1));
        let mut big = Array2::from_elem((30, 50), 7.0);
        gemm(1.0, &a, &b, 0.0, &mut big.slice_mut(s![5..25, 3..43]));
        assert_eq!(big.slice(s![5..25, 3..43]), naive(&a, &b));
        big.slice_mut(s![5..25, 3..43]).fill(7.0);
        assert!(big.iter().all(|&v| v == 7.0));
    }

    #[test]
    #[should_panic(expected = "gemm: shapes [2, 3] @ [4, 5]")]
    fn misaligned_shapes_panic_with_both() {
        let mut c = Array2::<f32>::zeros((2, 5));
        gemm(
            1.0,
            &Array2::zeros((2, 3)),
            &Array2::zeros((4, 5)),
            0.0,
            &mut c,
        );
    }
}
