//! The bytes of one file, plain or gzip-compressed (`.gz`), read under limits
//! set by what its header declares, so that a hostile file costs no more
//! memory than an honest one of the size it claims.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use super::MnistError;

/// Bytes moved per read; also the smallest step a growing buffer takes.
const CHUNK: usize = 64 * 1024;

/// A gzip file is given a buffer of at most this many times its compressed
/// size before its data has arrived. IDX files compress about 5:1 (MNIST's
/// training images: 9.9 MB to 47 MB), so an honest file still gets its whole
/// buffer at once, while a tiny file claiming gigabytes gets little until the
/// bytes actually decompress.
const GZIP_PREALLOCATION_RATIO: u64 = 8;

/// A readable file, decompressed on the fly when its name ends in `.gz`.
pub(super) struct Stream {
    path: PathBuf,
    /// Its size on disk.
    stored: u64,
    inner: Inner,
}

enum Inner {
    Plain(BufReader<File>),
    // The `bufread` decoder, unlike `read::GzDecoder`, keeps no buffer of its
    // own, so what follows the gzip member stays readable in the `BufReader`.
    Gzip(Box<GzDecoder<BufReader<File>>>),
}

impl Read for Inner {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
        }
    }
}

impl Stream {
    /// Opens `path`; a name ending in `.gz` is decompressed as it is read.
    pub fn open(path: &Path) -> Result<Stream, MnistError> {
        let io = |source| MnistError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let stored = file.metadata().map_err(io)?.len();
        let mut file = BufReader::new(file);
        let inner = if path.extension().is_some_and(|e| e == "gz") {
            // Not gzip at all (a text file, an uncompressed copy named
            // `.gz`) is said so, not read as a truncated stream.
            let head = file.fill_buf().map_err(io)?;
            if !head.is_empty() && !head.starts_with(&[0x1f, 0x8b]) {
                return Err(MnistError::Corrupt {
                    path: path.to_path_buf(),
                    problem: format!(
                        "not a gzip file: it starts with bytes {:02x?}, not gzip's 1f 8b \
                         (an uncompressed IDX file is read without the .gz)",
                        &head[..head.len().min(4)]
                    ),
                });
            }
            Inner::Gzip(Box::new(GzDecoder::new(file)))
        } else {
            Inner::Plain(file)
        };
        Ok(Stream {
            path: path.to_path_buf(),
            stored,
            inner,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The (decompressed) data's length as the file system tells it, where it
    /// can: for a plain file, its size.
    pub fn known_len(&self) -> Option<u64> {
        matches!(self.inner, Inner::Plain(_)).then_some(self.stored)
    }

    /// An error about the contents, naming the file.
    pub fn corrupt(&self, problem: String) -> MnistError {
        MnistError::Corrupt {
            path: self.path.clone(),
            problem,
        }
    }

    /// Fills `buf` unless the data ends first; returns how much was read.
    pub fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, MnistError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(filled)
    }

    /// Reads up to `len` bytes (fewer if the data ends first), each stored as
    /// `convert` makes it (the pixels go straight to `f32`: no byte copy of
    /// the data is held beside them). The buffer grows as bytes arrive and
    /// never past `len` values; up front it gets only what the file on disk
    /// can plausibly hold, so a header's claim alone allocates nothing large.
    pub fn read_at_most<T>(
        &mut self,
        len: usize,
        convert: impl Fn(u8) -> T,
    ) -> Result<Vec<T>, MnistError> {
        let plausible = match self.inner {
            Inner::Plain(_) => self.stored,
            Inner::Gzip(_) => self.stored.saturating_mul(GZIP_PREALLOCATION_RATIO),
        };
        let mut data = Vec::new();
        self.reserve(
            &mut data,
            len.min(usize::try_from(plausible).unwrap_or(len)),
        )?;
        let mut chunk = vec![0u8; CHUNK.min(len)];
        while data.len() < len {
            let want = chunk.len().min(len - data.len());
            let n = self.read_up_to(&mut chunk[..want])?;
            if data.capacity() - data.len() < n {
                // Double, as `Vec` would, but stop at `len`.
                let step = data.len().max(CHUNK).min(len - data.len());
                self.reserve(&mut data, step)?;
            }
            data.extend(chunk[..n].iter().map(|&b| convert(b)));
            if n < want {
                break;
            }
        }
        Ok(data)
    }

    /// Whether any data is left (reads at most one more byte).
    pub fn has_more(&mut self) -> Result<bool, MnistError> {
        Ok(self.read_up_to(&mut [0u8])? > 0)
    }

    /// Checks that nothing follows the data: for a gzip file, nothing after
    /// its one gzip member (call once [`Stream::has_more`] says the data has
    /// ended). A second member would be data this loader did not read.
    pub fn finish(self) -> Result<(), MnistError> {
        let Inner::Gzip(decoder) = self.inner else {
            return Ok(());
        };
        let mut rest = decoder.into_inner();
        let io = |source| MnistError::Io {
            path: self.path.clone(),
            source,
        };
        let next = rest.fill_buf().map_err(io)?;
        if next.is_empty() {
            return Ok(());
        }
        let second_member = next.starts_with(&[0x1f, 0x8b]);
        // Counted without keeping them: at most the file's size is read.
        let extra = io::copy(&mut rest, &mut io::sink()).map_err(io)?;
        let problem = if second_member {
            format!("a second gzip member ({extra} bytes) follows the first; only single-member .gz files are read (decompress it and compress it again as one)")
        } else {
            format!("{extra} bytes of trailing garbage after the end of the gzip data")
        };
        Err(MnistError::Corrupt {
            path: self.path,
            problem,
        })
    }

    fn reserve<T>(&self, data: &mut Vec<T>, additional: usize) -> Result<(), MnistError> {
        data.try_reserve_exact(additional)
            .map_err(|_| MnistError::Io {
                path: self.path.clone(),
                source: io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "not enough memory for the {} bytes of data its header declares",
                        data.len() + additional
                    ),
                ),
            })
    }

    /// A read error; the decompressor's are reworded to say what they mean
    /// (plain file errors never have these kinds).
    fn io(&self, e: io::Error) -> MnistError {
        let gzip = matches!(self.inner, Inner::Gzip(_));
        let source = match e.kind() {
            io::ErrorKind::UnexpectedEof if gzip => io::Error::new(
                e.kind(),
                format!("the gzip data ends early, so the file is truncated ({e})"),
            ),
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if gzip => {
                io::Error::new(e.kind(), format!("not valid gzip data ({e})"))
            }
            _ => e,
        };
        MnistError::Io {
            path: self.path.clone(),
            source,
        }
    }
}
