//! Floating-point tensors of another width read into a model's element
//! type, as PyTorch's `load_state_dict` copies a checkpoint saved in another
//! dtype (a half-precision download, an `f32` file into an `f64` model for a
//! gradient check).

use safetensors::tensor::{Dtype, TensorView};

use crate::Float;

/// The values of `view` as `T`: `F16`, `BF16` and `F32` widen exactly, `F64`
/// into `f32` rounds to nearest (as `tensor.to(torch.float32)`); `None`
/// for a dtype that is not floating-point.
pub(super) fn values_as<T: Float>(view: &TensorView<'_>) -> Option<Vec<T>> {
    let data = view.data();
    let halves = || {
        data.chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let widen = |v: f32| T::lit(f64::from(v));
    Some(match view.dtype() {
        Dtype::F64 => (data.chunks_exact(8))
            .map(|b| T::lit(f64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .collect(),
        Dtype::F32 => (data.chunks_exact(4))
            .map(|b| widen(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect(),
        // bfloat16 is the top half of an f32.
        Dtype::BF16 => halves()
            .map(|h| widen(f32::from_bits(u32::from(h) << 16)))
            .collect(),
        Dtype::F16 => halves().map(|h| widen(f16_to_f32(h))).collect(),
        _ => return None,
    })
}

/// IEEE 754 binary16 to binary32, exactly (every half is an `f32`).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exponent = u32::from((h >> 10) & 0x1f);
    let fraction = u32::from(h & 0x3ff);
    match exponent {
        // Zero and subnormals: fraction · 2⁻²⁴.
        0 => sign * fraction as f32 * f32::from_bits(0x3380_0000),
        0x1f if fraction == 0 => sign * f32::INFINITY,
        0x1f => f32::NAN,
        // Rebias 15 → 127 and widen the fraction from 10 bits to 23.
        _ => {
            let bits = ((exponent + 112) << 23) | (fraction << 13);
            sign * f32::from_bits(bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn halves_widen_to_their_values() {
        // IEEE 754 binary16 encodings, by the standard's definition.
        let cases: [(u16, f32); 9] = [
            (0x3C00, 1.0),
            (0xC100, -2.5),
            (0x7BFF, 65504.0),
            (0x0400, 2f32.powi(-14)),          // smallest normal
            (0x0001, 2f32.powi(-24)),          // smallest subnormal
            (0x03FF, 1023.0 * 2f32.powi(-24)), // largest subnormal
            (0x0000, 0.0),
            (0x7C00, f32::INFINITY),
            (0xFC00, f32::NEG_INFINITY),
        ];
        for (bits, want) in cases {
            assert_eq!(f16_to_f32(bits), want, "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7E00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }
}
