//! Building MNIST files at test time: IDX bytes, gzip, and a small valid set
//! to break one file of (`tests/mnist_hostile.rs`, `tests/mnist_mutations.rs`).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use nn_core::data::mnist::FILES;

/// Bytes in one 28×28 image.
pub const IMAGE: usize = 28 * 28;

/// An empty directory under the target's scratch space.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX file of unsigned bytes: magic, big-endian dimensions, data.
pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// `bytes` as one gzip member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `n` 28×28 images with something drawn in each.
pub fn images(n: usize) -> Vec<u8> {
    (0..n * IMAGE)
        .map(|i| ((i % IMAGE) * 7 + i / IMAGE * 13) as u8)
        .collect()
}

/// A valid set, in the order of [`FILES`]: 3 training images labelled
/// 0, 1, 2 and 2 test images labelled 9, 8.
pub fn valid_set() -> [Vec<u8>; 4] {
    [
        idx(0x0803, &[3, 28, 28], &images(3)),
        idx(0x0801, &[3], &[0, 1, 2]),
        idx(0x0803, &[2, 28, 28], &images(2)),
        idx(0x0801, &[2], &[9, 8]),
    ]
}

/// Writes `files` (in the order of [`FILES`]) into `dir`, each one already
/// gzip-compressed where `gz` says (named `.gz`) or plain; the other
/// spelling of each name is removed so the loader sees these alone.
pub fn write_set(dir: &Path, files: &[Vec<u8>], gz: [bool; 4]) {
    for ((name, bytes), gz) in FILES.iter().zip(files).zip(gz) {
        let (keep, other) = (dir.join(name), dir.join(format!("{name}.gz")));
        let (keep, other) = if gz { (other, keep) } else { (keep, other) };
        let _ = std::fs::remove_file(other);
        std::fs::write(keep, bytes).unwrap();
    }
}

/// Writes the valid set into `dir` (plain), then `name` (one of [`FILES`],
/// or it with `.gz`) holding `bytes` in place of its own.
pub fn write_with(dir: &Path, name: &str, bytes: &[u8]) {
    write_set(dir, &valid_set(), [false; 4]);
    let plain = name.trim_end_matches(".gz");
    std::fs::remove_file(dir.join(plain)).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}
