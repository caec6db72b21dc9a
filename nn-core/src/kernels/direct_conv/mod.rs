//! Stride-1 convolutions of `f32` computed straight from the input planes on
//! AVX-512 (or AVX2 + FMA: `avx2.rs`), without an im2col matrix. At the
//! widths research CNNs use (16 channels of 14 × 14) im2col writes nine copies of the input that the GEMM
//! then reads back, and a GEMM only 16 rows tall fills its 12-row tiles
//! badly: together they ran at a fifth of the machine's rate. Here each
//! sample's planes are staged once with their zero border (a few KiB, in
//! the first-level cache), and outputs are accumulated in registers tap
//! after tap, with either output channels or output rows in the vector
//! lanes (see `forward` and `weight_grad`).
//!
//! [`conv2d_into`](super::conv::conv2d_into) and
//! [`conv2d_backward_into`](super::conv::conv2d_backward_into) take these
//! kernels where [`Geometry::direct`] says so: the forward, the input
//! gradient (the forward's kernel on the output gradient with the flipped
//! weight) and the weight gradient.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use std::ops::Range;

use super::conv::Window2d;

#[cfg(target_arch = "x86_64")]
mod avx2;
mod forward;
mod weight_grad;

/// Output rows at most this wide (two AVX-512 vectors of `f32`, four AVX2
/// ones).
const MAX_WIDTH: usize = 32;

/// One sample's staged planes at most this many values (256 KiB).
const MAX_STAGED: usize = 1 << 16;

/// `f32` values in a 64-byte cache line.
const LINE: usize = 16;

/// The shape of a stride-1, undilated convolution of one sample: `c`
/// planes of `h × w` in, `oc` of `oh × ow` out, a `kh × kw` kernel and the
/// padding above and on the left (the rest follows from the sizes), and
/// which kernels run it. Made only by [`Geometry::direct`], which checks the
/// CPU: the kernels behind its methods need AVX-512, or AVX2 and FMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// The AVX-512 kernels (else the AVX2 ones).
    avx512: bool,
    c: usize,
    h: usize,
    w: usize,
    oc: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    top: usize,
    left: usize,
}

impl Geometry {
    /// The geometry of `window` from `c × (h, w)` to `oc × (oh, ow)`, when the
    /// direct kernels take it: `f32` (`is_f32`) where the kernels use
    /// AVX-512 or AVX2 (see [`crate::kernels::cpu`]),
    /// stride and dilation 1, output rows of at most 32 values, one
    /// sample's staged planes of at most 256 KiB.
    pub fn direct(
        is_f32: bool,
        window: &Window2d,
        (c, h, w): (usize, usize, usize),
        (oc, oh, ow): (usize, usize, usize),
    ) -> Option<Self> {
        let g = Geometry {
            avx512: crate::kernels::cpu::avx512(),
            c,
            h,
            w,
            oc,
            oh,
            ow,
            kh: window.kernel.0,
            kw: window.kernel.1,
            top: window.padding.top,
            left: window.padding.left,
        };
        let (hp, wp) = g.staged_hw();
        let fits = window.stride == (1, 1)
            && window.dilation == (1, 1)
            && (1..=MAX_WIDTH).contains(&ow)
            && c * h * w * oc * oh * g.kh * g.kw > 0
            // The input with its padding is the staged plane (as the
            // output's size implies for stride 1), so staging writes
            // inside it.
            && g.top + h <= hp
            && g.left + w <= wp
            && g.staged_len() <= MAX_STAGED;
        (is_f32 && fits && crate::kernels::cpu::avx2()).then_some(g)
    }

    /// Rows and columns of a staged (zero-bordered) plane: every position
    /// some output reads.
    fn staged_hw(&self) -> (usize, usize) {
        (self.oh + self.kh - 1, self.ow + self.kw - 1)
    }

    /// Values of one sample's staged planes, rounded up to whole 64-byte
    /// lines so that samples staged one after another each start on one.
    pub fn staged_len(&self) -> usize {
        let (hp, wp) = self.staged_hw();
        (self.c * hp * wp).next_multiple_of(LINE)
    }

    /// The part of `buf` that holds `samples` staged samples, from its first
    /// 64-byte boundary: each sample, and each row as wide as a vector (a
    /// 14-wide plane with its border), then starts on a cache line, and the
    /// kernels' loads at a row's first column stop splitting across two
    /// lines. `buf` holds one sample more than `samples`, room for the shift.
    pub fn staged_in<'a>(&self, buf: &'a mut [f32], samples: usize) -> &'a mut [f32] {
        let (skip, len) = (
            buf.as_ptr().align_offset(4 * LINE),
            samples * self.staged_len(),
        );
        assert!(
            buf.len() >= skip + len,
            "conv2d (direct): a staging buffer of {} values for {samples} samples of {self:?}",
            buf.len()
        );
        &mut buf[skip..][..len]
    }

    /// The kernel rows that read an input row, not only the zero
    /// border, for some output row of `first..=last`; the forward kernels
    /// skip the others, whose products are zeros. (The input gradient's
    /// staged plane, the output gradient padded by the kernel's size less
    /// one, is mostly border: LeNet-5's second layer multiplied zeros in 29 %
    /// of its taps.) Skipping an exact zero product changes a sum only
    /// where the sum is `-0.0` (a bias of `-0.0` and only `-0.0` products
    /// added so far) or a weight is not finite, so kernels whose blocks
    /// cover other rows give the same bits but there.
    fn live_kernel_rows(&self, first: usize, last: usize, kh: usize) -> Range<usize> {
        self.top.saturating_sub(last)..(self.top + self.h).saturating_sub(first).min(kh)
    }

    /// Taps of the kernel: `c · kh · kw`, a weight row's length.
    fn taps(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// The kernel size when the AVX-512 kernels put output channels in the
    /// lanes: a square 3 × 3 or 5 × 5 kernel (those they are built for)
    /// whose output channels fill their vectors at least as well as the
    /// output rows fill theirs. (AVX2 asks `channel_lanes_avx2` and
    /// `forward_channel_lanes_avx2`.)
    fn channel_lanes(&self) -> Option<usize> {
        let k = self.kh;
        let square = self.kw == k && matches!(k, 3 | 5);
        (self.avx512 && square && self.channels_fill(16, 16)).then_some(k)
    }

    /// Whether the output channels fill blocks of `channel_lanes` at least
    /// as well as the output rows fill vectors of `row_lanes` (the share of
    /// lanes holding a value).
    fn channels_fill(&self, channel_lanes: usize, row_lanes: usize) -> bool {
        let fill = |n: usize, lanes: usize| n as f64 / n.next_multiple_of(lanes) as f64;
        fill(self.oc, channel_lanes) >= fill(self.ow, row_lanes)
    }

    /// Writes `x` (`[c, h, w]`) into `staged` with its zero border: the
    /// first `c · hp · wp` of its `staged_len` values.
    pub fn stage(&self, x: &[f32], staged: &mut [f32]) {
        assert!(
            x.len() >= self.c * self.h * self.w && staged.len() >= self.staged_len(),
            "conv2d (direct): staging buffers do not fit {self:?}"
        );
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no direct geometry off x86-64");
        // SAFETY: `direct` chose the kernels for this CPU and checked that
        // the input fits in the staged plane; the buffers' sizes were
        // asserted.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            if self.avx512 {
                self.stage_rows(x.as_ptr(), staged.as_mut_ptr())
            } else {
                self.stage_rows_avx2(x.as_ptr(), staged.as_mut_ptr())
            }
        }
    }

    /// [`Geometry::stage`], row by row in vectors: each staged row is
    /// zeroed and the input's row written over it, a few masked stores where
    /// filling the buffer and a library copy per row of 14 values had taken
    /// 7.6 % of a 16-channel convolution's time (one core, `perf`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn stage_rows(&self, x: *const f32, staged: *mut f32) {
        let (hp, wp) = self.staged_hw();
        let zero = _mm512_setzero_ps();
        for ci in 0..self.c {
            for sy in 0..hp {
                let out = staged.add((ci * hp + sy) * wp);
                for v in (0..wp).step_by(16) {
                    _mm512_mask_storeu_ps(out.add(v), lanes(wp - v), zero);
                }
                // Stride 1, dilation 1: the staged plane is the padded input,
                // `hp = top + h + bottom` rows of `wp = left + w + right`.
                let iy = sy.wrapping_sub(self.top);
                if iy < self.h {
                    let src = x.add((ci * self.h + iy) * self.w);
                    for v in (0..self.w).step_by(16) {
                        let m = lanes(self.w - v);
                        let row = _mm512_maskz_loadu_ps(m, src.add(v));
                        _mm512_mask_storeu_ps(out.add(self.left + v), m, row);
                    }
                }
            }
        }
    }
}

/// `max(a, 0)` in each lane as plain `relu` gives it: negatives to +0, NaN
/// and -0.0 kept (they compare false).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn relu_lanes(a: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, zero), zero)
}

/// Masks of the lanes of a row of `width` values, per vector.
#[cfg(target_arch = "x86_64")]
fn row_masks(width: usize) -> [__mmask16; 2] {
    [lanes(width), lanes(width.saturating_sub(16))]
}

/// The mask of the first `n` of 16 lanes.
#[cfg(target_arch = "x86_64")]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        u16::MAX
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// What the kernels' tests share.
#[cfg(all(test, target_arch = "x86_64"))]
mod test_support {
    use crate::kernels::conv::{Padding2d, Window2d};

    /// Asserts that `got` is `want` (a weight gradient summed in `f64`)
    /// within `f32` rounding: 1e-5 of the largest value, as sums of up to a
    /// few thousand terms allow. `what` names the case.
    pub(super) fn assert_within_rounding(want: &[f64], got: &[f32], what: &str) {
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let worst = want
            .iter()
            .zip(got)
            .fold(0.0f64, |m, (&a, &b)| m.max((a - b as f64).abs()));
        assert!(worst <= 1e-5 * scale, "{what}: off by {worst:e}");
    }

    /// Whether the direct kernels run here (AVX-512, not lowered by
    /// `NN_CPU_CAPABILITY`); says so when they do not
    /// (the test then checks nothing and returns).
    pub(super) fn runs_here() -> bool {
        let runs = crate::kernels::cpu::avx512();
        if !runs {
            eprintln!(
                "skipped: the kernels do not use AVX-512 here, which the direct kernels need"
            );
        }
        runs
    }

    /// A stride-1 window of `kernel` padded by `pad` on every side.
    pub(super) fn padded(kernel: (usize, usize), pad: usize) -> Window2d {
        Window2d {
            padding: Padding2d {
                top: pad,
                bottom: pad,
                left: pad,
                right: pad,
            },
            ..Window2d::new(kernel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conv::{Padding2d, Window2d};
    use super::*;

    /// Staged samples start on 64-byte lines wherever the buffer starts, one
    /// after another, in a buffer with one sample's room to spare.
    #[test]
    fn staged_samples_start_on_cache_lines() {
        // 3 planes of 7 × 7 staged as 9 × 9 (a 3 × 3 kernel, padding 1):
        // 243 values, not whole lines. Pure arithmetic: built directly, so
        // this runs on any CPU.
        let g = Geometry {
            avx512: false,
            c: 3,
            h: 7,
            w: 7,
            oc: 2,
            oh: 7,
            ow: 7,
            kh: 3,
            kw: 3,
            top: 1,
            left: 1,
        };
        assert_eq!(g.staged_len(), 256);
        let mut buf = vec![0f32; 4 * g.staged_len()];
        for start in 0..16 {
            let room = &mut buf[start..][..3 * g.staged_len()];
            let staged = g.staged_in(room, 2);
            assert_eq!(staged.as_ptr() as usize % 64, 0, "from element {start}");
            assert_eq!(staged.len(), 2 * g.staged_len());
        }
    }

    /// The kernel rows the forward kernels keep are those reading an input
    /// row for some output row of the block, by brute force over blocks of
    /// an input gradient's geometry (LeNet-5's second layer: 10 rows of
    /// output gradient padded by 4 above and below), a plain padded one and
    /// one whose padding leaves some blocks nothing to read.
    #[test]
    fn live_kernel_rows_are_those_reading_the_input() {
        // The last: rows reading no input at all (padding past the kernel).
        for (h, oh, k, top) in [(10, 14, 5, 4), (14, 14, 3, 1), (3, 1, 3, 0), (1, 5, 3, 3)] {
            let g = Geometry {
                avx512: false,
                c: 1,
                h,
                w: 4,
                oc: 1,
                oh,
                ow: 4,
                kh: k,
                kw: k,
                top,
                left: 0,
            };
            for first in 0..oh {
                for last in first..oh {
                    let live = g.live_kernel_rows(first, last, k);
                    for ky in 0..k {
                        let reads = (first..=last).any(|r| (top..top + h).contains(&(r + ky)));
                        assert_eq!(
                            live.contains(&ky),
                            reads,
                            "h {h}, top {top}, rows {first}..={last}, kernel row {ky}"
                        );
                    }
                }
            }
        }
    }

    /// An output too small for its input (a caller's slip: stride 1 fixes
    /// it) gets no direct geometry, whose staging would write past the
    /// staged plane.
    #[test]
    fn an_input_larger_than_the_staged_plane_takes_no_direct_kernel() {
        let window = Window2d {
            padding: Padding2d::uniform(1),
            ..Window2d::new((3, 3))
        };
        assert_eq!(
            Geometry::direct(true, &window, (2, 14, 14), (4, 10, 14)),
            None
        );
        assert_eq!(
            Geometry::direct(true, &window, (2, 14, 14), (4, 14, 10)),
            None
        );
    }

    #[test]
    fn staging_pads_every_plane_with_zeros() {
        // Against the definition, value by value: staged[c][y][x] is
        // input[c][y − top][x − left] inside the input, 0 outside. Widths on
        // both sides of a vector (16) and padding that moves the input across
        // the vector boundary; the buffer starts full of NaN, so every value
        // must be written. Both instruction sets' staging where the kernels
        // use AVX-512 (the AVX2 one runs on such a CPU too).
        if !crate::kernels::cpu::avx2() {
            eprintln!("skipped: the kernels use neither AVX-512 nor AVX2 here, so no direct geometry exists");
            return;
        }
        for (c, h, w, (kh, kw), (top, bottom, left, right)) in [
            (2, 14, 14, (3, 3), (1, 1, 1, 1)),
            (3, 5, 20, (3, 5), (2, 0, 3, 1)),
            (1, 4, 30, (3, 3), (0, 2, 0, 2)),
            (2, 3, 13, (1, 4), (0, 0, 3, 0)),
        ] {
            let padding = Padding2d {
                top,
                bottom,
                left,
                right,
            };
            let window = Window2d {
                padding,
                ..Window2d::new((kh, kw))
            };
            let (oh, ow) = (h + top + bottom - kh + 1, w + left + right - kw + 1);
            let chosen = Geometry::direct(true, &window, (c, h, w), (1, oh, ow)).expect("direct");
            let avx2 = Geometry {
                avx512: false,
                ..chosen
            };
            for g in [chosen, avx2] {
                let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
                let mut staged = vec![f32::NAN; g.staged_len()];
                g.stage(&x, &mut staged);
                let (hp, wp) = g.staged_hw();
                for ci in 0..c {
                    for sy in 0..hp {
                        for sx in 0..wp {
                            let (iy, ix) = (sy.wrapping_sub(top), sx.wrapping_sub(left));
                            let want = if iy < h && ix < w {
                                x[(ci * h + iy) * w + ix]
                            } else {
                                0.0
                            };
                            let got = staged[(ci * hp + sy) * wp + sx];
                            assert!(
                                got == want,
                                "{c}×{h}×{w}, AVX-512 {}, at ({ci}, {sy}, {sx}): {got} ≠ {want}",
                                g.avx512
                            );
                        }
                    }
                }
            }
        }
    }
}
