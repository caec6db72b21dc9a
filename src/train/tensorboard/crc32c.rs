//! CRC-32C (Castagnoli), the checksum of TFRecord framing, and the "masked"
//! form TFRecord stores.

/// The Castagnoli polynomial `0x1EDC6F41`, bit-reversed for the
/// least-significant-bit-first update below.
const POLYNOMIAL_REVERSED: u32 = 0x82F6_3B78;

/// The CRC of every byte value, so the update handles a byte per lookup
/// (event files are small: a byte-at-a-time table is fast enough).
const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL_REVERSED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// The CRC-32C of `data`.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let crc = data.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    });
    !crc
}

/// TFRecord's masked CRC-32C: a CRC computed over data that itself holds
/// CRCs is weak, so TensorFlow rotates it and adds a constant
/// (`tensorflow/core/lib/hash/crc32c.h`, `Mask`:
/// `((crc >> 15) | (crc << 17)) + 0xa282ead8`).
pub(crate) fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The check value of CRC-32C (the CRC of the ASCII digits 1 to 9).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn crc32c_matches_rfc_3720_test_vectors() {
        // iSCSI's CRC-32C vectors (RFC 3720, appendix B.4).
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
    }

    #[test]
    fn masking_matches_tensorboards_own_implementation() {
        // From `tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c`.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
        assert_eq!(masked_crc32c(b""), 0xA282_EAD8);
    }
}
