//! The MNIST loader: real files match their published SHA-256 sums and load;
//! broken files built on the fly are errors naming the file and the problem.

use std::io::Write;
use std::path::{Path, PathBuf};

use nn_core::data::mnist::{read_idx, Mnist, MnistError, FILES};
use sha2::{Digest, Sha256};

fn shared_mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mnist")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX file of unsigned bytes: magic, big-endian dimensions, data.
fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// 28×28 images, black but for each one's top-left 2×2 pixels, given row by row.
fn images(corners: &[[u8; 4]]) -> Vec<u8> {
    let mut pixels = vec![0; corners.len() * 784];
    for (image, c) in pixels.chunks_exact_mut(784).zip(corners) {
        image[..2].copy_from_slice(&c[..2]);
        image[28..30].copy_from_slice(&c[2..]);
    }
    pixels
}

/// A complete, valid tiny MNIST (2 training and 1 test image).
fn write_tiny(dir: &Path, gzip: bool) {
    let files = [
        idx(
            0x0803,
            &[2, 28, 28],
            &images(&[[0, 255, 128, 64], [1, 2, 3, 4]]),
        ),
        idx(0x0801, &[2], &[7, 3]),
        idx(0x0803, &[1, 28, 28], &images(&[[10, 20, 30, 40]])),
        idx(0x0801, &[1], &[9]),
    ];
    for (name, bytes) in FILES.iter().zip(files) {
        if gzip {
            let f = std::fs::File::create(dir.join(format!("{name}.gz"))).unwrap();
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn the_real_files_match_their_sha256_sums_and_load() {
    let dir = shared_mnist();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS.uncompressed")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the dataset lives in ../shared/data/mnist)",
            dir.display()
        )
    });
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, name) = line.split_once(char::is_whitespace).unwrap();
        let name = name.trim().trim_start_matches('*');
        let gz = std::fs::read(dir.join(format!("{name}.gz"))).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut raw)
            .unwrap();
        let digest: String = Sha256::digest(&raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, sum, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 4);

    let mnist = Mnist::load(&dir).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    assert_eq!(mnist.train.sample_shape(), &[28, 28]);
    assert!(mnist
        .train
        .inputs()
        .iter()
        .all(|&p| (0.0..=1.0).contains(&p)));
    // The first training label of MNIST is 5, the first test label 7.
    assert_eq!((mnist.train.labels()[0], mnist.test.labels()[0]), (5, 7));
}

#[test]
fn plain_and_gzipped_files_load_alike() {
    for gzip in [false, true] {
        let dir = scratch(&format!("tiny_{gzip}"));
        write_tiny(&dir, gzip);
        let m = Mnist::load(&dir).unwrap();
        assert_eq!(m.train.labels(), &[7, 3]);
        assert_eq!(m.test.labels(), &[9]);
        assert_eq!(m.train.inputs()[[0, 0, 1]], 1.0); // 255 / 255
        assert_eq!(m.train.inputs()[[0, 1, 0]], 128.0 / 255.0);
    }
}

#[test]
fn a_truncated_file_is_an_error_naming_it() {
    let dir = scratch("truncated");
    write_tiny(&dir, false);
    let path = dir.join(FILES[0]);
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() - 3]).unwrap();
    let err = Mnist::load(&dir).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MnistError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("train-images-idx3-ubyte")
            && msg.contains(
                "truncated: dimensions [2, 28, 28] need 1568 data bytes, the file has 1565"
            ),
        "{msg}"
    );

    std::fs::write(&path, [0u8, 0, 8]).unwrap();
    let msg = Mnist::load(&dir).unwrap_err().to_string();
    assert!(msg.contains("shorter than the 16-byte IDX header"), "{msg}");
}

#[test]
fn a_wrong_magic_number_is_an_error_naming_it() {
    let dir = scratch("magic");
    write_tiny(&dir, false);
    // A labels file where the images should be.
    std::fs::write(dir.join(FILES[2]), idx(0x0801, &[1], &[9])).unwrap();
    let msg = Mnist::load(&dir).unwrap_err().to_string();
    assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    assert!(
        msg.contains("bad magic number 0x00000801: expected 0x00000803"),
        "{msg}"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = scratch("missing");
    write_tiny(&dir, false);
    std::fs::remove_file(dir.join(FILES[3])).unwrap();
    let err = Mnist::load(&dir).unwrap_err();
    assert!(matches!(err, MnistError::MissingFile { .. }));
    assert!(err.to_string().ends_with("t10k-labels-idx1-ubyte: missing (expected t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz)"), "{err}");

    // A directory under the file's name is not reported as missing.
    std::fs::create_dir(dir.join(FILES[3])).unwrap();
    let msg = Mnist::load(&dir).unwrap_err().to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte: not a file"), "{msg}");
}

#[test]
fn mismatched_counts_and_bad_labels_are_errors() {
    let dir = scratch("counts");
    write_tiny(&dir, false);
    std::fs::write(dir.join(FILES[1]), idx(0x0801, &[3], &[1, 2, 3])).unwrap();
    let msg = Mnist::load(&dir).unwrap_err().to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte: 3 labels for 2 images"),
        "{msg}"
    );
    std::fs::write(dir.join(FILES[1]), idx(0x0801, &[2], &[1, 12])).unwrap();
    let msg = Mnist::load(&dir).unwrap_err().to_string();
    assert!(msg.contains("label 12 is not a digit 0-9"), "{msg}");
}

#[test]
fn corrupt_gzip_is_an_io_error_naming_the_file() {
    let dir = scratch("badgz");
    // gzip's header (magic, deflate, no flags, time, flags, OS), then a
    // deflate block of the reserved type 3: the decompressor refuses it.
    let mut bytes = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    bytes.extend_from_slice(&[0xff; 16]);
    std::fs::write(dir.join("x.gz"), &bytes).unwrap();
    let err = read_idx(&dir.join("x.gz"), 1).unwrap_err();
    assert!(
        matches!(err, MnistError::Io { .. }) && err.to_string().contains("x.gz"),
        "{err}"
    );
    // Not gzip at all: said so.
    std::fs::write(dir.join("x.gz"), b"definitely not gzip").unwrap();
    let err = read_idx(&dir.join("x.gz"), 1).unwrap_err();
    assert!(
        matches!(err, MnistError::Corrupt { .. })
            && err.to_string().contains("x.gz: not a gzip file"),
        "{err}"
    );
}

#[test]
fn the_not_found_error_lists_every_place_and_file() {
    let err = MnistError::NotFound {
        searched: vec![PathBuf::from("/a"), PathBuf::from("/b")],
    };
    let msg = err.to_string();
    assert!(msg.contains("  /a\n  /b"), "{msg}");
    for f in FILES {
        assert!(msg.contains(f), "{msg}");
    }
    assert!(msg.contains("MNIST_DIR"));
}
