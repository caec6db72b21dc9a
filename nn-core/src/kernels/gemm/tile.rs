//! The micro-kernel interface: one call computes a `rows × cols` tile of
//! `c = alpha · a · b + beta · src` from a packed strip of `a` and `k` rows
//! of `b`, where `src` is `c` itself or a row repeated down the tile.

/// Arguments of one tile call. Element `(i, p)` of the strip of `a` is at
/// `a + i · a_rs + p · a_cs` (a packed strip: `a_rs = 1`, `a_cs = rows`); `b`
/// holds `k` rows of up to `nr` contiguous values, `ldb` elements apart (the
/// packed panel, or `b` itself when its rows are contiguous).
pub struct TileArgs<T> {
    pub k: usize,
    pub a: *const T,
    pub a_rs: isize,
    pub a_cs: isize,
    pub b: *const T,
    pub ldb: isize,
    /// Whether each row of `b` holds `nr` readable values, zeros past
    /// `cols` (a packed strip): a tile with fewer valid columns may then
    /// load the rows whole, as a full tile does.
    pub b_whole: bool,
    pub c: *mut T,
    pub rsc: isize,
    pub csc: isize,
    /// Where `beta · c` reads `c`: `c` itself (`src_rs = rsc`, `src_cs =
    /// csc`), or a row repeated down the tile (`src_rs = 0`, `src_cs = 1`: a
    /// dense layer's bias, added without being copied into `c` first). Its
    /// columns are contiguous wherever `csc = 1`.
    pub src: *const T,
    pub src_rs: isize,
    pub src_cs: isize,
    /// Valid columns, `1..=nr`; the rest of the tile of `c` is neither read
    /// nor written.
    pub cols: usize,
    pub alpha: T,
    /// `0` means `c` is overwritten without being read (it may hold NaN).
    pub beta: T,
}

impl<T> TileArgs<T> {
    /// Starts fetching the first `rows` rows of the tile of `c`, which the
    /// kernel reads and writes only after its loop over `k`: that loop then
    /// hides the latency. (A large product's output lies beyond the caches
    /// and is revisited only once per `kc`-deep panel.)
    #[inline(always)]
    pub fn prefetch_c(&self, rows: usize) {
        #[cfg(target_arch = "x86_64")]
        for i in 0..rows {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let first = self.c.wrapping_offset(i as isize * self.rsc);
            let last = first.wrapping_offset((self.cols - 1) as isize * self.csc);
            // SAFETY: a prefetch never faults and reads nothing into the
            // program; SSE is in every x86_64 CPU.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(first.cast());
                _mm_prefetch::<_MM_HINT_T0>(last.cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = rows;
    }
}

impl<T: crate::Float> TileArgs<T> {
    /// Writes a tile (alpha already applied) into a `c` whose columns are
    /// not contiguous, element by element: `c = beta · c + v`, only the valid
    /// columns.
    ///
    /// # Safety
    /// `self` describes valid memory (see [`TileArgs`]).
    #[inline(always)]
    pub unsafe fn write_strided<const W: usize>(&self, tile: &[[T; W]]) {
        for (i, row) in tile.iter().enumerate() {
            for (j, &v) in row.iter().enumerate().take(self.cols) {
                let c = self.c.offset(i as isize * self.rsc + j as isize * self.csc);
                let src = self
                    .src
                    .offset(i as isize * self.src_rs + j as isize * self.src_cs);
                // One rounding, as the vector write-back's fused multiply-add.
                *c = if self.beta == T::zero() {
                    v
                } else {
                    self.beta.mul_add(*src, v)
                };
            }
        }
    }
}

/// A micro-kernel for a fixed number of rows.
pub type TileFn<T> = unsafe fn(&TileArgs<T>);

/// Packs one strip of an operand into the tiles' layout: for
/// [`Kernels::pack_columns`], at most `nr` columns (zero-padded to `nr`) of a
/// `b` whose columns are contiguous (`rs = 1`, a transposed operand such as a
/// dense layer's `Wᵀ`); for [`Kernels::pack_rows`], `mr` rows of an `a` whose
/// rows are contiguous. Both are transposes.
pub type PackFn<T> = unsafe fn(super::blocked::Mat<T>, *mut T);

/// The order of the tiles of one block of `a` by one panel of `b`:
/// which operand's strip stays in L1 while the tiles sweep the other's
/// (every tile sums the same way in either order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// A strip of `b` (`kc × nr`) stays; the tiles walk down the block of
    /// `a` (in L2), and down `c`, a row of `c` per page in a large product.
    RowsOfA,
    /// A strip of `a` (`mr × kc`) stays; the tiles walk along the panel of
    /// `b` (in L2), and along the same rows of `c`. For kernels whose strip
    /// of `b` would fill most of L1 (AVX-512's `f32`: 32 KiB of a core's
    /// 48): on the Intel Xeon of the README's tables, one core, 2048³ ran
    /// at 176–183 GFLOP/s this way against 159–165, 1024³ at 177–192
    /// against 160–177, and its `f64` 2048³ at 74–78 against 67–75
    /// (alternating runs, 2026-12-05). AVX2's `f32` tiles, whose strip of
    /// `b` is 16 KiB, ran 5–10 % slower this way.
    ColumnsOfB,
}

/// One instruction set's micro-kernels and the block sizes that suit them.
#[doc(hidden)]
pub struct Kernels<T: 'static> {
    pub name: &'static str,
    /// Rows of a full tile; `tiles[r - 1]` computes `r` rows, for `r` in `1..=mr`.
    pub mr: usize,
    /// Columns of a full tile.
    pub nr: usize,
    /// Depth of one packed panel (chosen so a `kc × nr` strip of `b` fits in
    /// L1; a `mr × kc` strip of `a` is smaller).
    pub kc: usize,
    /// Rows of `a` packed at once (with [`Sweep::RowsOfA`], the block the
    /// tiles walk down, in L2).
    pub mc: usize,
    /// Columns of `b` packed at once (with [`Sweep::ColumnsOfB`], the
    /// `kc × nc` panel the tiles walk along, in L2: 1 MiB for AVX-512's
    /// sets, half of the Intel Xeon's L2; on CPUs with 1 MiB of L2, such
    /// as AMD's Zen 4, it would not stay there, which is not measured).
    pub nc: usize,
    /// Which strip stays in L1 while the tiles sweep the other operand.
    pub sweep: Sweep,
    /// Whether the tiles can read `b` in place when its rows are contiguous
    /// (masked loads never touch memory past `cols`).
    pub direct_b: bool,
    pub tiles: &'static [TileFn<T>],
    /// A vectorized [`PackFn`], if this instruction set has one.
    pub pack_columns: Option<PackFn<T>>,
    /// Packs a full strip (`mr` rows) of an `a` whose rows are contiguous,
    /// vectorized, if this instruction set has a way to.
    pub pack_rows: Option<PackFn<T>>,
}

/// Instantiates a micro-kernel for each row count `1..=12`.
macro_rules! tiles_1_to_12 {
    ($f:ident) => {
        &[
            $f::<1>, $f::<2>, $f::<3>, $f::<4>, $f::<5>, $f::<6>, $f::<7>, $f::<8>, $f::<9>,
            $f::<10>, $f::<11>, $f::<12>,
        ]
    };
}
pub(super) use tiles_1_to_12;

/// Instantiates a micro-kernel for each row count `1..=6`.
macro_rules! tiles_1_to_6 {
    ($f:ident) => {
        &[$f::<1>, $f::<2>, $f::<3>, $f::<4>, $f::<5>, $f::<6>]
    };
}
pub(super) use tiles_1_to_6;
