//! Mutation testing of weight loading (`nn_core::io::load_params`), fuzzing
//! on stable Rust: a valid safetensors file of a small model's parameters
//! and buffers gets seeded random edits — bit flips; bytes set to 0, 255 or
//! random; truncation; ranges deleted, duplicated or inserted; the header's
//! length prefix changed; header text edited (names, dtypes, shapes,
//! offsets) — and is loaded into the model.
//!
//! Every case must not panic, and either load (every parameter keeping its
//! shape) or return an error that names the file, leaving every parameter
//! exactly as it was.
//!
//! By default 2,000 cases run as part of `cargo test`; at length:
//! `NN_MUTATIONS=1000000 cargo test --release -p nn-core --test weights_mutations -- --nocapture`
//! (`NN_MUTATION_SEED` changes the sequence).

use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{ArrayD, Dimension, IxDyn};
use nn_core::io::{load_params, serialize_tensors};
use nn_core::Param;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn model() -> Vec<(String, Param<f32>)> {
    let p = |shape: &[usize], salt: f32| {
        Param::new(ArrayD::from_shape_fn(IxDyn(shape), |i| {
            i.slice().iter().sum::<usize>() as f32 * 0.25 + salt
        }))
    };
    vec![
        ("conv.weight".into(), p(&[4, 1, 3, 3], 0.5)),
        ("conv.bias".into(), p(&[4], -1.0)),
        ("bn.running_mean".into(), p(&[4], 2.0)),
        ("dense.weight".into(), p(&[3, 16], 0.1)),
        ("dense.bias".into(), p(&[3], 0.0)),
    ]
}

fn values(params: &[(String, Param<f32>)]) -> Vec<ArrayD<f32>> {
    params.iter().map(|(_, p)| p.value().clone()).collect()
}

/// One seeded edit of `bytes`.
fn mutate(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    let len = bytes.len().max(1);
    match rng.random_range(0..9) {
        0 => {
            let i = rng.random_range(0..len).min(bytes.len().saturating_sub(1));
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << rng.random_range(0..8);
            }
        }
        1 => {
            let i = rng.random_range(0..len).min(bytes.len().saturating_sub(1));
            let v = [0u8, 255, rng.random()][rng.random_range(0..3)];
            if let Some(b) = bytes.get_mut(i) {
                *b = v;
            }
        }
        2 => bytes.truncate(rng.random_range(0..len)),
        3 => {
            let a = rng.random_range(0..len).min(bytes.len());
            let b = rng.random_range(a..=bytes.len().max(a));
            bytes.drain(a..b);
        }
        4 => {
            let a = rng.random_range(0..len).min(bytes.len());
            let b = (a + rng.random_range(0..64)).min(bytes.len());
            let copy = bytes[a..b].to_vec();
            let at = rng.random_range(0..=bytes.len());
            bytes.splice(at..at, copy);
        }
        5 if bytes.len() >= 8 => {
            // The header's length prefix, u64 little-endian.
            let n =
                [0u64, 1, 7, u64::MAX, 1 << 40, rng.random_range(0..4096)][rng.random_range(0..6)];
            bytes[..8].copy_from_slice(&n.to_le_bytes());
        }
        6 | 7 => {
            // Header text: swap one token for another that parses but lies.
            let header_len = bytes
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
                .unwrap_or(0);
            let end = header_len.saturating_add(8).min(bytes.len());
            let Ok(text) = std::str::from_utf8(&bytes[8.min(end)..end]) else {
                return;
            };
            let swaps = [
                ("F32", "F64"),
                ("F32", "I64"),
                ("F32", "U8"),
                ("[4]", "[5]"),
                ("[4]", "[0]"),
                ("[3,16]", "[16,3]"),
                ("[3,16]", "[3,16,1]"),
                ("4,1,3,3", "4,1,3,300000000000"),
                ("conv.bias", "conv.biaz"),
                ("dense.weight", "dense.bias"),
                ("data_offsets\":[0", "data_offsets\":[8"),
            ];
            let (from, to) = swaps[rng.random_range(0..swaps.len())];
            if let Some(at) = text.find(from) {
                let mut edited = text.to_string();
                edited.replace_range(at..at + from.len(), to);
                let mut out = bytes[..8].to_vec();
                if rng.random_bool(0.5) {
                    out = (edited.len() as u64).to_le_bytes().to_vec();
                }
                out.extend_from_slice(edited.as_bytes());
                out.extend_from_slice(&bytes[end..]);
                *bytes = out;
            }
        }
        _ => {
            let extra: Vec<u8> = (0..rng.random_range(1..32)).map(|_| rng.random()).collect();
            bytes.extend(extra);
        }
    }
}

#[test]
fn mutated_weight_files_load_cleanly_or_fail_changing_nothing() {
    let cases: usize = std::env::var("NN_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let seed: u64 = std::env::var("NN_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(17);
    let params = model();
    let tensors: Vec<(String, ArrayD<f32>)> = params
        .iter()
        .map(|(n, p)| (n.clone(), p.value().clone()))
        .collect();
    let dir = std::env::temp_dir().join(format!("nn_weights_mut_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("weights.safetensors");
    let valid = serialize_tensors(&path, &tensors, None).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut loaded, mut refused) = (0, 0);
    for case in 0..cases {
        let mut bytes = valid.clone();
        for _ in 0..rng.random_range(1..4) {
            mutate(&mut bytes, &mut rng);
        }
        std::fs::write(&path, &bytes).unwrap();
        let fresh = model();
        let before = values(&fresh);
        let result = catch_unwind(AssertUnwindSafe(|| load_params(&path, &fresh)));
        let Ok(result) = result else {
            let kept = dir.join(format!("panic-{case}.safetensors"));
            std::fs::write(&kept, &bytes).unwrap();
            panic!(
                "case {case} (seed {seed}) panicked; the file is at {}",
                kept.display()
            );
        };
        match result {
            Ok(()) => {
                loaded += 1;
                for ((name, p), b) in fresh.iter().zip(&before) {
                    assert_eq!(
                        p.value().shape(),
                        b.shape(),
                        "case {case}: {name} changed shape"
                    );
                }
            }
            Err(e) => {
                refused += 1;
                assert!(
                    e.to_string().contains("weights.safetensors"),
                    "case {case}: the error does not name the file: {e}"
                );
                assert_eq!(
                    values(&fresh),
                    before,
                    "case {case}: a refused load changed weights"
                );
            }
        }
    }
    println!("{cases} cases: {loaded} loaded, {refused} refused, no panic");
    assert!(
        refused > cases / 4,
        "the mutations barely touch the file: {refused} refused"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
