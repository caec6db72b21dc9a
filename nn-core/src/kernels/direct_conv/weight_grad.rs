//! The weight gradient of a direct convolution, `dw += Σ dy ⊗ patches`, by
//! one of two kernels:
//!
//! - **output channels in the lanes** (square 3 × 3 and 5 × 5 kernels): each
//!   sample's output gradient is transposed to `[position, channel]`, and
//!   every position adds its gradient vector times each tap's input value,
//!   broadcast from the staged plane, to that tap's accumulator. Every lane
//!   is a weight, so there is nothing to reduce across lanes, and 16 or 32
//!   channels fill whole vectors where a 14-wide row leaves two lanes of
//!   sixteen idle. One core, 16 → 16 channels of 14 × 14, 128 samples:
//!   116–130 GFLOP/s against 70–75 for the other kernel (`perf`: its masked
//!   loads and address arithmetic, not the cache, held it back: chunks of
//!   one sample, all in L1, ran no faster);
//! - **output rows in the lanes** (any kernel, and where the channels fill
//!   the lanes worse than the rows do: LeNet-5's 6 channels of 28-wide
//!   rows): a block of channels by taps accumulates products of gradient
//!   rows and input rows, reduced across the lanes at the end.
//!
//! These are the AVX-512 kernels; where the kernels use AVX2, their copies
//! run instead: the second's in `avx2.rs`, the first's for 3 × 3 and 5 × 5
//! kernels in `avx2/weight_lanes.rs`.

#[cfg(target_arch = "x86_64")]
use crate::kernels::array::array;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::Geometry;
#[cfg(target_arch = "x86_64")]
use super::{lanes, row_masks};
use crate::kernels::gemm::count_flops;

impl Geometry {
    /// `dw += Σ dy ⊗ patches` over `samples` samples: `staged` holds their
    /// staged inputs one after another (`staged_len` each), `dy` their
    /// output gradients `[samples, oc, oh, ow]`, `dw` is `[oc, taps]`;
    /// `scratch` grows to what the kernel needs and is kept for the next
    /// call. Each weight's sum runs over the samples, rows and columns in a
    /// fixed order.
    pub fn weight_grad(
        &self,
        samples: usize,
        staged: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        assert!(
            staged.len() >= samples * self.staged_len()
                && dy.len() == samples * self.oc * self.oh * self.ow
                && dw.len() == self.oc * self.taps(),
            "conv2d (direct): gradient buffers do not fit {self:?} × {samples}"
        );
        count_flops(self.oc, samples * self.oh * self.ow, self.taps());
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no direct geometry off x86-64 ({scratch:?})");
        // SAFETY: `direct` chose the kernels for this CPU; the sizes were
        // asserted.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let (s, g, d) = (staged.as_ptr(), dy.as_ptr(), dw.as_mut_ptr());
            if !self.avx512 {
                // AVX2: its own choice of layout.
                return self.weight_grad_avx2(samples, s, g, d, scratch);
            }
            // Accumulators for up to 25 taps, what the 32 vector registers
            // hold beside the gradient vectors: a 3 × 3 kernel's taps of two
            // input channels by 16 output channels, or of one by 32.
            match self.channel_lanes() {
                Some(3) if self.oc > 16 => {
                    self.weight_grad_lanes::<2, 1, 3>(samples, s, g, d, scratch)
                }
                Some(3) if self.c > 1 => {
                    self.weight_grad_lanes::<1, 2, 3>(samples, s, g, d, scratch)
                }
                Some(3) => self.weight_grad_lanes::<1, 1, 3>(samples, s, g, d, scratch),
                Some(_) => self.weight_grad_lanes::<1, 1, 5>(samples, s, g, d, scratch),
                // Blocks that fit the 32 vector registers with the loads the
                // compiler hoists: accumulators, a row of gradients per
                // channel and one per tap (6 taps spilled accumulators to the
                // stack).
                None if self.ow > 16 => self.weight_grad_rows::<2, 4, 2>(samples, s, g, d),
                None => self.weight_grad_rows::<4, 4, 1>(samples, s, g, d),
            }
        }
    }

    /// [`Geometry::weight_grad`] with output channels in the lanes, `OV`
    /// vectors of them at a time, for `CB` input channels of a `K × K`
    /// kernel at a time. `scratch` holds one sample's output gradient as
    /// `[position, channel]` (its rows padded to whole groups of `OV`
    /// vectors with zeros), then a vector of partial sums per tap and
    /// channel, kept there between samples. AVX2's `weight_grad_lanes_avx2`
    /// keeps this order of sums (and so its bits): change both.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn weight_grad_lanes<const OV: usize, const CB: usize, const K: usize>(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
        scratch: &mut Vec<f32>,
    ) {
        let (hp, wp) = self.staged_hw();
        let (plane, taps) = (self.oh * self.ow, self.taps());
        let wide = self.oc.next_multiple_of(16 * OV);
        // Partial sums for every channel of the last block of `CB`, past
        // `c` too (computed, never read).
        let tap_rows = self.c.next_multiple_of(CB) * K * K;
        if scratch.len() < (plane + tap_rows) * wide {
            scratch.resize((plane + tap_rows) * wide, 0.0);
        }
        let (dyt, partial) = scratch.split_at_mut(plane * wide);
        let partial = &mut partial[..tap_rows * wide];
        partial.fill(0.0);
        let (dyt, partial) = (dyt.as_mut_ptr(), partial.as_mut_ptr());
        // Lane `o` of a gathered vector reads channel `o`'s plane: offsets
        // below 16 planes, which `MAX_STAGED` keeps within an `i32`.
        let across = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(plane as i32),
        );
        // A vector past the last channel (a group of 32 with only 16 in
        // it) is zeros for every sample: written once.
        for v in self.oc.div_ceil(16)..wide / 16 {
            for p in 0..plane {
                _mm512_storeu_ps(dyt.add(p * wide + 16 * v), _mm512_setzero_ps());
            }
        }
        for s in 0..samples {
            let g = dy.add(s * self.oc * plane);
            for v in 0..self.oc.div_ceil(16) {
                let (present, from) = (lanes(self.oc - 16 * v), g.add(16 * v * plane));
                for p in 0..plane {
                    let column = _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        present,
                        across,
                        from.add(p),
                    );
                    _mm512_storeu_ps(dyt.add(p * wide + 16 * v), column);
                }
            }
            let x = staged.add(s * self.staged_len());
            for o0 in (0..wide).step_by(16 * OV) {
                for c0 in (0..self.c).step_by(CB) {
                    // Past the last input channel: the last one again.
                    let chans: [usize; CB] = array(|b| (c0 + b).min(self.c - 1));
                    let sums = |b: usize, ky: usize, kx: usize, v: usize| {
                        partial.add((((c0 + b) * K + ky) * K + kx) * wide + o0 + 16 * v)
                    };
                    let mut acc = [[[[_mm512_setzero_ps(); OV]; K]; K]; CB];
                    for (b, acc) in acc.iter_mut().enumerate() {
                        for (ky, acc) in acc.iter_mut().enumerate() {
                            for (kx, acc) in acc.iter_mut().enumerate() {
                                for (v, acc) in acc.iter_mut().enumerate() {
                                    *acc = _mm512_loadu_ps(sums(b, ky, kx, v));
                                }
                            }
                        }
                    }
                    for oy in 0..self.oh {
                        let rows: [[*const f32; K]; CB] =
                            array(|b| array(|ky| x.add((chans[b] * hp + oy + ky) * wp)));
                        let grads = dyt.add(oy * self.ow * wide + o0);
                        for ox in 0..self.ow {
                            let d: [__m512; OV] =
                                array(|v| _mm512_loadu_ps(grads.add(ox * wide + 16 * v)));
                            for (acc, rows) in acc.iter_mut().zip(&rows) {
                                for (acc, row) in acc.iter_mut().zip(rows) {
                                    for (kx, acc) in acc.iter_mut().enumerate() {
                                        let xv = _mm512_set1_ps(*row.add(ox + kx));
                                        for (acc, &d) in acc.iter_mut().zip(&d) {
                                            *acc = _mm512_fmadd_ps(d, xv, *acc);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    for (b, acc) in acc.iter().enumerate() {
                        for (ky, acc) in acc.iter().enumerate() {
                            for (kx, acc) in acc.iter().enumerate() {
                                for (v, &acc) in acc.iter().enumerate() {
                                    _mm512_storeu_ps(sums(b, ky, kx, v), acc);
                                }
                            }
                        }
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

    /// [`Geometry::weight_grad`] with output rows in the lanes, in blocks of
    /// `OB` output channels by `TB` taps, `NV` vectors per row.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn weight_grad_rows<const OB: usize, const TB: usize, const NV: usize>(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
    ) {
        let (hp, wp) = self.staged_hw();
        let (taps, masks) = (self.taps(), row_masks(self.ow));
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
                let mut acc = [[[_mm512_setzero_ps(); NV]; TB]; OB];
                for s in 0..samples {
                    let (x, g) = (staged.add(s * per_sample), dy.add(s * self.oc * out_plane));
                    for oy in 0..self.oh {
                        // Masked loads on both sides: lanes past the row
                        // are zeros, never 0 · ∞.
                        let grads: [[__m512; NV]; OB] = array(|j| {
                            array(|v| {
                                let at = g.add(outs[j] * out_plane + oy * self.ow + 16 * v);
                                _mm512_maskz_loadu_ps(masks[v], at)
                            })
                        });
                        for t in 0..TB {
                            let src = x.add(reads[t] + oy * wp);
                            for v in 0..NV {
                                let xv = _mm512_maskz_loadu_ps(masks[v], src.add(16 * v));
                                for j in 0..OB {
                                    acc[j][t][v] = _mm512_fmadd_ps(grads[j][v], xv, acc[j][t][v]);
                                }
                            }
                        }
                    }
                }
                for (j, acc) in acc.iter().enumerate().take(self.oc - o0) {
                    for (t, acc) in acc.iter().enumerate().take(taps - k0) {
                        let sum = acc[1..].iter().fold(acc[0], |s, &a| _mm512_add_ps(s, a));
                        *dw.add((o0 + j) * taps + k0 + t) += _mm512_reduce_add_ps(sum);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::test_support::{assert_within_rounding, padded, runs_here};
    use super::*;

    /// Both kernels against the definition summed in `f64`, added to a
    /// gradient already holding values: within `f32` rounding of sums of at
    /// most 1 568 terms (1e-5 of the largest value). Channel counts that
    /// fill no block (3 input channels by twos, 24 and 40 output channels
    /// by 32, the last group of 40 with a vector past the last channel), one
    /// input channel, 5 × 5, and a kernel only the row kernel takes.
    #[test]
    fn both_kernels_give_the_definition() {
        if !runs_here() {
            return;
        }
        let cases = [
            // samples, c, oc, (h, w), kernel, padding
            (3, 16, 16, (14, 14), (3, 3), 1),
            (2, 3, 16, (9, 9), (3, 3), 1),
            (2, 3, 24, (9, 9), (3, 3), 1),
            (2, 2, 40, (7, 7), (3, 3), 1),
            (2, 1, 16, (28, 28), (3, 3), 1),
            (2, 6, 16, (14, 14), (5, 5), 0),
            (2, 3, 6, (9, 17), (2, 3), 1),
        ];
        let value = |i: usize| ((i * 7919) % 97) as f64 / 97.0 - 0.5;
        for (n, c, oc, (h, w), (kh, kw), pad) in cases {
            let window = padded((kh, kw), pad);
            let (oh, ow) = (h + 2 * pad + 1 - kh, w + 2 * pad + 1 - kw);
            let g = Geometry::direct(true, &window, (c, h, w), (oc, oh, ow)).expect("direct");
            let x: Vec<f64> = (0..n * c * h * w).map(value).collect();
            let dy: Vec<f64> = (0..n * oc * oh * ow).map(|i| value(i + 3)).collect();
            let before: Vec<f64> = (0..oc * c * kh * kw).map(|i| value(i + 5)).collect();
            let mut want = before.clone();
            for (s, o, ci, ky, kx) in every_weight_term(n, oc, c, kh, kw) {
                let mut sum = 0.0;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (iy, ix) = ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
                        if iy < h && ix < w {
                            sum += dy[((s * oc + o) * oh + oy) * ow + ox]
                                * x[((s * c + ci) * h + iy) * w + ix];
                        }
                    }
                }
                want[((o * c + ci) * kh + ky) * kw + kx] += sum;
            }
            let mut buf = vec![0f32; (n + 1) * g.staged_len()];
            let staged = g.staged_in(&mut buf, n);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            for (s, out) in staged.chunks_exact_mut(g.staged_len()).enumerate() {
                g.stage(&x32[s * c * h * w..][..c * h * w], out);
            }
            let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
            let (sp, gp) = (staged.as_ptr(), dy32.as_ptr());
            let mut kernels: Vec<(&str, Vec<f32>)> = Vec::new();
            let start = || before.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let mut rows = start();
            // SAFETY: AVX-512F was detected; the buffers fit the geometry.
            unsafe { g.weight_grad_rows::<4, 4, 2>(n, sp, gp, rows.as_mut_ptr()) };
            kernels.push(("rows", rows));
            if g.channel_lanes().is_some() {
                let mut chosen = start();
                g.weight_grad(n, staged, &dy32, &mut chosen, &mut Vec::new());
                kernels.push(("channel lanes", chosen));
            }
            for (name, got) in kernels {
                let what = format!("{name}: {n}x{c}x{h}x{w} to {oc} by {kh}x{kw}");
                assert_within_rounding(&want, &got, &what);
            }
        }
    }

    /// Every (sample, output channel, input channel, ky, kx).
    fn every_weight_term(
        n: usize,
        oc: usize,
        c: usize,
        kh: usize,
        kw: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
        (0..n).flat_map(move |s| {
            (0..oc).flat_map(move |o| {
                (0..c).flat_map(move |ci| {
                    (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (s, o, ci, ky, kx)))
                })
            })
        })
    }
}
