//! IDX files of unsigned bytes (the format MNIST ships in): a magic number,
//! big-endian `u32` dimensions, then exactly as many data bytes as they
//! multiply to. The header is read and checked first, so a caller can reject
//! it before any data is read; the data is read only as far as the header
//! declares, and anything after it is an error.

use std::path::Path;

use super::stream::Stream;
use super::MnistError;

/// An IDX header has one byte for its number of dimensions.
const MAX_DIMS: usize = 255;

/// An open IDX file whose header has been read and checked.
pub(super) struct IdxFile {
    stream: Stream,
    dims: Vec<usize>,
    /// The number of data bytes, `dims` multiplied (checked not to overflow).
    len: usize,
}

impl IdxFile {
    /// Opens `path` and reads its header, expecting unsigned bytes in `ndim`
    /// dimensions.
    pub fn open(path: &Path, ndim: usize) -> Result<IdxFile, MnistError> {
        let mut stream = Stream::open(path)?;
        if ndim > MAX_DIMS {
            return Err(stream.corrupt(format!(
                "cannot be read with {ndim} dimensions: an IDX file has at most {MAX_DIMS}"
            )));
        }
        let header_len = 4 + 4 * ndim;
        let short = |stream: &Stream, len: usize| {
            stream.corrupt(format!(
                "truncated: {len} bytes, shorter than the {header_len}-byte IDX header"
            ))
        };
        let mut magic = [0u8; 4];
        let got = stream.read_up_to(&mut magic)?;
        if got < magic.len() {
            return Err(short(&stream, got));
        }
        check_magic(&stream, u32::from_be_bytes(magic), ndim)?;
        let mut raw = vec![0u8; 4 * ndim];
        let got = stream.read_up_to(&mut raw)?;
        if got < raw.len() {
            return Err(short(&stream, 4 + got));
        }
        // `u32` always fits a 64-bit `usize`; on a 32-bit target a dimension
        // that does not fit is as unaddressable as an overflowing product.
        let dims: Vec<usize> = raw
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        // Three `u32`s can multiply past 2^64, and a `Vec` holds at most
        // `isize::MAX` bytes: either way no real file is that large.
        let len = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| isize::try_from(n).is_ok())
            .ok_or_else(|| {
                stream.corrupt(format!(
                    "the header's dimensions {dims:?} multiply to more than {} bytes, more than any file can hold: the header is corrupt",
                    isize::MAX
                ))
            })?;
        Ok(IdxFile { stream, dims, len })
    }

    /// The dimensions the header declares.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Reads the data: exactly what the dimensions need, with nothing after.
    pub fn read_data(self) -> Result<(Vec<usize>, Vec<u8>), MnistError> {
        self.read_data_as(|b| b)
    }

    /// [`IdxFile::read_data`], each byte stored as `convert` makes it.
    pub fn read_data_as<T>(
        self,
        convert: impl Fn(u8) -> T,
    ) -> Result<(Vec<usize>, Vec<T>), MnistError> {
        let IdxFile {
            mut stream,
            dims,
            len,
        } = self;
        let data = stream.read_at_most(len, convert)?;
        let what = match stream.known_len() {
            Some(_) => "the file",
            None => "the decompressed data",
        };
        if data.len() < len {
            return Err(stream.corrupt(format!(
                "truncated: dimensions {dims:?} need {len} data bytes, {what} has {}",
                data.len()
            )));
        }
        if stream.has_more()? {
            let header_len = 4 + 4 * dims.len() as u64;
            let has = match stream.known_len() {
                Some(total) if total > header_len + len as u64 => {
                    format!("{}", total - header_len)
                }
                _ => "more".to_string(),
            };
            return Err(stream.corrupt(format!(
                "too long: dimensions {dims:?} need {len} data bytes, {what} has {has}"
            )));
        }
        stream.finish()?;
        Ok((dims, data))
    }
}

/// Unsigned bytes (`0x08`) in `ndim` dimensions: `0x0000_08nn`.
fn check_magic(stream: &Stream, magic: u32, ndim: usize) -> Result<(), MnistError> {
    let expected = 0x0800 | ndim as u32;
    if magic == expected {
        return Ok(());
    }
    let hint = match (magic >> 16 == 0x1f8b, stream.known_len()) {
        (false, _) => String::new(),
        (true, Some(_)) => format!(
            "; it looks gzip-compressed: name it {}.gz",
            stream.path().display()
        ),
        (true, None) => "; it looks gzip-compressed twice: decompress it once more".into(),
    };
    Err(stream.corrupt(format!(
        "bad magic number 0x{magic:08x}: expected 0x{expected:08x} (unsigned bytes, {ndim} dimension{}){hint}",
        if ndim == 1 { "" } else { "s" }
    )))
}

/// Reads an IDX file of unsigned bytes with `ndim` dimensions (plain, or
/// gzip-compressed when its name ends in `.gz`), checking the magic number
/// and that the data length matches the dimensions exactly. Memory use is
/// bounded by the smaller of what the header declares and what the file
/// actually holds.
pub fn read_idx(path: &Path, ndim: usize) -> Result<(Vec<usize>, Vec<u8>), MnistError> {
    IdxFile::open(path, ndim)?.read_data()
}
