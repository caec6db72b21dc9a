//! 16 × 16 and 8 × 8 transposes in AVX-512 and AVX registers: the direct
//! convolutions' forward with channels in the lanes computes a block of
//! positions, each a vector of channels, and stores each channel's
//! positions as a row; the GEMM's AVX2 packers turn rows into columns.

use crate::kernels::array::array;
use std::arch::x86_64::*;

/// The 16 × 16 transpose of `rows`: lane `j` of vector `i` becomes lane `i`
/// of vector `j` (four rounds of 16 shuffles).
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn transpose16(rows: [__m512; 16]) -> [__m512; 16] {
    let (pd, ps) = (_mm512_castps_pd, _mm512_castpd_ps);
    // Pairs of rows interleaved by 32-bit lanes, then by 64-bit lanes: each
    // 128-bit quarter then holds 4 rows' values of one column group.
    let a: [__m512; 16] = array(|i| {
        let (x, y) = (rows[i / 2 * 2], rows[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(x, y)
        } else {
            _mm512_unpackhi_ps(x, y)
        }
    });
    let b: [__m512; 16] = array(|i| {
        let (g, k) = (i / 4 * 4, i % 4);
        let (x, y) = (pd(a[g + k / 2]), pd(a[g + k / 2 + 2]));
        ps(if k % 2 == 0 {
            _mm512_unpacklo_pd(x, y)
        } else {
            _mm512_unpackhi_pd(x, y)
        })
    });
    // Then the 128-bit quarters: even and odd quarters of groups 4 apart,
    // and again of groups 8 apart.
    let c: [__m512; 16] = array(|i| {
        let (g, k) = (i / 8 * 8, i % 8);
        let (x, y) = (b[g + k % 4], b[g + k % 4 + 4]);
        if k < 4 {
            _mm512_shuffle_f32x4::<0x88>(x, y)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(x, y)
        }
    });
    array(|i| {
        let (x, y) = (c[i % 8], c[i % 8 + 8]);
        if i < 8 {
            _mm512_shuffle_f32x4::<0x88>(x, y)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(x, y)
        }
    })
}

/// The 8 × 8 transpose of `rows`: lane `j` of vector `i` becomes lane `i`
/// of vector `j` (pairs interleaved, then quadruples, then 128-bit halves).
#[target_feature(enable = "avx")]
#[inline]
pub(crate) unsafe fn transpose8(rows: [__m256; 8]) -> [__m256; 8] {
    // Lanes 0, 1 and 4, 5 (`lo`) or 2, 3 and 6, 7 (`hi`) of two rows, interleaved.
    let t: [__m256; 8] = array(|i| {
        let (x, y) = (rows[i / 2 * 2], rows[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_ps(x, y)
        } else {
            _mm256_unpackhi_ps(x, y)
        }
    });
    // Four rows' values of columns `c` and `c + 4`, for `c` = `i % 4`.
    let u: [__m256; 8] = array(|i| {
        let (g, c) = (i / 4 * 4, i % 4);
        let (x, y) = (t[g + c / 2], t[g + c / 2 + 2]);
        if c % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(x, y)
        } else {
            _mm256_shuffle_ps::<0xee>(x, y)
        }
    });
    array(|j| {
        let (x, y) = (u[j % 4], u[j % 4 + 4]);
        if j < 4 {
            _mm256_permute2f128_ps::<0x20>(x, y)
        } else {
            _mm256_permute2f128_ps::<0x31>(x, y)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `out[j][i]` is element `(i, j)` of the `n × n` matrix
    /// `0, 1, 2, …` in row-major order, the input's rows.
    fn assert_transposed(n: usize, out: &[Vec<f32>]) {
        for (j, lanes) in out.iter().enumerate() {
            for (i, &got) in lanes.iter().enumerate() {
                assert_eq!(got, (n * i + j) as f32, "vector {j}, lane {i}");
            }
        }
    }

    #[test]
    fn transpose8_swaps_rows_and_columns() {
        if !crate::kernels::cpu::avx2() {
            eprintln!("skipped: the kernels use no AVX2 here");
            return;
        }
        let values: Vec<f32> = (0..64).map(|i| i as f32).collect();
        // SAFETY: AVX2 (so AVX) was detected; every load reads 8 of 64
        // values, every store writes 8.
        let out = unsafe {
            transpose8(array(|i| _mm256_loadu_ps(values[8 * i..].as_ptr()))).map(|v| {
                let mut lanes = vec![0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                lanes
            })
        };
        assert_transposed(8, &out);
    }

    #[test]
    fn transpose16_swaps_rows_and_columns() {
        if !crate::kernels::cpu::avx512() {
            eprintln!("skipped: the kernels use no AVX-512 here");
            return;
        }
        let values: Vec<f32> = (0..256).map(|i| i as f32).collect();
        // SAFETY: AVX-512F was detected; every load reads 16 of 256 values,
        // every store writes 16.
        let out = unsafe {
            transpose16(array(|i| _mm512_loadu_ps(values[16 * i..].as_ptr()))).map(|v| {
                let mut lanes = vec![0f32; 16];
                _mm512_storeu_ps(lanes.as_mut_ptr(), v);
                lanes
            })
        };
        assert_transposed(16, &out);
    }
}
