//! The forward kernels of a direct convolution (and of its input gradient,
//! the same convolution of the output gradient with the flipped weight), by
//! one of two layouts:
//!
//! - **output channels in the lanes** (3 × 3 and 5 × 5 kernels over at
//!   least 32 taps, rows a multiple of 7, 8 or 10 wide, where channels fill
//!   the lanes at least as well as rows do): a block of output positions,
//!   two rows of 7 or 8 or one of 10, each a vector of 16 channels, adds the
//!   weights of each tap (transposed once per batch to `[tap, channel]`)
//!   times the tap's input value, broadcast from the staged plane; the
//!   block is transposed in registers to rows of each channel before it is
//!   stored;
//! - **output rows in the lanes** (everything else): a block of channels by
//!   rows, each row one or two vectors, adds each tap's weight, broadcast,
//!   times the staged row.
//!
//! These are the AVX-512 kernels; where the kernels use AVX2, their copies
//! run instead: the second's in `avx2.rs` (rows of up to four vectors of
//! 8), the first's in `avx2/forward_lanes.rs` (blocks of consecutive
//! positions: any row width for 3 × 3 kernels, within a row for 5 × 5).
//!
//! Both add the bias first and then the taps in the same order, so they
//! give the same bits; both skip the kernel rows that read only the zero
//! border for every row of a block (see `Geometry::live_kernel_rows`).

#[cfg(target_arch = "x86_64")]
use crate::kernels::array::array;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::Geometry;
#[cfg(target_arch = "x86_64")]
use super::{lanes, relu_lanes, row_masks};
use crate::kernels::gemm::count_flops;
#[cfg(target_arch = "x86_64")]
use crate::kernels::transpose::transpose16;

/// A convolution's weights as [`Geometry::forward`] reads them, made by
/// [`Geometry::forward_weights`] for one geometry (whose layout they follow).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weights<'a> {
    values: &'a [f32],
    geometry: Geometry,
}

/// Output positions in a block of the AVX2 forward's 5 × 5 kernels with
/// channels in the lanes, by channels per block: 5 by two vectors of 8
/// channels (10 accumulators), 8 by one.
pub(super) const fn positions_5x5_avx2(channels: usize) -> usize {
    if channels == 16 {
        5
    } else {
        8
    }
}

impl Geometry {
    /// The weights `w` (`[oc, taps]`) as [`Geometry::forward`] reads them:
    /// `w` itself, or, where its kernel puts channels in the lanes, their
    /// transpose `[taps, channels padded to a block]` (see
    /// [`Geometry::forward_lane_width`]), written into `buf` (grown as
    /// needed and kept for the next call).
    pub fn forward_weights<'a>(&self, w: &'a [f32], buf: &'a mut Vec<f32>) -> Weights<'a> {
        let taps = self.taps();
        assert_eq!(
            w.len(),
            self.oc * taps,
            "conv2d (direct): weights do not fit {self:?}"
        );
        let Some(lanes) = self.forward_lane_width() else {
            return Weights {
                values: w,
                geometry: *self,
            };
        };
        let wide = self.oc.next_multiple_of(lanes);
        buf.clear();
        buf.resize(taps * wide, 0.0);
        for (o, row) in w.chunks_exact(taps).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                buf[t * wide + o] = v;
            }
        }
        Weights {
            values: buf,
            geometry: *self,
        }
    }

    /// The length of [`Geometry::forward_weights`]'s result.
    fn forward_weights_len(&self) -> usize {
        let channels = match self.forward_lane_width() {
            Some(lanes) => self.oc.next_multiple_of(lanes),
            None => self.oc,
        };
        channels * self.taps()
    }

    /// Where the forward puts output channels in the lanes, the channels a
    /// block computes at once, to which the transposed weights are padded:
    /// a vector of 16 on AVX-512, on AVX2 one vector of 8 or, past 8
    /// channels, two.
    pub(super) fn forward_lane_width(&self) -> Option<usize> {
        if self.avx512 {
            self.forward_channel_blocks().map(|_| 16)
        } else {
            self.forward_channel_lanes_avx2()
        }
    }

    /// `(positions per row block, kernel size)` when the forward puts
    /// output channels in the lanes: where the weight gradient does, the
    /// rows a multiple of a block's 7, 8 or 10 positions wide, and the
    /// kernel at least 32 taps (below that, a one-channel stem's, the
    /// transposes of the output would cost more than the taps do).
    fn forward_channel_blocks(&self) -> Option<(usize, usize)> {
        let k = self.channel_lanes()?;
        let positions = [7, 8, 10]
            .into_iter()
            .find(|&p| self.ow.is_multiple_of(p))?;
        (self.taps() >= 32).then_some((positions, k))
    }

    /// The channels of a block where the AVX2 forward puts output channels
    /// in the lanes (one vector of 8, or two past 8 channels): a 3 × 3 or
    /// 5 × 5 kernel of at least 32 taps, as on AVX-512, whose output
    /// channels fill those blocks at least as well as the output rows fill
    /// vectors of 8. (A 3 × 3 kernel's blocks run across row ends, any row
    /// width; a 5 × 5 kernel's lie within a row, which must hold one.)
    fn forward_channel_lanes_avx2(&self) -> Option<usize> {
        let block = if self.oc > 8 { 16 } else { 8 };
        let takes = !self.avx512
            && self.kw == self.kh
            && (self.kh == 3 || (self.kh == 5 && self.ow >= positions_5x5_avx2(block)))
            && self.taps() >= 32
            && self.channels_fill(block, 8);
        takes.then_some(block)
    }

    /// `y = w ⋆ staged + b` for one sample: `w` from
    /// [`Geometry::forward_weights`], `y: [oc, oh, ow]` (overwritten); with
    /// `relu`, `max(·, 0)` of it as plain `relu` gives it (NaN and `-0.0`
    /// kept), applied before the store.
    pub fn forward(
        &self,
        staged: &[f32],
        w: Weights<'_>,
        bias: Option<&[f32]>,
        relu: bool,
        y: &mut [f32],
    ) {
        let Weights {
            values: w,
            geometry,
        } = w;
        assert!(
            geometry == *self
                && staged.len() >= self.staged_len()
                && w.len() == self.forward_weights_len()
                && y.len() == self.oc * self.oh * self.ow
                && bias.is_none_or(|b| b.len() == self.oc),
            "conv2d (direct): buffers do not fit {self:?}"
        );
        count_flops(self.oc, self.taps(), self.oh * self.ow);
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no direct geometry off x86-64 ({bias:?}, {w:?})");
        // SAFETY: `direct` chose the kernels for this CPU; the sizes were
        // asserted.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let bias = bias.map_or(std::ptr::null(), |b| b.as_ptr());
            let (s, w, y) = (staged.as_ptr(), w.as_ptr(), y.as_mut_ptr());
            if !self.avx512 {
                return self.forward_avx2(s, w, bias, relu, y);
            }
            match self.forward_channel_blocks() {
                Some((7, 3)) => return self.forward_lanes::<7, 2, 3>(s, w, bias, relu, y),
                Some((8, 3)) => return self.forward_lanes::<8, 2, 3>(s, w, bias, relu, y),
                Some((10, 3)) => return self.forward_lanes::<10, 1, 3>(s, w, bias, relu, y),
                Some((7, _)) => return self.forward_lanes::<7, 2, 5>(s, w, bias, relu, y),
                Some((8, _)) => return self.forward_lanes::<8, 2, 5>(s, w, bias, relu, y),
                Some(_) => return self.forward_lanes::<10, 1, 5>(s, w, bias, relu, y),
                None => {}
            }
            // 4 channels by up to 6 rows of one vector (3 of two), or 6
            // channels by up to 4 rows (2 of two), are 24 accumulators, what
            // the 32 vector registers hold beside the weights and a row. The
            // rows are cut as evenly as that allows (14 rows as 5, 5 and 4);
            // of the two shapes the one computing fewer padding channels and
            // rows wins (6 channels, as LeNet-5 has, fill no block of 4).
            let two = self.ow > 16;
            let plan = |block: usize, most: usize| {
                let rows = self.oh.div_ceil(self.oh.div_ceil(most));
                let work = self.oc.div_ceil(block) * block * self.oh.div_ceil(rows) * rows;
                (work, block, rows)
            };
            let (four, six) = (
                plan(4, if two { 3 } else { 6 }),
                plan(6, if two { 2 } else { 4 }),
            );
            let (_, block, rows) = if six.0 < four.0 { six } else { four };
            // A 3 × 3 kernel (most CNNs') gets its own copy with the taps'
            // loops unrolled: three taps a loop left the loops' own work
            // beside every 3 · OB · RB multiply-adds.
            let k3 = (self.kh, self.kw) == (3, 3);
            macro_rules! by_kernel {
                ($ob:literal, $rb:literal, $nv:literal) => {
                    if k3 {
                        self.forward_rows::<$ob, $rb, $nv, 3>(s, w, bias, relu, y)
                    } else {
                        self.forward_rows::<$ob, $rb, $nv, 0>(s, w, bias, relu, y)
                    }
                };
            }
            match (block, rows, two) {
                (4, 1, false) => by_kernel!(4, 1, 1),
                (4, 2, false) => by_kernel!(4, 2, 1),
                (4, 3, false) => by_kernel!(4, 3, 1),
                (4, 4, false) => by_kernel!(4, 4, 1),
                (4, 5, false) => by_kernel!(4, 5, 1),
                (4, 6, false) => by_kernel!(4, 6, 1),
                (4, 1, true) => by_kernel!(4, 1, 2),
                (4, 2, true) => by_kernel!(4, 2, 2),
                (4, 3, true) => by_kernel!(4, 3, 2),
                (6, 1, false) => by_kernel!(6, 1, 1),
                (6, 2, false) => by_kernel!(6, 2, 1),
                (6, 3, false) => by_kernel!(6, 3, 1),
                (6, 4, false) => by_kernel!(6, 4, 1),
                (6, 1, true) => by_kernel!(6, 1, 2),
                (6, 2, true) => by_kernel!(6, 2, 2),
                _ => {
                    unreachable!("blocks of 4 channels by 6 rows or 6 by 4, half with two vectors")
                }
            }
        }
    }

    /// [`Geometry::forward`] with output channels in the lanes: blocks of
    /// `RB` rows by `PB` positions (at most 16 vectors, one transpose), 16
    /// channels at a time, for a `K × K` kernel; `w` is `[taps, channels
    /// padded to 16]`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_lanes<const PB: usize, const RB: usize, const K: usize>(
        &self,
        staged: *const f32,
        w: *const f32,
        bias: *const f32,
        relu: bool,
        y: *mut f32,
    ) {
        let (hp, wp) = self.staged_hw();
        let (wide, plane) = (self.oc.next_multiple_of(16), self.oh * self.ow);
        let zero = _mm512_setzero_ps();
        for o0 in (0..wide).step_by(16) {
            let present = lanes(self.oc - o0);
            let start = if bias.is_null() {
                zero
            } else {
                _mm512_maskz_loadu_ps(present, bias.add(o0))
            };
            for r0 in (0..self.oh).step_by(RB) {
                // A row past the last is the last again (computed, not
                // stored), so every block runs at full size.
                let rows: [usize; RB] = array(|r| (r0 + r).min(self.oh - 1));
                for x0 in (0..self.ow).step_by(PB) {
                    let mut acc = [[start; PB]; RB];
                    let live = self.live_kernel_rows(rows[0], rows[RB - 1], K);
                    for ci in 0..self.c {
                        for ky in 0..K {
                            if !live.contains(&ky) {
                                continue;
                            }
                            let src: [*const f32; RB] =
                                array(|r| staged.add((ci * hp + rows[r] + ky) * wp + x0));
                            for kx in 0..K {
                                let wv =
                                    _mm512_loadu_ps(w.add(((ci * K + ky) * K + kx) * wide + o0));
                                for (acc, src) in acc.iter_mut().zip(&src) {
                                    for (p, acc) in acc.iter_mut().enumerate() {
                                        let xv = _mm512_set1_ps(*src.add(p + kx));
                                        *acc = _mm512_fmadd_ps(wv, xv, *acc);
                                    }
                                }
                            }
                        }
                    }
                    // Vector `r · PB + p` is position `p` of row `r`; after
                    // the transpose, vector `o` holds channel `o`'s positions.
                    let mut block = [zero; 16];
                    for (r, acc) in acc.iter().enumerate() {
                        for (p, &a) in acc.iter().enumerate() {
                            block[r * PB + p] = if relu { relu_lanes(a) } else { a };
                        }
                    }
                    let by_channel = transpose16(block);
                    for (o, &values) in by_channel.iter().enumerate().take(self.oc - o0) {
                        for r in 0..RB.min(self.oh - r0) {
                            // Lanes `r · PB ..` go to row `r`: the store
                            // starts `r · PB` values before it, masked to them.
                            let row = y.add((o0 + o) * plane + (r0 + r) * self.ow + x0);
                            let mask = lanes(PB) << (r * PB);
                            _mm512_mask_storeu_ps(row.wrapping_sub(r * PB), mask, values);
                        }
                    }
                }
            }
        }
    }

    /// [`Geometry::forward`] with output rows in the lanes, in blocks of
    /// `RB` output rows by `OB` output channels, `NV` vectors per row, for a
    /// `K × K` kernel (its taps' loops unrolled), or for any kernel with
    /// `K = 0`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn forward_rows<
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
            let outs: [usize; OB] = array(|j| (o0 + j).min(self.oc - 1));
            for r0 in (0..self.oh).step_by(RB) {
                let rows: [usize; RB] = array(|r| (r0 + r).min(self.oh - 1));
                let mut acc = [[[_mm512_setzero_ps(); NV]; RB]; OB];
                if !bias.is_null() {
                    for (j, acc) in acc.iter_mut().enumerate() {
                        *acc = [[_mm512_set1_ps(*bias.add(outs[j])); NV]; RB];
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
                            let wk: [__m512; OB] =
                                array(|j| _mm512_set1_ps(*w.add(outs[j] * taps + k)));
                            for r in 0..RB {
                                let src = staged.add((ci * hp + rows[r] + ky) * wp + kx);
                                for v in 0..NV {
                                    let x = _mm512_maskz_loadu_ps(masks[v], src.add(16 * v));
                                    for j in 0..OB {
                                        acc[j][r][v] = _mm512_fmadd_ps(wk[j], x, acc[j][r][v]);
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
                            _mm512_mask_storeu_ps(out.add(16 * v), masks[v], a);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::test_support::{padded, runs_here};
    use super::*;

    /// Where the channels are in the lanes: the same bits as the row
    /// kernel (the same multiply-adds in the same order), and the
    /// definition summed in `f64` within `f32` rounding (1e-5 of the
    /// largest value), with a bias and without, with `relu` and without.
    /// Every block shape (7, 8 or 10 positions by a 3 × 3 and a 5 × 5
    /// kernel), blocks past a row's start, an odd number of rows, rows
    /// wider than tall, 24 channels (a group of 16 and one of 8) and 12.
    #[test]
    fn channels_in_lanes_give_the_row_kernels_bits() {
        if !runs_here() {
            return;
        }
        let value = |i: usize| ((i * 7919) % 97) as f32 / 97.0 - 0.5;
        // c, oc, (h, w), kernel, padding, the block's positions
        for (c, oc, (h, w), k, pad, positions) in [
            (16, 16, (14, 14), 3, 1, 7),
            (16, 16, (7, 7), 3, 1, 7),
            (16, 16, (16, 16), 3, 1, 8),
            (4, 24, (10, 10), 3, 1, 10),
            (4, 16, (10, 20), 3, 1, 10),
            (8, 12, (7, 7), 3, 1, 7),
            (4, 16, (14, 14), 5, 2, 7),
            (6, 16, (12, 12), 5, 0, 8),
            (6, 16, (14, 14), 5, 0, 10),
        ] {
            let window = padded((k, k), pad);
            let (oh, ow) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
            let g = Geometry::direct(true, &window, (c, h, w), (oc, oh, ow)).expect("direct");
            assert_eq!(g.forward_channel_blocks(), Some((positions, k)), "{g:?}");
            let x: Vec<f32> = (0..c * h * w).map(value).collect();
            let wt: Vec<f32> = (0..oc * c * k * k).map(|i| value(i + 5)).collect();
            let bias: Vec<f32> = (0..oc).map(|i| value(i + 11)).collect();
            let mut buf = vec![0f32; 2 * g.staged_len()];
            let staged = g.staged_in(&mut buf, 1);
            g.stage(&x, staged);
            let mut prepared = Vec::new();
            let weights = g.forward_weights(&wt, &mut prepared);
            for (relu, with_bias) in [(false, true), (true, true), (false, false)] {
                let b = with_bias.then_some(&bias[..]);
                let mut lanes_y = vec![0f32; oc * oh * ow];
                g.forward(staged, weights, b, relu, &mut lanes_y);
                let mut rows_y = vec![0f32; oc * oh * ow];
                // SAFETY: AVX-512F was detected; the buffers fit the geometry
                // (two vectors a row hold any direct geometry's rows).
                unsafe {
                    g.forward_rows::<4, 2, 2, 0>(
                        staged.as_ptr(),
                        wt.as_ptr(),
                        b.map_or(std::ptr::null(), |b| b.as_ptr()),
                        relu,
                        rows_y.as_mut_ptr(),
                    )
                };
                let case = format!("{g:?}, relu {relu}, bias {with_bias}");
                for (i, (a, b)) in lanes_y.iter().zip(&rows_y).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{case}: output {i}");
                }
                let scale = lanes_y.iter().fold(1.0f64, |m, &v| m.max(v.abs() as f64));
                for o in 0..oc {
                    for (oy, ox) in (0..oh).flat_map(|oy| (0..ow).map(move |ox| (oy, ox))) {
                        let mut want = if with_bias { bias[o] as f64 } else { 0.0 };
                        for (ci, ky, kx) in (0..c).flat_map(|ci| {
                            (0..k).flat_map(move |ky| (0..k).map(move |kx| (ci, ky, kx)))
                        }) {
                            let (iy, ix) =
                                ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
                            if iy < h && ix < w {
                                want += wt[((o * c + ci) * k + ky) * k + kx] as f64
                                    * x[(ci * h + iy) * w + ix] as f64;
                            }
                        }
                        if relu {
                            want = want.max(0.0);
                        }
                        let got = lanes_y[(o * oh + oy) * ow + ox] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5 * scale,
                            "{case}: channel {o} at ({oy}, {ox}): {got} against {want}"
                        );
                    }
                }
            }
        }
    }

    /// Weights prepared for one geometry are refused by another whose
    /// weights have as many values (225 taps both: 25 channels by 3 × 3,
    /// 9 by 5 × 5), where they would be read in the wrong layout.
    #[test]
    fn weights_prepared_for_another_geometry_are_refused() {
        if !runs_here() {
            return;
        }
        let geometry = |c: usize, k: usize| {
            Geometry::direct(true, &padded((k, k), k / 2), (c, 14, 14), (16, 14, 14))
                .expect("direct")
        };
        let (three, five) = (geometry(25, 3), geometry(9, 5));
        let w = vec![0.5f32; 16 * 225];
        let mut prepared = Vec::new();
        let weights = three.forward_weights(&w, &mut prepared);
        let mut buf = vec![0f32; 2 * five.staged_len()];
        let staged = five.staged_in(&mut buf, 1);
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            five.forward(staged, weights, None, false, &mut [0f32; 16 * 14 * 14]);
        }))
        .expect_err("weights of another geometry");
        let message = refused
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.starts_with("conv2d (direct): buffers do not fit"),
            "{message}"
        );
    }
}
