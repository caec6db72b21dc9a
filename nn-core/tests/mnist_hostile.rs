//! Hostile MNIST files, one regression test per problem a probe found (or
//! could have): each is built in a scratch directory at test time and must
//! be an error that names the file and the problem, never a panic, and never
//! cost more memory than the header's claim or the file's actual contents.

mod mnist_fixtures;
mod peak;

use std::io::Write;
use std::path::Path;

use mnist_fixtures::{gzip, idx, scratch, valid_set, write_set, write_with, IMAGE};
use nn_core::data::mnist::{read_idx, Mnist, MnistError, FILES};
use peak::peak_during;

const TRAIN_IMAGES: &str = FILES[0];
const TRAIN_LABELS: &str = FILES[1];

/// Loading `dir` fails with `Corrupt` about `file`, saying `problem`.
fn assert_corrupt(dir: &Path, file: &str, problem: &str) {
    let err = Mnist::load(dir).unwrap_err();
    assert_corrupt_err(&err, &dir.join(file), problem);
}

fn assert_corrupt_err(err: &MnistError, path: &Path, problem: &str) {
    let msg = err.to_string();
    assert!(
        matches!(err, MnistError::Corrupt { path: p, .. } if p == path),
        "{msg}"
    );
    assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
    assert!(msg.contains(problem), "{msg}");
}

/// Loading `dir` fails with `Io` about `file`, saying `problem`: how broken
/// gzip compression is reported.
fn assert_io(dir: &Path, file: &str, problem: &str) {
    let err = Mnist::load(dir).unwrap_err();
    let msg = err.to_string();
    let path = dir.join(file);
    assert!(
        matches!(&err, MnistError::Io { path: p, .. } if *p == path),
        "{msg}"
    );
    assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
    assert!(msg.contains(problem), "{msg}");
}

#[test]
fn dimensions_that_multiply_past_2_pow_64_are_an_error_not_a_panic() {
    let dir = scratch("hostile_overflow");
    let huge = idx(0x0803, &[u32::MAX; 3], &[0; 64]);
    write_with(&dir, TRAIN_IMAGES, &huge);
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "the header's dimensions [4294967295, 4294967295, 4294967295] multiply to more than",
    );

    // The reproducer, 2^32 × 2^32 × 2, read as a bare IDX file and gzipped.
    let name = format!("{TRAIN_IMAGES}.gz");
    write_with(
        &dir,
        &name,
        &gzip(&idx(0x0803, &[u32::MAX, u32::MAX, 2], &[1; 8])),
    );
    let err = read_idx(&dir.join(&name), 3).unwrap_err();
    assert_corrupt_err(&err, &dir.join(&name), "the header is corrupt");
}

#[test]
fn a_header_claiming_terabytes_allocates_only_what_the_file_holds() {
    let dir = scratch("hostile_claim");
    // 2^16 × 2^16 × 2^16 = 2^48 bytes claimed; 1000 present.
    let claim = idx(0x0803, &[1 << 16; 3], &[7; 1000]);
    for (name, bytes) in [("x", claim.clone()), ("x.gz", gzip(&claim))] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (result, peak) = peak_during(|| read_idx(&path, 3));
        let has = if name == "x" {
            "the file"
        } else {
            "the decompressed data"
        };
        assert_corrupt_err(
            &result.unwrap_err(),
            &path,
            &format!(
                "truncated: dimensions [65536, 65536, 65536] need 281474976710656 data bytes, {has} has 1000"
            ),
        );
        assert!(peak < 1 << 20, "{name}: {peak} bytes at peak");
    }
}

/// The bomb: a small `.gz` claiming 60000×28×28 whose stream holds
/// 1 GiB. The old loader decompressed all of it (1.06 GB) before objecting.
#[test]
fn a_gzip_stream_holding_more_than_its_header_declares_is_cut_off() {
    let dir = scratch("hostile_bomb");
    write_set(&dir, &valid_set(), [false; 4]);
    let declared = 60_000 * IMAGE;
    let name = format!("{TRAIN_IMAGES}.gz");
    std::fs::remove_file(dir.join(TRAIN_IMAGES)).unwrap();
    let file = std::fs::File::create(dir.join(&name)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    gz.write_all(&idx(0x0803, &[60_000, 28, 28], &[])).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap();
    std::fs::write(dir.join(TRAIN_LABELS), idx(0x0801, &[60_000], &[3; 60_000])).unwrap();
    let size = std::fs::metadata(dir.join(&name)).unwrap().len();
    assert!(size < 8 << 20, "{size} bytes compressed");

    let (result, peak) = peak_during(|| Mnist::load(&dir));
    assert_corrupt_err(
        &result.unwrap_err(),
        &dir.join(&name),
        "too long: dimensions [60000, 28, 28] need 47040000 data bytes, the decompressed data has more",
    );
    // The pixel buffer (an f32 for each declared byte) grows to the declared
    // size and no further; while it last grows, its old block is counted
    // too, hence twice.
    let floats = declared * size_of::<f32>();
    assert!(peak < 2 * floats, "{peak} bytes at peak");
}

#[test]
fn trailing_bytes_after_the_data_are_an_error() {
    let dir = scratch("hostile_trailing");
    let mut long = valid_set()[0].clone();
    long.extend_from_slice(b"extra");
    write_with(&dir, TRAIN_IMAGES, &long);
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "too long: dimensions [3, 28, 28] need 2352 data bytes, the file has 2357",
    );
    // The same bytes inside a gzip stream.
    let name = format!("{TRAIN_IMAGES}.gz");
    write_with(&dir, &name, &gzip(&long));
    assert_corrupt(
        &dir,
        &name,
        "too long: dimensions [3, 28, 28] need 2352 data bytes, the decompressed data has more",
    );
}

#[test]
fn images_that_are_not_28_by_28_are_an_error() {
    let dir = scratch("hostile_2x2");
    write_with(&dir, TRAIN_IMAGES, &idx(0x0803, &[3, 2, 2], &[9; 12]));
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "images are 2×2 pixels; MNIST's are 28×28",
    );
}

#[test]
fn an_empty_set_is_an_error() {
    let dir = scratch("hostile_empty_set");
    write_with(&dir, TRAIN_IMAGES, &idx(0x0803, &[0, 28, 28], &[]));
    std::fs::write(dir.join(TRAIN_LABELS), idx(0x0801, &[0], &[])).unwrap();
    assert_corrupt(&dir, TRAIN_IMAGES, "holds no images (0 in its header)");

    // An empty file is not an IDX file at all.
    write_with(&dir, TRAIN_IMAGES, &[]);
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "truncated: 0 bytes, shorter than the 16-byte IDX header",
    );
}

#[test]
fn gzip_followed_by_garbage_is_an_error() {
    let dir = scratch("hostile_gz_garbage");
    let name = format!("{TRAIN_IMAGES}.gz");
    let mut bytes = gzip(&valid_set()[0]);
    bytes.extend_from_slice(b"garbage");
    write_with(&dir, &name, &bytes);
    assert_corrupt(
        &dir,
        &name,
        "7 bytes of trailing garbage after the end of the gzip data",
    );
}

#[test]
fn a_second_gzip_member_is_an_error() {
    let dir = scratch("hostile_gz_members");
    let name = format!("{TRAIN_IMAGES}.gz");
    let set = valid_set();
    // The data split across two members: a reader of one member sees too
    // little, a reader of all would accept it; neither is what was shipped.
    let (first, second) = set[0].split_at(1000);
    let mut bytes = gzip(&set[0]);
    let member = gzip(b"more");
    bytes.extend_from_slice(&member);
    write_with(&dir, &name, &bytes);
    assert_corrupt(
        &dir,
        &name,
        &format!(
            "a second gzip member ({} bytes) follows the first; only single-member .gz files are read",
            member.len()
        ),
    );
    let mut split = gzip(first);
    split.extend_from_slice(&gzip(second));
    write_with(&dir, &name, &split);
    assert_corrupt(
        &dir,
        &name,
        "truncated: dimensions [3, 28, 28] need 2352 data bytes, the decompressed data has 984",
    );
}

#[test]
fn a_label_that_is_not_a_digit_is_an_error() {
    let dir = scratch("hostile_label");
    write_with(&dir, TRAIN_LABELS, &idx(0x0801, &[3], &[0, 10, 2]));
    assert_corrupt(&dir, TRAIN_LABELS, "label 10 is not a digit 0-9 (image 1)");
}

#[test]
fn counts_that_differ_are_an_error_naming_both_files() {
    let dir = scratch("hostile_counts");
    write_with(&dir, TRAIN_LABELS, &idx(0x0801, &[2], &[0, 1]));
    assert_corrupt(
        &dir,
        TRAIN_LABELS,
        &format!(
            "2 labels for 3 images in {}",
            dir.join(TRAIN_IMAGES).display()
        ),
    );
}

#[test]
fn truncated_data_is_an_error() {
    let dir = scratch("hostile_truncated");
    let full = &valid_set()[0];
    write_with(&dir, TRAIN_IMAGES, &full[..100]);
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "truncated: dimensions [3, 28, 28] need 2352 data bytes, the file has 84",
    );
    write_with(&dir, TRAIN_IMAGES, &full[..10]);
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "truncated: 10 bytes, shorter than the 16-byte IDX header",
    );
    // A cut gzip stream: the decompressor notices before the IDX reader does.
    let name = format!("{TRAIN_IMAGES}.gz");
    let gz = gzip(full);
    write_with(&dir, &name, &gz[..gz.len() / 2]);
    assert_io(
        &dir,
        &name,
        "the gzip data ends early, so the file is truncated",
    );
}

#[test]
fn broken_gzip_is_an_error_naming_the_file() {
    let dir = scratch("hostile_gz_broken");
    let name = format!("{TRAIN_IMAGES}.gz");
    let mut gz = gzip(&valid_set()[0]);
    // The CRC-32 of the data, in the 8-byte trailer.
    let crc = gz.len() - 8;
    gz[crc] ^= 1;
    write_with(&dir, &name, &gz);
    assert_io(&dir, &name, "not valid gzip data");
    // Not gzip at all, long or shorter than gzip's header: said so, not
    // read as a truncated stream.
    write_with(&dir, &name, b"not gzip at all");
    assert_corrupt(
        &dir,
        &name,
        "not a gzip file: it starts with bytes [6e, 6f, 74, 20], not gzip's 1f 8b",
    );
    write_with(&dir, &name, b"hello\n");
    assert_corrupt(&dir, &name, "not a gzip file");
}

#[test]
fn a_bad_magic_number_is_an_error() {
    let dir = scratch("hostile_magic");
    // 0x0d: IDX's code for 32-bit floats, not MNIST's unsigned bytes.
    write_with(
        &dir,
        TRAIN_IMAGES,
        &idx(0x0d03, &[3, 28, 28], &[0; 3 * IMAGE * 4]),
    );
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        "bad magic number 0x00000d03: expected 0x00000803 (unsigned bytes, 3 dimensions)",
    );
    // Compressed data under a plain name.
    write_with(&dir, TRAIN_IMAGES, &gzip(&valid_set()[0]));
    assert_corrupt(
        &dir,
        TRAIN_IMAGES,
        &format!(
            "it looks gzip-compressed: name it {}.gz",
            dir.join(TRAIN_IMAGES).display()
        ),
    );
    let name = format!("{TRAIN_IMAGES}.gz");
    write_with(&dir, &name, &gzip(&gzip(&valid_set()[0])));
    assert_corrupt(
        &dir,
        &name,
        "it looks gzip-compressed twice: decompress it once more",
    );
}

/// The only test here that reads `MNIST_DIR`; no other test in this binary
/// reads or sets it, so setting it cannot disturb them.
#[test]
fn mnist_dir_without_the_files_is_an_error_naming_it_not_a_fallback() {
    let dir = scratch("hostile_mnist_dir");
    std::fs::write(dir.join(FILES[0]), valid_set()[0].clone()).unwrap();
    std::env::set_var("MNIST_DIR", &dir);
    let err = Mnist::load_default();
    std::env::remove_var("MNIST_DIR");
    let err = err.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MnistError::BadMnistDir { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "MNIST_DIR is set to {}, but it lacks train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte;",
            dir.display()
        )),
        "{msg}"
    );
}
