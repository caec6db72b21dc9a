//! 8-bit RGB pixels as a PNG file (the PNG specification, 3rd edition): the
//! signature, an `IHDR`, the rows filtered with `Sub` and deflated into one
//! `IDAT`, an `IEND`. Plots are flat colours with anti-aliased edges, which
//! `Sub` (each byte less the same channel of the pixel to its left) turns
//! into runs of zeros.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::{Compression, Crc};

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
/// Bytes per pixel: red, green, blue.
const PIXEL: usize = 3;
/// `IHDR`'s bit depth, colour type (2: RGB), compression, filter method and
/// interlace (none).
const RGB8: [u8; 5] = [8, 2, 0, 0, 0];
/// The `Sub` filter's tag at the start of a row.
const SUB: u8 = 1;
/// The most compressed bytes one `IDAT` chunk carries.
const IDAT_BYTES: usize = 1 << 20;

/// `pixels` (`width × height` RGB pixels, row by row) as a PNG file's bytes.
///
/// # Errors
/// A side of zero pixels or more than 2³¹ − 1 (PNG's limits), or pixels
/// that do not fill the image.
pub(super) fn encode(pixels: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, String> {
    let limit = 1..=i32::MAX as u32;
    if !limit.contains(&width) || !limit.contains(&height) {
        return Err(format!("a PNG image cannot be {width}×{height} pixels"));
    }
    let row = width as usize * PIXEL;
    let size = row.checked_mul(height as usize);
    if size != Some(pixels.len()) {
        return Err(format!(
            "{} bytes of pixels for a {width}×{height} RGB image",
            pixels.len()
        ));
    }
    let mut filtered = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks_exact(row) {
        filtered.push(SUB);
        filtered.extend_from_slice(&line[..PIXEL]);
        filtered.extend(
            line[PIXEL..]
                .iter()
                .zip(line)
                .map(|(&x, &left)| x.wrapping_sub(left)),
        );
    }
    let mut deflate = ZlibEncoder::new(Vec::new(), Compression::default());
    let compressed = (deflate.write_all(&filtered))
        .and_then(|()| deflate.finish())
        .map_err(|e| format!("compressing the image: {e}"))?;

    let mut header = Vec::with_capacity(13);
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend(RGB8);
    let mut file = SIGNATURE.to_vec();
    chunk(&mut file, b"IHDR", &header);
    // A chunk holds under 2³¹ bytes; decoders join consecutive IDATs.
    for part in compressed.chunks(IDAT_BYTES) {
        chunk(&mut file, b"IDAT", part);
    }
    chunk(&mut file, b"IEND", &[]);
    Ok(file)
}

/// Appends a chunk: its length, type, data and the CRC-32 of type and data.
fn chunk(file: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).expect("chunks are cut at IDAT_BYTES");
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    file.extend(length.to_be_bytes());
    file.extend(kind);
    file.extend(data);
    file.extend(crc.sum().to_be_bytes());
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Read;

    use super::*;

    /// The CRC-32 of PNG (ISO 3309), bit by bit from its polynomial, so
    /// that the encoder's checksums are checked by a second implementation.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Reads back a file [`encode`] wrote, checking its structure, every
    /// chunk's CRC and every row's filter: the size and the RGB pixels.
    pub(in crate::plot) fn decode(file: &[u8]) -> ((u32, u32), Vec<u8>) {
        assert_eq!(&file[..8], SIGNATURE, "signature");
        let (mut at, mut chunks) = (8, Vec::new());
        while at < file.len() {
            let length = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            let kind = &file[at + 4..at + 8];
            let data = &file[at + 8..at + 8 + length];
            let crc =
                u32::from_be_bytes(file[at + 8 + length..at + 12 + length].try_into().unwrap());
            assert_eq!(
                crc,
                crc32(&file[at + 4..at + 8 + length]),
                "CRC of {kind:?}"
            );
            chunks.push((kind, data));
            at += 12 + length;
        }
        let kinds: Vec<&[u8]> = chunks.iter().map(|c| c.0).collect();
        let last = kinds.len() - 1;
        assert!(
            kinds.len() >= 3 && kinds[0] == b"IHDR" && kinds[last] == b"IEND",
            "{kinds:?}"
        );
        assert!(kinds[1..last].iter().all(|k| *k == b"IDAT"), "{kinds:?}");
        let header = chunks[0].1;
        let width = u32::from_be_bytes(header[..4].try_into().unwrap());
        let height = u32::from_be_bytes(header[4..8].try_into().unwrap());
        assert_eq!(&header[8..], RGB8);
        let stream: Vec<u8> = chunks[1..last].iter().flat_map(|c| c.1.to_vec()).collect();
        let mut filtered = Vec::new();
        flate2::read::ZlibDecoder::new(&stream[..])
            .read_to_end(&mut filtered)
            .unwrap();
        let row = width as usize * PIXEL;
        assert_eq!(filtered.len(), (row + 1) * height as usize);
        let mut pixels = Vec::new();
        for line in filtered.chunks(row + 1) {
            assert_eq!(line[0], SUB, "filter type");
            let start = pixels.len();
            for (i, &x) in line[1..].iter().enumerate() {
                let left = if i >= PIXEL {
                    pixels[start + i - PIXEL]
                } else {
                    0
                };
                pixels.push(x.wrapping_add(left));
            }
        }
        ((width, height), pixels)
    }

    #[test]
    fn the_chunk_checksum_is_png_s_crc() {
        // Every PNG ends with this chunk: its CRC is the same in all of them.
        let mut file = Vec::new();
        chunk(&mut file, b"IEND", &[]);
        assert_eq!(
            file,
            [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]
        );
    }

    #[test]
    fn pixels_come_back_through_the_filter_and_compression() {
        // Every byte value, and differences that wrap around.
        let (width, height) = (7u32, 5u32);
        let pixels: Vec<u8> = (0..width * height * 3)
            .map(|i| (i * 97 % 256) as u8)
            .collect();
        let file = encode(&pixels, (width, height)).unwrap();
        assert_eq!(decode(&file), ((width, height), pixels));
    }

    #[test]
    fn a_large_image_spans_several_idat_chunks() {
        // Noise deflates poorly: well over one chunk of IDAT_BYTES.
        let (width, height) = (1024u32, 512u32);
        let mut x = 1u32;
        let pixels: Vec<u8> = (0..width * height * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let file = encode(&pixels, (width, height)).unwrap();
        assert!(file.len() > IDAT_BYTES + 1000);
        assert_eq!(decode(&file), ((width, height), pixels));
    }

    #[test]
    fn sizes_png_cannot_hold_are_errors() {
        assert!(encode(&[], (0, 3)).unwrap_err().contains("0×3"));
        assert!(encode(&[0; 6], (2, 2)).unwrap_err().contains("6 bytes"));
    }
}
