//! The weight gradient of a 3 × 3 or 5 × 5 convolution on AVX2 with output
//! channels in the lanes, as AVX-512's `weight_grad_lanes` with vectors of
//! 8 channels: each sample's output gradient transposed to `[position,
//! channel]`, and every position adding its gradient vector times each
//! tap's input value, broadcast, to that tap's accumulator. 16 channels
//! (two vectors) go at a time in passes over the positions of at most 5
//! taps (10 accumulators, two gradient vectors and a broadcast: 3 × 3 as 5
//! and 4 taps, 5 × 5 as five of 5), so that each broadcast feeds two
//! multiply-adds: on a Zen 3 EPYC, one core, 15 % faster than the nine taps
//! of 8 channels in one pass (11 registers) for 16 channels at 14 × 14,
//! 10–16 % for LeNet-5's second layer against two passes of 13 and 12
//! taps (15 and 14 registers). A last 8 channels (of 8 or 24, say) take
//! those 8-channel passes. One chain per weight over the samples, rows and
//! columns in order, as `weight_grad_lanes` sums (keep the two in step):
//! its bits, where AVX-512 takes that layout too (`channel_lanes` measures
//! the fill against 16 lanes, this against 8).

use crate::kernels::array::array;
use std::arch::x86_64::*;

use super::super::Geometry;

impl Geometry {
    /// Whether the AVX2 weight gradient puts output channels in the lanes: a
    /// 3 × 3 or 5 × 5 kernel whose output channels fill vectors of 8 at
    /// least as well as the output rows do.
    pub(super) fn channel_lanes_avx2(&self) -> bool {
        self.kw == self.kh && matches!(self.kh, 3 | 5) && self.channels_fill(8, 8)
    }

    /// [`Geometry::weight_grad`] on AVX2 with output channels in the lanes
    /// (see the module). `scratch` holds one sample's transposed output
    /// gradient, then a vector of partial sums per tap and 8 channels, kept
    /// there between samples.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the buffers fit the geometry (as
    /// [`Geometry::weight_grad`] asserts); the kernel is 3 × 3 or 5 × 5.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_grad_lanes_avx2(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
        scratch: &mut Vec<f32>,
    ) {
        // Another kernel size would read past the staged planes.
        assert!(
            self.kw == self.kh && matches!(self.kh, 3 | 5),
            "conv2d (direct, AVX2): channels in the lanes need a 3 × 3 or 5 × 5 kernel, got {self:?}"
        );
        let (plane, taps) = (self.oh * self.ow, self.taps());
        let wide = self.oc.next_multiple_of(8);
        if scratch.len() < (plane + taps) * wide {
            scratch.resize((plane + taps) * wide, 0.0);
        }
        let (dyt, partial) = scratch.split_at_mut(plane * wide);
        let partial = &mut partial[..taps * wide];
        partial.fill(0.0);
        // Channels past the last stay zero for every sample.
        dyt.fill(0.0);
        let (dyt, partial) = (dyt.as_mut_ptr(), partial.as_mut_ptr());
        for s in 0..samples {
            let g = dy.add(s * self.oc * plane);
            for o in 0..self.oc {
                for p in 0..plane {
                    *dyt.add(p * wide + o) = *g.add(o * plane + p);
                }
            }
            let x = staged.add(s * self.staged_len());
            let mut o0 = 0;
            while o0 < wide {
                // Passes of 16 channels, else of 8 (see the module).
                let two = wide - o0 >= 16;
                for ci in 0..self.c {
                    let sums = partial.add(ci * self.kh * self.kw * wide + o0);
                    let grads = dyt.add(o0);
                    if two && self.kh == 3 {
                        self.taps_pass::<3, 0, 5, 2>(x, ci, grads, wide, sums);
                        self.taps_pass::<3, 5, 4, 2>(x, ci, grads, wide, sums);
                    } else if two {
                        self.taps_pass::<5, 0, 5, 2>(x, ci, grads, wide, sums);
                        self.taps_pass::<5, 5, 5, 2>(x, ci, grads, wide, sums);
                        self.taps_pass::<5, 10, 5, 2>(x, ci, grads, wide, sums);
                        self.taps_pass::<5, 15, 5, 2>(x, ci, grads, wide, sums);
                        self.taps_pass::<5, 20, 5, 2>(x, ci, grads, wide, sums);
                    } else if self.kh == 3 {
                        self.taps_pass::<3, 0, 9, 1>(x, ci, grads, wide, sums);
                    } else {
                        self.taps_pass::<5, 0, 13, 1>(x, ci, grads, wide, sums);
                        self.taps_pass::<5, 13, 12, 1>(x, ci, grads, wide, sums);
                    }
                }
                o0 += if two { 16 } else { 8 };
            }
        }
        for o in 0..self.oc {
            for t in 0..taps {
                *dw.add(o * taps + t) += *partial.add(t * wide + o);
            }
        }
    }

    /// Taps `T0..T0 + N` of a `K × K` kernel (tap `t` at row `t / K`,
    /// column `t % K`) for input channel `ci` of one sample's staged planes
    /// `x` and `8 · OV` output channels: their partial sums (`wide` apart
    /// from `sums`) loaded, every position's gradient vectors (`wide` apart
    /// from `grads`) times the tap's input value added in order, and stored.
    ///
    /// # Safety
    /// As [`Geometry::weight_grad_lanes_avx2`], with this geometry's kernel
    /// `K × K`, `T0 + N ≤ K · K` and `8 · OV` channels from `grads`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn taps_pass<const K: usize, const T0: usize, const N: usize, const OV: usize>(
        &self,
        x: *const f32,
        ci: usize,
        grads: *const f32,
        wide: usize,
        sums: *mut f32,
    ) {
        let (hp, wp) = self.staged_hw();
        let mut acc: [[__m256; OV]; N] =
            array(|i| array(|v| _mm256_loadu_ps(sums.add((T0 + i) * wide + 8 * v))));
        for oy in 0..self.oh {
            let rows: [*const f32; K] = array(|ky| x.add((ci * hp + oy + ky) * wp));
            let grads = grads.add(oy * self.ow * wide);
            for ox in 0..self.ow {
                let d: [__m256; OV] = array(|v| _mm256_loadu_ps(grads.add(ox * wide + 8 * v)));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let t = T0 + i;
                    let xv = _mm256_set1_ps(*rows[t / K].add(ox + t % K));
                    for (acc, &d) in acc.iter_mut().zip(&d) {
                        *acc = _mm256_fmadd_ps(d, xv, *acc);
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(sums.add((T0 + i) * wide + 8 * v), acc);
            }
        }
    }
}
