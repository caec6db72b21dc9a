//! The 2 × 2 window's forward on AVX2: 8 outputs at a time, the AVX-512
//! kernel's comparisons, so the same maxima and indices. A row's last
//! block stores its vectors whole where the lanes past it are outputs
//! stored later (the next row's), masked only at a plane's end: masked
//! stores are microcoded on AMD's Zen, and a copy of the tail was a
//! library call. (The backward stays the general loop here: an AVX2 copy
//! of AVX-512's ran 1.3–2.8 times slower than it on a Zen 3 EPYC.)

use std::arch::x86_64::*;

use crate::kernels::masks::{first_of_4, first_of_8};

/// The `2n` values at `at` (`n ≤ 8`) as the windows' left taps (even
/// columns) and right taps (odd), lanes past `n` zero.
///
/// # Safety
/// The CPU has AVX2; `2n` values are readable at `at`.
#[target_feature(enable = "avx2")]
unsafe fn taps(at: *const f32, n: usize) -> (__m256, __m256) {
    let (a, b) = if n == 8 {
        (_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8)))
    } else {
        (
            _mm256_maskload_ps(at, first_of_8(2 * n)),
            _mm256_maskload_ps(at.wrapping_add(8), first_of_8((2 * n).saturating_sub(8))),
        )
    };
    // Per 128-bit half a0 a2 b0 b2 | a4 a6 b4 b6, then the 64-bit pairs
    // put in order: a0 a2 a4 a6 b0 b2 b4 b6.
    let in_order =
        |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
    (
        in_order(_mm256_shuffle_ps::<0b10_00_10_00>(a, b)),
        in_order(_mm256_shuffle_ps::<0b11_01_11_01>(a, b)),
    )
}

/// [`super::forward`]'s kernel on AVX2.
///
/// # Safety
/// As the AVX-512 kernel's (which [`super::forward`] asserts), on a CPU
/// with AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn forward_f32(
    plane: &[f32],
    w: usize,
    (oh, ow): (usize, usize),
    yp: &mut [f32],
    ip: &mut [usize],
) {
    let even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    let outputs = oh * ow;
    for oy in 0..oh {
        let (r0, r1) = (2 * oy * w, (2 * oy + 1) * w);
        for ox in (0..ow).step_by(8) {
            let n = (ow - ox).min(8);
            let (t0, t1) = taps(plane.as_ptr().add(r0 + 2 * ox), n);
            let (b0, b1) = taps(plane.as_ptr().add(r1 + 2 * ox), n);
            let first = _mm256_add_epi32(_mm256_set1_epi32((r0 + 2 * ox) as i32), even);
            let (mut best, mut at) = (t0, _mm256_castsi256_ps(first));
            for (v, offset) in [(t1, 1), (b0, w as i32), (b1, w as i32 + 1)] {
                // As the scalar loop: `v > best || v.is_nan()`.
                let take = _mm256_or_ps(
                    _mm256_cmp_ps::<_CMP_GT_OQ>(v, best),
                    _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
                );
                best = _mm256_blendv_ps(best, v, take);
                let index = _mm256_add_epi32(first, _mm256_set1_epi32(offset));
                at = _mm256_blendv_ps(at, _mm256_castsi256_ps(index), take);
            }
            let at = _mm256_castps_si256(at);
            let indices = [
                _mm256_cvtepi32_epi64(_mm256_castsi256_si128(at)),
                _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(at)),
            ];
            let o = oy * ow + ox;
            let (yo, io) = (yp.as_mut_ptr().add(o), ip.as_mut_ptr().add(o).cast::<i64>());
            if o + 8 <= outputs {
                // Lanes past `n` fall on the next row's outputs, stored later.
                _mm256_storeu_ps(yo, best);
                _mm256_storeu_si256(io.cast(), indices[0]);
                _mm256_storeu_si256(io.add(4).cast(), indices[1]);
            } else {
                // The plane's end: nothing past it is this call's.
                _mm256_maskstore_ps(yo, first_of_8(n), best);
                _mm256_maskstore_epi64(io, first_of_4(n), indices[0]);
                _mm256_maskstore_epi64(
                    io.wrapping_add(4),
                    first_of_4(n.saturating_sub(4)),
                    indices[1],
                );
            }
        }
    }
}
