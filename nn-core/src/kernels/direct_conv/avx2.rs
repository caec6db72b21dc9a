//! The direct kernels on AVX2 + FMA: output rows in the lanes, eight to a
//! vector, for the forward (and so the input gradient) and the weight
//! gradient. They follow the AVX-512 row kernels (`forward_rows`,
//! `weight_grad_rows`) with blocks sized for 16 vector registers instead
//! of 32; the forward adds the bias and the taps in the same order, so it
//! gives the AVX-512 kernels' bits (see `Geometry::live_kernel_rows` for
//! the kernel rows it skips). For 3 × 3 and 5 × 5 kernels both passes also
//! have the channels-in-lanes layout (`avx2/forward_lanes.rs`,
//! `avx2/weight_lanes.rs`).

use crate::kernels::array::array;
use crate::kernels::masks::first_of_8;
use std::arch::x86_64::*;

use super::forward::positions_5x5_avx2;
use super::Geometry;

mod forward_lanes;
mod weight_lanes;

/// The masks (all bits set = on) of the lanes of a row of `width` values,
/// per vector of 8 (`row_masks` of `mod.rs` is AVX-512's, 16 lanes).
#[target_feature(enable = "avx2")]
fn row_masks8(width: usize) -> [__m256i; 4] {
    array(|v| first_of_8(width.saturating_sub(8 * v)))
}

/// A vector of a row at `at`: a plain load, but for the row's `last`,
/// whose lanes past the row (off in `mask`) are read as zeros. (A masked
/// load costs a second instruction on AVX2, where AVX-512's is one.)
///
/// # Safety
/// The CPU has AVX; the lanes on in `mask`, or all eight but in the last
/// vector, are readable at `at`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn row_vector(at: *const f32, last: bool, mask: __m256i) -> __m256 {
    if last {
        _mm256_maskload_ps(at, mask)
    } else {
        _mm256_loadu_ps(at)
    }
}

/// `max(a, 0)` in each lane as plain `relu` gives it (NaN and -0.0 kept:
/// they compare false).
#[target_feature(enable = "avx2")]
fn relu8(a: __m256) -> __m256 {
    let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_setzero_ps());
    _mm256_blendv_ps(a, _mm256_setzero_ps(), negative)
}

impl Geometry {
    /// [`Geometry::stage`] for the AVX2 kernels: each staged row zeroed, the
    /// input's row copied over it. (A library fill and copy per row, which
    /// AVX-512's masked stores replaced; here staging is under 1 % of
    /// `convnet`'s profile.)
    ///
    /// # Safety
    /// `x` holds `c · h · w` values and `staged` `staged_len()`; the input
    /// fits in the staged plane.
    pub(super) unsafe fn stage_rows_avx2(&self, x: *const f32, staged: *mut f32) {
        let (hp, wp) = self.staged_hw();
        for ci in 0..self.c {
            for sy in 0..hp {
                let out = staged.add((ci * hp + sy) * wp);
                std::ptr::write_bytes(out, 0, wp);
                let iy = sy.wrapping_sub(self.top);
                if iy < self.h {
                    let src = x.add((ci * self.h + iy) * self.w);
                    std::ptr::copy_nonoverlapping(src, out.add(self.left), self.w);
                }
            }
        }
    }

    /// [`Geometry::forward`] on AVX2, output rows in the lanes: blocks of
    /// `OB` output channels by `RB` rows, `NV` vectors of 8 per row (their
    /// accumulators, `OB` broadcast weights and a row: at most 16
    /// registers), for a `K × K` kernel (its taps' loops unrolled), or any
    /// kernel with `K = 0`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the buffers fit the geometry (as
    /// [`Geometry::forward`] asserts); `NV == ow.div_ceil(8)`: all but a
    /// row's last vector are loaded whole, and stored whole (the last too
    /// where it stays inside the plane).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_rows_avx2<
        const OB: usize,
        const RB: usize,
        const NV: usize,
        const K: usize,
    >(
        &self,
        staged: *const f32,
        w: *const f32,
        bias: *const f32,
        relu: bool,
        y: *mut f32,
    ) {
        debug_assert_eq!(
            NV,
            self.ow.div_ceil(8),
            "conv2d (direct, AVX2): vectors per row"
        );
        let (kh, kw) = if K == 0 { (self.kh, self.kw) } else { (K, K) };
        let (hp, wp) = self.staged_hw();
        let (taps, masks) = (self.taps(), row_masks8(self.ow));
        for o0 in (0..self.oc).step_by(OB) {
            // A block past the last channel or row repeats the last one
            // (computed, not stored), so every block runs at full size.
            let outs: [usize; OB] = array(|j| (o0 + j).min(self.oc - 1));
            for r0 in (0..self.oh).step_by(RB) {
                let rows: [usize; RB] = array(|r| (r0 + r).min(self.oh - 1));
                let mut acc = [[[_mm256_setzero_ps(); NV]; RB]; OB];
                if !bias.is_null() {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = [[_mm256_set1_ps(*bias.add(outs[j])); NV]; RB];
                    }
                }
                let live = self.live_kernel_rows(rows[0], rows[RB - 1], kh);
                for ci in 0..self.c {
                    for ky in 0..kh {
                        if !live.contains(&ky) {
                            continue;
                        }
                        for kx in 0..kw {
                            let k = (ci * kh + ky) * kw + kx;
                            let wk: [__m256; OB] =
                                array(|j| _mm256_set1_ps(*w.add(outs[j] * taps + k)));
                            for r in 0..RB {
                                let src = staged.add((ci * hp + rows[r] + ky) * wp + kx);
                                for v in 0..NV {
                                    let x = row_vector(src.add(8 * v), v + 1 == NV, masks[v]);
                                    for j in 0..OB {
                                        acc[j][r][v] = _mm256_fmadd_ps(wk[j], x, acc[j][r][v]);
                                    }
                                }
                            }
                        }
                    }
                }
                for (j, acc) in acc.iter().enumerate().take(self.oc - o0) {
                    for (r, acc) in acc.iter().enumerate().take(self.oh - r0) {
                        let out = y.add(((o0 + j) * self.oh + r0 + r) * self.ow);
                        // A row's last vector is stored whole where that
                        // stays inside the plane: its lanes past the row
                        // fall on the next rows, which are stored later.
                        // Masked stores are microcoded on AMD's Zen.
                        let whole = (r0 + r) * self.ow + 8 * NV <= self.oh * self.ow;
                        for (v, &a) in acc.iter().enumerate() {
                            let a = if relu { relu8(a) } else { a };
                            if v + 1 < NV || whole {
                                _mm256_storeu_ps(out.add(8 * v), a);
                            } else {
                                _mm256_maskstore_ps(out.add(8 * v), masks[v], a);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 forward: output channels in the lanes where
    /// [`Geometry::forward_lane_width`] says so, else
    /// [`Geometry::forward_rows_avx2`] with blocks for this geometry.
    ///
    /// # Safety
    /// As [`Geometry::forward_rows_avx2`], whatever the width; `w` as
    /// [`Geometry::forward_weights`] lays it out.
    pub(super) unsafe fn forward_avx2(
        &self,
        staged: *const f32,
        w: *const f32,
        bias: *const f32,
        relu: bool,
        y: *mut f32,
    ) {
        let k3 = (self.kh, self.kw) == (3, 3);
        // Channels in the lanes: 6 positions by two vectors of channels (12
        // accumulators, two weight vectors and a broadcast), or 8 by one; a
        // 5 × 5 kernel 5 positions of a row by two vectors (see
        // `forward_lanes_avx2`).
        let (s, b) = (staged, bias);
        match (k3, self.forward_lane_width()) {
            (true, Some(16)) => return self.forward_lanes_avx2::<3, 6, 2>(s, w, b, relu, y),
            (true, Some(8)) => return self.forward_lanes_avx2::<3, 8, 1>(s, w, b, relu, y),
            (false, Some(16)) => {
                const PB: usize = positions_5x5_avx2(16);
                return self.forward_lanes_avx2::<5, PB, 2>(s, w, b, relu, y);
            }
            (false, Some(8)) => {
                const PB: usize = positions_5x5_avx2(8);
                return self.forward_lanes_avx2::<5, PB, 1>(s, w, b, relu, y);
            }
            (_, Some(block)) => unreachable!("conv2d (direct, AVX2): blocks of {block} channels"),
            (_, None) => {}
        }
        macro_rules! run {
            ($ob:literal, $rb:literal, $nv:literal) => {
                if k3 {
                    self.forward_rows_avx2::<$ob, $rb, $nv, 3>(staged, w, bias, relu, y)
                } else if (self.kh, self.kw) == (5, 5) {
                    self.forward_rows_avx2::<$ob, $rb, $nv, 5>(staged, w, bias, relu, y)
                } else {
                    self.forward_rows_avx2::<$ob, $rb, $nv, 0>(staged, w, bias, relu, y)
                }
            };
        }
        // Eight or nine accumulators; twelve (3 channels by 2 rows, 2 by 3,
        // 6 by 1) ran slower on 14-wide rows (`convnet` on AVX2). Channels
        // that blocks of 4 do not divide go 2 by 2 rows: LeNet-5's input
        // gradient into 6 channels of 14 × 14 computed 8 channels by 1 row,
        // 23-24 GFLOP/s against 33-44 so (one core of the Zen 3 EPYC,
        // alternating runs, both with the taps unrolled).
        match self.ow.div_ceil(8) {
            1 => run!(4, 2, 1),
            2 if !self.oc.is_multiple_of(4) => run!(2, 2, 2),
            2 => run!(4, 1, 2),
            3 => run!(3, 1, 3),
            _ => run!(2, 1, 4),
        }
    }

    /// [`Geometry::weight_grad`] on AVX2, output rows in the lanes: blocks of
    /// `OB` output channels by `TB` taps, `NV` vectors of 8 per row, reduced
    /// across the lanes at the end.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the buffers fit the geometry (as
    /// [`Geometry::weight_grad`] asserts); `NV == ow.div_ceil(8)`: all but a
    /// row's last vector are loaded whole.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_grad_rows_avx2<
        const OB: usize,
        const TB: usize,
        const NV: usize,
    >(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
    ) {
        debug_assert_eq!(
            NV,
            self.ow.div_ceil(8),
            "conv2d (direct, AVX2): vectors per row"
        );
        let (hp, wp) = self.staged_hw();
        let (taps, masks) = (self.taps(), row_masks8(self.ow));
        let (per_sample, out_plane) = (self.staged_len(), self.oh * self.ow);
        for o0 in (0..self.oc).step_by(OB) {
            let outs: [usize; OB] = array(|j| (o0 + j).min(self.oc - 1));
            for k0 in (0..taps).step_by(TB) {
                // Where each tap reads in a staged sample, relative to the
                // output row (past the last tap: the last one again).
                let reads: [usize; TB] = array(|t| {
                    let k = (k0 + t).min(taps - 1);
                    let (ci, ky, kx) =
                        (k / (self.kh * self.kw), k / self.kw % self.kh, k % self.kw);
                    (ci * hp + ky) * wp + kx
                });
                let mut acc = [[[_mm256_setzero_ps(); NV]; TB]; OB];
                for s in 0..samples {
                    let (x, g) = (staged.add(s * per_sample), dy.add(s * self.oc * out_plane));
                    for oy in 0..self.oh {
                        // A row's last vector masked on both sides: lanes
                        // past the row are zeros, never 0 · ∞.
                        let grads: [[__m256; NV]; OB] = array(|j| {
                            array(|v| {
                                let at = g.add(outs[j] * out_plane + oy * self.ow + 8 * v);
                                row_vector(at, v + 1 == NV, masks[v])
                            })
                        });
                        for t in 0..TB {
                            let src = x.add(reads[t] + oy * wp);
                            for v in 0..NV {
                                let xv = row_vector(src.add(8 * v), v + 1 == NV, masks[v]);
                                for j in 0..OB {
                                    acc[j][t][v] = _mm256_fmadd_ps(grads[j][v], xv, acc[j][t][v]);
                                }
                            }
                        }
                    }
                }
                for (j, acc) in acc.iter().enumerate().take(self.oc - o0) {
                    for (t, acc) in acc.iter().enumerate().take(taps - k0) {
                        let sum = acc[1..].iter().fold(acc[0], |s, &a| _mm256_add_ps(s, a));
                        let mut lanes = [0f32; 8];
                        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
                        // Pairwise, as a vector reduction would.
                        let quads: [f32; 4] = array(|i| lanes[i] + lanes[i + 4]);
                        let total = (quads[0] + quads[2]) + (quads[1] + quads[3]);
                        *dw.add((o0 + j) * taps + k0 + t) += total;
                    }
                }
            }
        }
    }

    /// The AVX2 weight gradient: output channels in the lanes where
    /// [`Geometry::channel_lanes_avx2`] says so, else
    /// [`Geometry::weight_grad_rows_avx2`] with blocks for this geometry.
    ///
    /// # Safety
    /// As [`Geometry::weight_grad_rows_avx2`], whatever the width.
    pub(super) unsafe fn weight_grad_avx2(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
        scratch: &mut Vec<f32>,
    ) {
        if self.channel_lanes_avx2() {
            self.weight_grad_lanes_avx2(samples, staged, dy, dw, scratch)
        } else {
            self.weight_grad_rows_by_width(samples, staged, dy, dw)
        }
    }

    /// [`Geometry::weight_grad_rows_avx2`] with the blocks for this width.
    ///
    /// # Safety
    /// As [`Geometry::weight_grad_rows_avx2`], whatever the width.
    pub(super) unsafe fn weight_grad_rows_by_width(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
    ) {
        // Accumulators, a row of gradients per channel and one input row
        // make 11, 17, 13 and 17 registers: one spilled beat fewer
        // accumulators (rows of two vectors, 2 channels by 3 taps against 2
        // by 2 and 1 by 4 to 6: `convnet` on AVX2 8.3–8.4 s an epoch
        // against 8.6–9.1, alternating runs; of four, 3 taps against 2:
        // `cnn` 2.01–2.06 s against 2.04–2.09).
        match self.ow.div_ceil(8) {
            1 => self.weight_grad_rows_avx2::<2, 4, 1>(samples, staged, dy, dw),
            2 => self.weight_grad_rows_avx2::<2, 3, 2>(samples, staged, dy, dw),
            3 => self.weight_grad_rows_avx2::<1, 3, 3>(samples, staged, dy, dw),
            _ => self.weight_grad_rows_avx2::<1, 3, 4>(samples, staged, dy, dw),
        }
    }
}

#[cfg(test)]
mod tests;
