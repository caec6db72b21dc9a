//! A 16 × 16 transpose in AVX-512 registers: the forward with channels in
//! the lanes computes a block of positions, each a vector of channels, and
//! stores each channel's positions as a row.

use std::arch::x86_64::*;

/// The 16 × 16 transpose of `rows`: lane `j` of vector `i` becomes lane `i`
/// of vector `j` (four rounds of 16 shuffles).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose16(rows: [__m512; 16]) -> [__m512; 16] {
    let (pd, ps) = (_mm512_castps_pd, _mm512_castpd_ps);
    // Pairs of rows interleaved by 32-bit lanes, then by 64-bit lanes: each
    // 128-bit quarter then holds 4 rows' values of one column group.
    let a: [__m512; 16] = std::array::from_fn(|i| {
        let (x, y) = (rows[i / 2 * 2], rows[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(x, y)
        } else {
            _mm512_unpackhi_ps(x, y)
        }
    });
    let b: [__m512; 16] = std::array::from_fn(|i| {
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
    let c: [__m512; 16] = std::array::from_fn(|i| {
        let (g, k) = (i / 8 * 8, i % 8);
        let (x, y) = (b[g + k % 4], b[g + k % 4 + 4]);
        if k < 4 {
            _mm512_shuffle_f32x4::<0x88>(x, y)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(x, y)
        }
    });
    std::array::from_fn(|i| {
        let (x, y) = (c[i % 8], c[i % 8 + 8]);
        if i < 8 {
            _mm512_shuffle_f32x4::<0x88>(x, y)
        } else {
            _mm512_shuffle_f32x4::<0xdd>(x, y)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose16_swaps_rows_and_columns() {
        if !super::super::test_support::runs_here() {
            return;
        }
        let values: Vec<f32> = (0..256).map(|i| i as f32).collect();
        // SAFETY: AVX-512F was detected; every load reads 16 of 256 values.
        let out = unsafe {
            transpose16(std::array::from_fn(|i| {
                _mm512_loadu_ps(values[16 * i..].as_ptr())
            }))
        };
        for (j, v) in out.iter().enumerate() {
            let mut lane = [0f32; 16];
            // SAFETY: as above; 16 values stored.
            unsafe { _mm512_storeu_ps(lane.as_mut_ptr(), *v) };
            for (i, &got) in lane.iter().enumerate() {
                assert_eq!(got, (16 * i + j) as f32, "vector {j}, lane {i}");
            }
        }
    }
}
