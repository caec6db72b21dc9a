//! The forward of a 3 × 3 or 5 × 5 convolution (and of its input gradient)
//! on AVX2 with output channels in the lanes, where
//! [`Geometry::forward_lane_width`] says so: a block of output
//! positions, each one or two vectors of 8 channels, adds each tap's
//! weights (transposed once per batch to `[tap, channel]`) times the tap's
//! input value, broadcast from the staged plane; the block is transposed in
//! registers and each channel's positions stored at once. A 3 × 3 kernel's
//! blocks are positions consecutive in row-major order across row ends, so
//! any row width fills them (unlike AVX-512's `forward_lanes`, whose blocks
//! are whole rows of 7, 8 or 10: LeNet-5's 10-wide rows filled 10 of 16
//! lanes in the rows layout, a 3-wide map of a deep layer would fill 3 of
//! 8). A 5 × 5 kernel's blocks lie within a row, which must hold one. It
//! adds the bias and then the taps in the rows kernels' order: their bits
//! (but as `Geometry::live_kernel_rows` says).

use std::arch::x86_64::*;

use super::super::Geometry;
use super::relu8;
use crate::kernels::array::array;
use crate::kernels::barrier::loads_after;
use crate::kernels::masks::first_of_8;
use crate::kernels::transpose::transpose8;

impl Geometry {
    /// [`Geometry::forward`] on AVX2 with output channels in the lanes (see
    /// the module), for a `K × K` kernel, in blocks of `PB` positions by
    /// `OV` vectors of 8 channels; `w` is `[taps, channels padded to
    /// 8 · OV]`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the buffers fit the geometry (as
    /// [`Geometry::forward`] asserts), `w` as
    /// [`Geometry::forward_weights`] lays it out; the kernel is `K × K`;
    /// `PB ≤ 8`; for `K = 5`, rows hold a block: `ow ≥ PB` (asserted).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_lanes_avx2<const K: usize, const PB: usize, const OV: usize>(
        &self,
        staged: *const f32,
        w: *const f32,
        bias: *const f32,
        relu: bool,
        y: *mut f32,
    ) {
        debug_assert_eq!((self.kh, self.kw), (K, K), "conv2d (direct, AVX2)");
        let (hp, wp) = self.staged_hw();
        let (wide, plane) = (self.oc.next_multiple_of(8 * OV), self.oh * self.ow);
        for o0 in (0..wide).step_by(8 * OV) {
            let start: [__m256; OV] = array(|v| {
                let channel = o0 + 8 * v;
                if bias.is_null() || channel >= self.oc {
                    _mm256_setzero_ps()
                } else {
                    _mm256_maskload_ps(bias.add(channel), first_of_8(self.oc - channel))
                }
            });
            // 5 × 5 kernels take their blocks within a row (a row's last
            // block moved back to end at the row's end, its first positions
            // computed twice, the same bits): one pointer then addresses the
            // block's inputs. Across row ends, each position's own offset
            // took registers the 5 × 5 taps needed: their accumulators
            // spilled (LeNet-5's second layer at 33 GFLOP/s on one core of
            // the Zen 3 EPYC against 58 with in-row blocks and the barrier
            // below). 3 × 3 kernels, whose unrolled taps keep their
            // registers, fill every block across row ends.
            let in_rows = K == 5;
            assert!(
                !in_rows || self.ow >= PB,
                "conv2d (direct, AVX2): rows of {} hold no block of {PB}",
                self.ow
            );
            let mut next = 0;
            while next < plane {
                let p0 = if in_rows {
                    let x = next % self.ow;
                    next - x + x.min(self.ow - PB)
                } else {
                    next
                };
                next = p0 + PB;
                // A position past the last is the last again (computed, not
                // stored), so every block runs at full size.
                // Each position's offset in a staged plane.
                let offsets: [usize; PB] = array(|p| {
                    let q = (p0 + p).min(plane - 1);
                    q / self.ow * wp + q % self.ow
                });
                let rows = (p0 / self.ow, (p0 + PB - 1).min(plane - 1) / self.ow);
                let live = self.live_kernel_rows(rows.0, rows.1, K);
                let mut acc = [start; PB];
                // `$at(p)`: where position `p` of the block reads, relative
                // to a tap's place in the staged plane.
                macro_rules! taps {
                    ($at:expr) => {
                        for ci in 0..self.c {
                            let plane_in = staged.add(ci * hp * wp);
                            // A skip inside `0..K`, not a loop over `live..end`:
                            // the loops over the taps stay unrolled.
                            for ky in 0..K {
                                if !live.contains(&ky) {
                                    continue;
                                }
                                for kx in 0..K {
                                    // One tap's loads after the previous
                                    // tap's multiply-adds (see `loads_after`).
                                    loads_after();
                                    let from = w.add(((ci * K + ky) * K + kx) * wide + o0);
                                    let wv: [__m256; OV] =
                                        array(|v| _mm256_loadu_ps(from.add(8 * v)));
                                    let tap = plane_in.add(ky * wp + kx);
                                    for (p, acc) in acc.iter_mut().enumerate() {
                                        let xv = _mm256_set1_ps(*tap.add($at(p)));
                                        for (acc, &wv) in acc.iter_mut().zip(&wv) {
                                            *acc = _mm256_fmadd_ps(wv, xv, *acc);
                                        }
                                    }
                                }
                            }
                        }
                    };
                }
                if in_rows {
                    let base = offsets[0];
                    taps!(|p: usize| base + p);
                } else {
                    taps!(|p: usize| offsets[p]);
                }
                // Per vector of channels, its positions (lanes past `PB`
                // unused), then by the transpose each channel's positions.
                let blocks: [[__m256; 8]; OV] = array(|v| {
                    array(|p| {
                        let a = acc[p.min(PB - 1)][v];
                        if relu {
                            relu8(a)
                        } else {
                            a
                        }
                    })
                });
                let stored = first_of_8((plane - p0).min(PB));
                // Where 8 positions fit the plane, all 8 lanes are stored:
                // those past `PB` are the next block's positions, which it
                // stores later. Masked stores are microcoded on AMD's Zen
                // (one per channel was a third of this kernel's time on a
                // Zen 3 EPYC), plain ones cost the same everywhere.
                let whole = p0 + 8 <= plane;
                for (v, block) in blocks.into_iter().enumerate() {
                    let channels = (o0 + 8 * v..self.oc).take(8);
                    for (values, o) in transpose8(block).into_iter().zip(channels) {
                        let out = y.add(o * plane + p0);
                        if whole {
                            _mm256_storeu_ps(out, values);
                        } else {
                            _mm256_maskstore_ps(out, stored, values);
                        }
                    }
                }
            }
        }
    }
}
