//! TFRecord framing, the container of event files: each record is
//!
//! ```text
//! u64 length (little-endian)
//! u32 masked CRC-32C of the length's eight bytes
//! the data (`length` bytes)
//! u32 masked CRC-32C of the data
//! ```
//!
//! (`tensorflow/core/lib/io/record_writer.cc`).

use super::crc32c::masked_crc32c;

/// Bytes of framing before the data: the length and its CRC.
const HEADER_LEN: usize = 12;
/// Bytes of framing after the data: its CRC.
const FOOTER_LEN: usize = 4;

/// Appends `data` to `out` as one framed record.
pub(crate) fn put_record(out: &mut Vec<u8>, data: &[u8]) {
    let length = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Where a file's framing is broken, and how.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FramingError {
    /// Byte offset of the broken record's start.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// The data of every record in `bytes` with its offset, both CRCs checked.
pub(crate) fn split_records(bytes: &[u8]) -> Result<Vec<(u64, &[u8])>, FramingError> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let broken = |reason: String| FramingError {
            offset: pos as u64,
            reason,
        };
        let rest = &bytes[pos..];
        if rest.len() < HEADER_LEN {
            return Err(broken(format!(
                "truncated record: {} bytes left, a header takes {HEADER_LEN}",
                rest.len()
            )));
        }
        let (length_bytes, length_crc) = (&rest[..8], read_u32(&rest[8..12]));
        if masked_crc32c(length_bytes) != length_crc {
            return Err(broken("the length's CRC does not match".into()));
        }
        let length = u64::from_le_bytes(length_bytes.try_into().expect("eight bytes"));
        let after_header = (rest.len() - HEADER_LEN) as u64;
        // Saturating: a corrupt length near `u64::MAX` must not wrap around.
        if length.saturating_add(FOOTER_LEN as u64) > after_header {
            return Err(broken(format!(
                "truncated record: {length} bytes of data and a {FOOTER_LEN}-byte CRC announced, {after_header} bytes present"
            )));
        }
        let end = HEADER_LEN + length as usize;
        let data = &rest[HEADER_LEN..end];
        if masked_crc32c(data) != read_u32(&rest[end..end + FOOTER_LEN]) {
            return Err(broken("the data's CRC does not match".into()));
        }
        records.push((pos as u64, data));
        pos += end + FOOTER_LEN;
    }
    Ok(records)
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes.try_into().expect("four bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            put_record(&mut out, r);
        }
        out
    }

    #[test]
    fn records_round_trip() {
        let bytes = framed(&[b"first", b"", b"third record"]);
        assert_eq!(bytes.len(), 3 * (HEADER_LEN + FOOTER_LEN) + 5 + 12);
        let records = split_records(&bytes).unwrap();
        let data: Vec<&[u8]> = records.iter().map(|(_, d)| *d).collect();
        assert_eq!(data, [&b"first"[..], b"", b"third record"]);
        assert_eq!(records[1].0, 21);
    }

    #[test]
    fn the_empty_record_matches_tensorflows_framing() {
        // Length 0, then the masked CRC of eight zero bytes and of nothing
        // (`masked_crc32c(b"")` is the mask's constant).
        let bytes = framed(&[b""]);
        assert_eq!(&bytes[..8], &[0; 8]);
        assert_eq!(read_u32(&bytes[12..16]), 0xA282_EAD8);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = framed(&[b"some data", b"more"]);
        for i in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 0x01;
            assert!(
                split_records(&corrupt).is_err(),
                "byte {i} flipped unnoticed"
            );
        }
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = framed(&[b"some data"]);
        for len in 1..bytes.len() {
            let err = split_records(&bytes[..len]).unwrap_err();
            assert_eq!(err.offset, 0);
            assert!(err.reason.contains("truncated"), "{len}: {}", err.reason);
        }
    }
}
