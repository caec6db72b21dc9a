//! Max pooling's common window, 2 × 2 with stride 2 and no padding, in `f32`
//! on an AVX-512 CPU (16 outputs at a time), forward and backward, and its
//! forward on an AVX2 one (8, in `two_by_two/avx2.rs`).

use std::arch::x86_64::*;

use super::super::conv::{Padding2d, Window2d};
use crate::Float;

mod avx2;

/// The instruction set that runs a window, where one does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

/// Which kernels `window` over `h × w` planes of `T` takes, if any.
fn fits<T: Float>(window: &Window2d, (h, w): (usize, usize)) -> Option<Isa> {
    let takes = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && window.padding == Padding2d::default()
        && window.dilation == (1, 1)
        && window.kernel == (2, 2)
        && window.stride == (2, 2)
        && h * w <= i32::MAX as usize;
    if !takes {
        None
    } else if crate::kernels::cpu::avx512() {
        Some(Isa::Avx512)
    } else if crate::kernels::cpu::avx2() {
        Some(Isa::Avx2)
    } else {
        None
    }
}

/// The mask of the first `n` of 16 lanes.
fn first_lanes(n: usize) -> u16 {
    if n >= 16 {
        u16::MAX
    } else {
        (1u16 << n) - 1
    }
}

/// One plane's forward, when the window [`fits`] (returns whether it did):
/// the comparisons of `max_pool_plane`'s loop in the same order, so the same
/// maxima and indices. That loop vectorizes only whole groups of 8 outputs,
/// and LeNet-5's rows of 14 and 5 ran mostly in its scalar tail (7 % of
/// `cnn`'s epoch).
pub(super) fn forward<T: Float>(
    plane: &[T],
    (h, w): (usize, usize),
    out: (usize, usize),
    window: &Window2d,
    yp: &mut [T],
    ip: &mut [usize],
) -> bool {
    let isa = fits::<T>(window, (h, w));
    if let Some(isa) = isa {
        let (oh, ow) = out;
        // The kernels' precondition, checked once for both.
        assert!(
            plane.len() >= 2 * oh * w && w >= 2 * ow && yp.len() >= oh * ow && ip.len() >= oh * ow
        );
        // SAFETY: `T` is `f32` (checked); `isa` was detected; the sizes
        // were asserted just above.
        unsafe {
            let plane = std::slice::from_raw_parts(plane.as_ptr().cast::<f32>(), plane.len());
            let yp = std::slice::from_raw_parts_mut(yp.as_mut_ptr().cast::<f32>(), yp.len());
            match isa {
                Isa::Avx512 => forward_f32(plane, w, out, yp, ip),
                Isa::Avx2 => avx2::forward_f32(plane, w, out, yp, ip),
            }
        }
    }
    isa.is_some()
}

/// [`forward`]'s kernel.
///
/// # Safety
/// The CPU has AVX-512F; `plane` holds `2·oh` rows of `w ≥ 2·ow` values
/// (fewer than 2³¹); `yp` and `ip` hold `oh · ow` outputs (as [`forward`]
/// asserts).
#[target_feature(enable = "avx512f")]
unsafe fn forward_f32(
    plane: &[f32],
    w: usize,
    (oh, ow): (usize, usize),
    yp: &mut [f32],
    ip: &mut [usize],
) {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for oy in 0..oh {
        let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
        for ox in (0..ow).step_by(16) {
            let n = (ow - ox).min(16);
            let (lo, hi) = (first_lanes(2 * n), first_lanes((2 * n).saturating_sub(16)));
            // A row's 2n values, split into the windows' left and right taps
            // (masked loads touch no memory past them).
            let taps = |start: usize| {
                let at = plane.as_ptr().add(start + 2 * ox);
                let (a, b) = (
                    _mm512_maskz_loadu_ps(lo, at),
                    _mm512_maskz_loadu_ps(hi, at.wrapping_add(16)),
                );
                (
                    _mm512_permutex2var_ps(a, even, b),
                    _mm512_permutex2var_ps(a, odd, b),
                )
            };
            let ((t0, t1), (b0, b1)) = (taps(r0), taps(r1));
            let first = _mm512_add_epi32(_mm512_set1_epi32((r0 + 2 * ox) as i32), even);
            let (mut best, mut at) = (t0, first);
            for (v, offset) in [(t1, 1), (b0, w as i32), (b1, w as i32 + 1)] {
                // As the scalar loop: `v > best || v.is_nan()`.
                let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                    | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                best = _mm512_mask_mov_ps(best, take, v);
                let index = _mm512_add_epi32(first, _mm512_set1_epi32(offset));
                at = _mm512_mask_mov_epi32(at, take, index);
            }
            let keep = first_lanes(n);
            let o = oy * ow + ox;
            _mm512_mask_storeu_ps(yp.as_mut_ptr().add(o), keep, best);
            let ips = ip.as_mut_ptr().add(o).cast::<i64>();
            let (low, high) = (
                _mm512_cvtepu32_epi64(_mm512_castsi512_si256(at)),
                _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(at)),
            );
            _mm512_mask_storeu_epi64(ips, keep as u8, low);
            _mm512_mask_storeu_epi64(ips.wrapping_add(8), (keep >> 8) as u8, high);
        }
    }
}

/// One plane's backward on an AVX-512 CPU, when the window [`fits`] and every index is one of
/// its own window's four (returns whether it did; when not, `dx` holds
/// partial values): each input gets its window's gradient where it was the
/// maximum and zero elsewhere, written in whole rows, where the general
/// loop zeroes the plane and adds each gradient at its index (a third of
/// the pooling's time in a 16-channel CNN). The values are the general
/// loop's, `0 + g`.
pub(super) fn backward<T: Float>(
    window: &Window2d,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    gs: &[T],
    is: &[usize],
    dx: &mut [T],
) -> bool {
    let shapes_fit = 2 * oh <= h
        && 2 * ow <= w
        && gs.len() == oh * ow
        && is.len() == oh * ow
        && dx.len() == h * w;
    if !shapes_fit || fits::<T>(window, (h, w)) != Some(Isa::Avx512) {
        return false;
    }
    // SAFETY: `T` is `f32` and AVX-512F was detected (`fits`); the lengths
    // and `2·oh ≤ h`, `2·ow ≤ w` are checked just above; every index is
    // compared with its window's four before its gradient is written.
    unsafe {
        let gs = std::slice::from_raw_parts(gs.as_ptr().cast::<f32>(), gs.len());
        let dx = std::slice::from_raw_parts_mut(dx.as_mut_ptr().cast::<f32>(), dx.len());
        backward_f32(w, (oh, ow), gs, is, dx)
    }
}

/// [`backward`]'s kernel: false at the first index outside its window.
///
/// # Safety
/// The CPU has AVX-512F; `2·ow ≤ w`; `gs` and `is` hold `oh · ow` values,
/// `dx` at least `2·oh` rows of `w`.
#[target_feature(enable = "avx512f")]
unsafe fn backward_f32(
    w: usize,
    (oh, ow): (usize, usize),
    gs: &[f32],
    is: &[usize],
    dx: &mut [f32],
) -> bool {
    let zero = _mm512_setzero_ps();
    // Lane `l` of the outputs' left taps is at column `2l`.
    let step = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    let offsets = [0, 1, w as i64, w as i64 + 1].map(|o| _mm512_set1_epi64(o));
    // Two vectors of 16 outputs, interleaved into a row's 32 values.
    let front = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let back = _mm512_add_epi32(front, _mm512_set1_epi32(8));
    for oy in 0..oh {
        let r0 = 2 * oy * w;
        for ox in (0..ow).step_by(16) {
            let n = (ow - ox).min(16);
            let keep = first_lanes(n);
            let o = oy * ow + ox;
            let g = _mm512_maskz_loadu_ps(keep, gs.as_ptr().add(o));
            // Each index relative to its window's top-left input, in 64
            // bits so that no index aliases a valid one.
            let first = (r0 + 2 * ox) as i64;
            let ips = is.as_ptr().add(o).cast::<i64>();
            let halves = [
                (ips, keep as u8, first),
                (ips.wrapping_add(8), (keep >> 8) as u8, first + 16),
            ]
            .map(|(at, mask, first)| {
                let at = _mm512_maskz_loadu_epi64(mask, at);
                _mm512_sub_epi64(at, _mm512_add_epi64(_mm512_set1_epi64(first), step))
            });
            let tap = offsets.map(|offset| {
                let [low, high] = halves.map(|rel| _mm512_cmpeq_epi64_mask(rel, offset));
                low as u16 | (high as u16) << 8
            });
            if (tap[0] | tap[1] | tap[2] | tap[3]) & keep != keep {
                return false;
            }
            let value = tap.map(|m| _mm512_add_ps(_mm512_maskz_mov_ps(m, g), zero));
            let (lo, hi) = (first_lanes(2 * n), first_lanes((2 * n).saturating_sub(16)));
            for (row, left, right) in [(r0, value[0], value[1]), (r0 + w, value[2], value[3])] {
                let at = dx.as_mut_ptr().add(row + 2 * ox);
                _mm512_mask_storeu_ps(at, lo, _mm512_permutex2var_ps(left, front, right));
                _mm512_mask_storeu_ps(
                    at.wrapping_add(16),
                    hi,
                    _mm512_permutex2var_ps(left, back, right),
                );
            }
        }
        // An odd width's last column is in no window.
        for row in [r0, r0 + w] {
            dx[row + 2 * ow..row + w].fill(0.0);
        }
    }
    // As is an odd height's last row.
    dx[2 * oh * w..].fill(0.0);
    true
}
