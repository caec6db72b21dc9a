//! The direct kernels on AVX2 + FMA: output rows in the lanes, eight to a
//! vector, for the forward (and so the input gradient) and the weight
//! gradient. They follow the AVX-512 row kernels (`forward_rows`,
//! `weight_grad_rows`) with blocks sized for 16 vector registers instead
//! of 32; the forward adds the bias and the taps in the same order, so it
//! gives the AVX-512 kernels' bits. The channels-in-lanes layouts are
//! AVX-512 only (their transposes are 16 × 16).

use std::arch::x86_64::*;

use super::Geometry;

/// The masks (all bits set = on) of the lanes of a row of `width` values,
/// per vector of 8.
#[target_feature(enable = "avx2")]
fn row_masks(width: usize) -> [__m256i; 4] {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    std::array::from_fn(|v| {
        let n = width.saturating_sub(8 * v).min(8) as i32;
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane)
    })
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
fn relu_lanes(a: __m256) -> __m256 {
    let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_setzero_ps());
    _mm256_blendv_ps(a, _mm256_setzero_ps(), negative)
}

impl Geometry {
    /// [`Geometry::stage`] on AVX2: each staged row zeroed, the input's row
    /// copied over it.
    ///
    /// # Safety
    /// The CPU has AVX2; `x` holds `c · h · w` values and `staged`
    /// `staged_len()`; the input fits in the staged plane.
    #[target_feature(enable = "avx2")]
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
    /// [`Geometry::forward`] asserts); `8 · NV ≥ ow`.
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
        let (kh, kw) = if K == 0 { (self.kh, self.kw) } else { (K, K) };
        let (hp, wp) = self.staged_hw();
        let (taps, masks) = (self.taps(), row_masks(self.ow));
        for o0 in (0..self.oc).step_by(OB) {
            // A block past the last channel or row repeats the last one
            // (computed, not stored), so every block runs at full size.
            let outs: [usize; OB] = std::array::from_fn(|j| (o0 + j).min(self.oc - 1));
            for r0 in (0..self.oh).step_by(RB) {
                let rows: [usize; RB] = std::array::from_fn(|r| (r0 + r).min(self.oh - 1));
                let mut acc = [[[_mm256_setzero_ps(); NV]; RB]; OB];
                if !bias.is_null() {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = [[_mm256_set1_ps(*bias.add(outs[j])); NV]; RB];
                    }
                }
                for ci in 0..self.c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let k = (ci * kh + ky) * kw + kx;
                            let wk: [__m256; OB] =
                                std::array::from_fn(|j| _mm256_set1_ps(*w.add(outs[j] * taps + k)));
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
                        for (v, &a) in acc.iter().enumerate() {
                            let a = if relu { relu_lanes(a) } else { a };
                            if v + 1 < NV {
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

    /// Picks [`Geometry::forward_rows_avx2`]'s blocks for this geometry.
    ///
    /// # Safety
    /// As [`Geometry::forward_rows_avx2`], whatever the width.
    pub(super) unsafe fn forward_avx2(
        &self,
        staged: *const f32,
        w: *const f32,
        bias: *const f32,
        relu: bool,
        y: *mut f32,
    ) {
        let k3 = (self.kh, self.kw) == (3, 3);
        macro_rules! run {
            ($ob:literal, $rb:literal, $nv:literal) => {
                if k3 {
                    self.forward_rows_avx2::<$ob, $rb, $nv, 3>(staged, w, bias, relu, y)
                } else {
                    self.forward_rows_avx2::<$ob, $rb, $nv, 0>(staged, w, bias, relu, y)
                }
            };
        }
        // Twelve accumulators (3 channels by 2 rows, 2 by 3, 6 by 1) ran
        // slower than these eight on 14-wide rows (`convnet` on AVX2).
        match self.ow.div_ceil(8) {
            1 => run!(4, 2, 1),
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
    /// [`Geometry::weight_grad`] asserts); `8 · NV ≥ ow`.
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
        let (hp, wp) = self.staged_hw();
        let (taps, masks) = (self.taps(), row_masks(self.ow));
        let (per_sample, out_plane) = (self.staged_len(), self.oh * self.ow);
        for o0 in (0..self.oc).step_by(OB) {
            let outs: [usize; OB] = std::array::from_fn(|j| (o0 + j).min(self.oc - 1));
            for k0 in (0..taps).step_by(TB) {
                // Where each tap reads in a staged sample, relative to the
                // output row (past the last tap: the last one again).
                let reads: [usize; TB] = std::array::from_fn(|t| {
                    let k = (k0 + t).min(taps - 1);
                    let (ci, ky, kx) =
                        (k / (self.kh * self.kw), k / self.kw % self.kh, k % self.kw);
                    (ci * hp + ky) * wp + kx
                });
                let mut acc = [[[_mm256_setzero_ps(); NV]; TB]; OB];
                for s in 0..samples {
                    let (x, g) = (staged.add(s * per_sample), dy.add(s * self.oc * out_plane));
                    for oy in 0..self.oh {
                        // Masked loads on both sides: lanes past the row
                        // are zeros, never 0 · ∞.
                        let grads: [[__m256; NV]; OB] = std::array::from_fn(|j| {
                            std::array::from_fn(|v| {
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
                        let quads: [f32; 4] = std::array::from_fn(|i| lanes[i] + lanes[i + 4]);
                        let total = (quads[0] + quads[2]) + (quads[1] + quads[3]);
                        *dw.add((o0 + j) * taps + k0 + t) += total;
                    }
                }
            }
        }
    }

    /// Picks [`Geometry::weight_grad_rows_avx2`]'s blocks for this geometry.
    ///
    /// # Safety
    /// As [`Geometry::weight_grad_rows_avx2`], whatever the width.
    pub(super) unsafe fn weight_grad_avx2(
        &self,
        samples: usize,
        staged: *const f32,
        dy: *const f32,
        dw: *mut f32,
    ) {
        // Accumulators, a row of gradients per channel and one input row:
        // 16 registers, or 17 for rows of two vectors, whose 2 channels by 3
        // taps beat 2 by 2 and 1 by 4 to 6 (`convnet` on AVX2: 8.3–8.4 s an
        // epoch against 8.6–9.1, alternating runs); four vectors take 3
        // taps rather than 2 (`cnn`: 2.01–2.06 s against 2.04–2.09).
        match self.ow.div_ceil(8) {
            1 => self.weight_grad_rows_avx2::<2, 4, 1>(samples, staged, dy, dw),
            2 => self.weight_grad_rows_avx2::<2, 3, 2>(samples, staged, dy, dw),
            3 => self.weight_grad_rows_avx2::<1, 3, 3>(samples, staged, dy, dw),
            _ => self.weight_grad_rows_avx2::<1, 3, 4>(samples, staged, dy, dw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::padded;
    use super::*;

    /// Both AVX2 kernels on every vector count (rows of 8, 14, 17 and 28:
    /// one to four vectors), a 3 × 3, a 5 × 5 and a 2 × 3 kernel, channel
    /// counts that fill no block, with a bias and `relu` and without: the
    /// forward gives the AVX-512 row kernel's bits (where the CPU has
    /// AVX-512) and both give the definition summed in `f64` within `f32`
    /// rounding (1e-5 of the largest value), the weight gradient added to
    /// one already holding values.
    #[test]
    fn the_avx2_kernels_give_the_definition() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: no AVX2 and FMA on this CPU");
            return;
        }
        let value = |i: usize| ((i * 7919) % 97) as f64 / 97.0 - 0.5;
        for (n, c, oc, (h, w), (kh, kw), pad) in [
            (2, 3, 5, (8, 8), (3, 3), 1),
            (2, 16, 16, (14, 14), (3, 3), 1),
            (2, 3, 6, (9, 17), (2, 3), 1),
            (2, 1, 7, (28, 28), (3, 3), 1),
            (2, 6, 16, (12, 12), (5, 5), 0),
        ] {
            let window = padded((kh, kw), pad);
            let (oh, ow) = (h + 2 * pad + 1 - kh, w + 2 * pad + 1 - kw);
            let Some(g) = Geometry::direct(true, &window, (c, h, w), (oc, oh, ow)) else {
                eprintln!("skipped: the kernels use no AVX2 here");
                return;
            };
            let avx2 = Geometry { avx512: false, ..g };
            let taps = c * kh * kw;
            let x: Vec<f64> = (0..n * c * h * w).map(value).collect();
            let wt: Vec<f64> = (0..oc * taps).map(|i| value(i + 5)).collect();
            let bias: Vec<f64> = (0..oc).map(|i| value(i + 11)).collect();
            let dy: Vec<f64> = (0..n * oc * oh * ow).map(|i| value(i + 3)).collect();
            let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
            let (x32, w32, b32, dy32) = (f32s(&x), f32s(&wt), f32s(&bias), f32s(&dy));
            let mut buf = vec![0f32; (n + 1) * g.staged_len()];
            let staged = avx2.staged_in(&mut buf, n);
            for (s, out) in staged.chunks_exact_mut(g.staged_len()).enumerate() {
                avx2.stage(&x32[s * c * h * w..][..c * h * w], out);
            }
            let case = format!("{n}x{c}x{h}x{w} to {oc} by {kh}x{kw}");
            let at = |o: usize, ci: usize, ky: usize, kx: usize| ((o * c + ci) * kh + ky) * kw + kx;
            // The input at output position (oy, ox) and tap (ky, kx), or 0
            // in the padding.
            let input = |s: usize, ci: usize, oy: usize, ox: usize, ky: usize, kx: usize| {
                let (iy, ix) = ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
                if iy < h && ix < w {
                    x[((s * c + ci) * h + iy) * w + ix]
                } else {
                    0.0
                }
            };
            for (relu, with_bias) in [(false, true), (true, true), (false, false)] {
                let b = with_bias.then_some(&b32[..]);
                let y: Vec<Vec<f32>> = (0..n)
                    .map(|s| {
                        let mut y = vec![0f32; oc * oh * ow];
                        let mut prepared = Vec::new();
                        let weights = avx2.forward_weights(&w32, &mut prepared);
                        avx2.forward(&staged[s * g.staged_len()..], weights, b, relu, &mut y);
                        y
                    })
                    .collect();
                if g.avx512 {
                    let mut rows = vec![0f32; oc * oh * ow];
                    // SAFETY: the CPU has AVX-512 (`g` was made for it); the
                    // buffers fit the geometry (two vectors hold any row).
                    unsafe {
                        g.forward_rows::<4, 2, 2, 0>(
                            staged.as_ptr(),
                            w32.as_ptr(),
                            b.map_or(std::ptr::null(), |b| b.as_ptr()),
                            relu,
                            rows.as_mut_ptr(),
                        )
                    };
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&y[0]),
                        bits(&rows),
                        "{case}: relu {relu}, bias {with_bias}"
                    );
                }
                for (s, y) in y.iter().enumerate() {
                    let scale = y.iter().fold(1.0f64, |m, &v| m.max(v.abs() as f64));
                    for (o, oy, ox) in (0..oc).flat_map(|o| {
                        (0..oh).flat_map(move |oy| (0..ow).map(move |ox| (o, oy, ox)))
                    }) {
                        let mut want = if with_bias { bias[o] } else { 0.0 };
                        for (ci, ky, kx) in (0..c).flat_map(|ci| {
                            (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (ci, ky, kx)))
                        }) {
                            want += wt[at(o, ci, ky, kx)] * input(s, ci, oy, ox, ky, kx);
                        }
                        if relu {
                            want = want.max(0.0);
                        }
                        let got = y[(o * oh + oy) * ow + ox] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * scale,
                            "{case}: sample {s}, channel {o} at ({oy}, {ox}): {got} against {want}"
                        );
                    }
                }
            }
            let before: Vec<f64> = (0..oc * taps).map(|i| value(i + 7)).collect();
            let mut want = before.clone();
            for (o, ci, ky, kx) in (0..oc).flat_map(|o| {
                (0..c).flat_map(move |ci| {
                    (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (o, ci, ky, kx)))
                })
            }) {
                for (s, oy, ox) in (0..n)
                    .flat_map(|s| (0..oh).flat_map(move |oy| (0..ow).map(move |ox| (s, oy, ox))))
                {
                    want[at(o, ci, ky, kx)] +=
                        dy[((s * oc + o) * oh + oy) * ow + ox] * input(s, ci, oy, ox, ky, kx);
                }
            }
            let mut got = f32s(&before);
            avx2.weight_grad(n, staged, &dy32, &mut got, &mut Vec::new());
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            let worst = want
                .iter()
                .zip(&got)
                .fold(0.0f64, |m, (&a, &b)| m.max((a - b as f64).abs()));
            assert!(
                worst <= 1e-5 * scale,
                "{case}: weight gradient off by {worst:e}"
            );
        }
    }
}
