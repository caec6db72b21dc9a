//! AVX2 lane masks (all bits set = on) for the kernels' masked loads and
//! stores: one definition for the GEMM tiles, the convolutions and the
//! pooling kernel.

use std::arch::x86_64::*;

/// A mask of the first `n` of eight 32-bit lanes.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn first_of_8(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n.min(8) as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// A mask of the first `n` of four 64-bit lanes.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn first_of_4(n: usize) -> __m256i {
    _mm256_cmpgt_epi64(
        _mm256_set1_epi64x(n.min(4) as i64),
        _mm256_setr_epi64x(0, 1, 2, 3),
    )
}
