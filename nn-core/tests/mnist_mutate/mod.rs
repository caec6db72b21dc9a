//! Seeded random edits of a small valid MNIST, for `tests/mnist_mutations.rs`:
//! the files each case starts from ([`base_files`]) and how one case changes
//! them ([`mutate`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::Rng;

use super::mnist_fixtures::{gzip, idx, valid_set, IMAGE};
use nn_core::data::mnist::FILES;

/// Edits keep a file below this size (the premise of the memory bound).
pub const MAX_FILE: usize = 1 << 20;

/// The valid files every case starts from, in the order of [`FILES`], and
/// each gzipped (compressed once: most cases leave most files alone).
pub struct Base {
    /// The IDX files.
    pub raw: [Vec<u8>; 4],
    /// Each of them gzipped.
    pub gzipped: [Vec<u8>; 4],
}

/// The first 20 training and 10 test images of the real MNIST, or synthetic
/// ones when the data is not there.
pub fn base_files() -> Base {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist");
    let raw = real_slice(&dir).unwrap_or_else(|| {
        eprintln!("{}: no MNIST; mutating synthetic images", dir.display());
        valid_set()
    });
    let gzipped = raw.each_ref().map(|r| gzip(r));
    Base { raw, gzipped }
}

fn real_slice(dir: &Path) -> Option<[Vec<u8>; 4]> {
    let head = |name: &str, header: usize, n: usize, per: usize| -> Option<Vec<u8>> {
        let path: PathBuf = dir.join(format!("{name}.gz"));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).ok()?)
            .take((header + n * per) as u64)
            .read_to_end(&mut out)
            .ok()?;
        (out.len() == header + n * per).then(|| out.split_off(header))
    };
    let (train, test) = (20, 10);
    Some([
        idx(
            0x0803,
            &[train as u32, 28, 28],
            &head(FILES[0], 16, train, IMAGE)?,
        ),
        idx(0x0801, &[train as u32], &head(FILES[1], 8, train, 1)?),
        idx(
            0x0803,
            &[test as u32, 28, 28],
            &head(FILES[2], 16, test, IMAGE)?,
        ),
        idx(0x0801, &[test as u32], &head(FILES[3], 8, test, 1)?),
    ])
}

/// The four files as stored (one or two of them mutated), which of them are
/// gzipped, and a description of each edit.
pub fn mutate(base: &Base, rng: &mut StdRng) -> (Vec<Vec<u8>>, [bool; 4], Vec<String>) {
    let gz: [bool; 4] = std::array::from_fn(|_| rng.random_bool(0.5));
    let mut raw = base.raw.to_vec();
    let mut edits = Vec::new();
    let mut compressed_edits = [0; 4];
    for _ in 0..if rng.random_bool(0.8) { 1 } else { 2 } {
        let f = rng.random_range(0..4);
        // A gzipped file is edited before compression, after, or both.
        let (before, after) = match (gz[f], rng.random_range(0..3)) {
            (false, _) => (rng.random_range(1..=4), 0),
            (true, 0) => (rng.random_range(1..=3), 0),
            (true, 1) => (0, rng.random_range(1..=3)),
            (true, _) => (rng.random_range(1..=2), rng.random_range(1..=2)),
        };
        for _ in 0..before {
            let e = edit(&mut raw[f], base, rng, false);
            edits.push(format!("{}: {e}", FILES[f]));
        }
        compressed_edits[f] += after;
    }
    let mut stored = Vec::new();
    for (f, raw) in raw.iter().enumerate() {
        let mut bytes = match gz[f] {
            false => raw.clone(),
            true if *raw == base.raw[f] => base.gzipped[f].clone(),
            true => gzip(raw),
        };
        for _ in 0..compressed_edits[f] {
            let e = edit(&mut bytes, base, rng, true);
            edits.push(format!("{}.gz, compressed: {e}", FILES[f]));
        }
        stored.push(bytes);
    }
    let zipped: Vec<&str> = (0..4).filter(|&f| gz[f]).map(|f| FILES[f]).collect();
    edits.push(format!("gzipped: [{}]", zipped.join(", ")));
    (stored, gz, edits)
}

/// Dimension values at and around every edge the loader checks.
const DIMS: [u32; 18] = [
    0,
    1,
    2,
    9,
    10,
    19,
    20,
    21,
    27,
    28,
    29,
    784,
    60_000,
    65_536,
    1 << 24,
    0x7fff_ffff,
    0x8000_0000,
    u32::MAX,
];

/// One random edit of `bytes` (`compressed`: a gzip stream); its description.
fn edit(bytes: &mut Vec<u8>, base: &Base, rng: &mut StdRng, compressed: bool) -> String {
    let len = bytes.len();
    // A third of the single-byte edits hit the header (or the gzip header).
    let pos = |rng: &mut StdRng| {
        if len == 0 {
            0
        } else if rng.random_bool(1.0 / 3.0) {
            rng.random_range(0..len.min(16))
        } else {
            rng.random_range(0..len)
        }
    };
    let choice = rng.random_range(0..if compressed { 11 } else { 10 });
    // The first five pick a byte or range inside the file.
    if len == 0 && choice < 5 {
        bytes.push(rng.random());
        return "appended a random byte to an empty file".into();
    }
    match choice {
        0 => {
            let (p, bit) = (pos(rng), rng.random_range(0..8));
            bytes[p] ^= 1 << bit;
            format!("flipped bit {bit} of byte {p}")
        }
        1 => {
            let p = pos(rng);
            let v = [0, 255, rng.random()][rng.random_range(0..3)];
            bytes[p] = v;
            format!("set byte {p} to {v}")
        }
        2 => {
            let to = rng.random_range(0..len);
            bytes.truncate(to);
            format!("truncated to {to} bytes")
        }
        3 => {
            let (start, n) = range(rng, len);
            let at = rng.random_range(0..=len);
            let copy = bytes[start..start + n].to_vec();
            if len + n < MAX_FILE {
                bytes.splice(at..at, copy);
            }
            format!("copied bytes {start}..{} to {at}", start + n)
        }
        4 => {
            let (start, n) = range(rng, len);
            bytes.drain(start..start + n);
            format!("deleted bytes {start}..{}", start + n)
        }
        5 => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..=64);
            let new: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(at..at, new);
            format!("inserted {n} random bytes at {at}")
        }
        6 => {
            // A dimension (or, in a 1-dimensional file, the first data bytes).
            let which = rng.random_range(0..3);
            let v = if rng.random_bool(0.8) {
                DIMS[rng.random_range(0..DIMS.len())]
            } else {
                rng.random()
            };
            let at = 4 + 4 * which;
            if bytes.len() < at + 4 {
                bytes.resize(at + 4, 0);
            }
            bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
            format!("set header word {} to {v}", which + 1)
        }
        7 => {
            let p = rng.random_range(0..4.min(len.max(1)));
            if bytes.is_empty() {
                bytes.push(0);
            }
            let v = [0, 1, 3, 8, 9, 0x0d, 0x1f, 255, rng.random()][rng.random_range(0..9)];
            bytes[p] = v;
            format!("set magic byte {p} to {v}")
        }
        8 => {
            let other = rng.random_range(0..4);
            *bytes = if compressed {
                base.gzipped[other].clone()
            } else {
                base.raw[other].clone()
            };
            format!("replaced by the contents of {}", FILES[other])
        }
        9 => {
            let n = rng.random_range(1..=16);
            bytes.extend((0..n).map(|_| rng.random::<u8>()));
            format!("appended {n} random bytes")
        }
        _ => {
            let member = if rng.random_bool(0.5) {
                gzip(bytes)
            } else {
                gzip(b"x")
            };
            let n = member.len();
            if len + n < MAX_FILE {
                bytes.extend(member);
            }
            format!("appended a second gzip member of {n} bytes")
        }
    }
}

/// A random non-empty range of up to 4 KiB within `len > 0` bytes.
fn range(rng: &mut StdRng, len: usize) -> (usize, usize) {
    let start = rng.random_range(0..len);
    let n = rng.random_range(1..=(len - start).min(4096));
    (start, n)
}
