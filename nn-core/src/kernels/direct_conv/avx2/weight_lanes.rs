//! The weight gradient of a 3 × 3 convolution on AVX2 with output channels
//! in the lanes, as AVX-512's `weight_grad_lanes` with vectors of 8
//! channels: each sample's output gradient transposed to `[position,
//! channel]`, and every position adding its gradient vector times each
//! tap's input value, broadcast, to that tap's accumulator. Nine
//! accumulators, the gradient and a broadcast fill 11 of the 16 registers
//! (16 channels at a time would need 21). One chain per weight over the
//! samples, rows and columns in order, as `weight_grad_lanes` sums (keep
//! the two in step): its bits, where AVX-512 takes that layout too
//! (`channel_lanes` measures the fill against 16 lanes, this against 8).

use std::arch::x86_64::*;

use super::super::Geometry;

/// The kernel's size.
const K: usize = 3;

impl Geometry {
    /// Whether the AVX2 weight gradient puts output channels in the lanes: a
    /// 3 × 3 kernel whose output channels fill vectors of 8 at least as
    /// well as the output rows do.
    pub(super) fn channel_lanes_avx2(&self) -> bool {
        (self.kh, self.kw) == (K, K) && self.channels_fill(8)
    }

    /// [`Geometry::weight_grad`] on AVX2 with output channels in the lanes
    /// (see the module). `scratch` holds one sample's transposed output
    /// gradient, then a vector of partial sums per tap and 8 channels, kept
    /// there between samples.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; the buffers fit the geometry (as
    /// [`Geometry::weight_grad`] asserts); the kernel is 3 × 3.
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
            (self.kh, self.kw) == (K, K),
            "conv2d (direct, AVX2): channels in the lanes need a 3 × 3 kernel, got {self:?}"
        );
        let (hp, wp) = self.staged_hw();
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
            for o0 in (0..wide).step_by(8) {
                for ci in 0..self.c {
                    let sums = |t: usize| partial.add((ci * K * K + t) * wide + o0);
                    let mut acc: [__m256; K * K] =
                        std::array::from_fn(|t| _mm256_loadu_ps(sums(t)));
                    for oy in 0..self.oh {
                        let rows: [*const f32; K] =
                            std::array::from_fn(|ky| x.add((ci * hp + oy + ky) * wp));
                        let grads = dyt.add(oy * self.ow * wide + o0);
                        for ox in 0..self.ow {
                            let d = _mm256_loadu_ps(grads.add(ox * wide));
                            for (ky, row) in rows.iter().enumerate() {
                                for kx in 0..K {
                                    let xv = _mm256_set1_ps(*row.add(ox + kx));
                                    let t = ky * K + kx;
                                    acc[t] = _mm256_fmadd_ps(d, xv, acc[t]);
                                }
                            }
                        }
                    }
                    for (t, &acc) in acc.iter().enumerate() {
                        _mm256_storeu_ps(sums(t), acc);
                    }
                }
            }
        }
        for o in 0..self.oc {
            for t in 0..taps {
                *dw.add(o * taps + t) += *partial.add(t * wide + o);
            }
        }
    }
}
