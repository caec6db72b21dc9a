//! Seeded mutations of saved optimizer states (flipped bytes, truncation,
//! edited header and metadata): reading and loading each is `Ok` or an
//! error, never a panic, and a refused load leaves the optimizer as it was.
//!
//! A few hundred mutations by default; `NN_MUTATIONS=N` for more,
//! `NN_MUTATION_SEED=S` for another sequence. Counts print with `--nocapture`.

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::{model, optimizers, scratch, train, Make};
use nn_optim::OptimizerState;
use serde_json::{json, Value};

/// SplitMix64: a dependency-free, reproducible sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const GARBAGE: [&str; 16] = [
    "",
    "NaN",
    "inf",
    "-inf",
    "-5",
    "-1",
    "0",
    "1e400",
    "2147483647",
    "4294967296",
    "18446744073709551616",
    "abc",
    "1.5",
    " 3",
    "Adam",
    "SGD",
];
/// Malformed names, and well-formed ones of other parameters and buffers.
const NAMES: [&str; 13] = [
    "",
    "lr",
    "x",
    "/step",
    "layer.bias/",
    "/exp_avg",
    "layer.bias/unknown",
    "other/exp_avg",
    "layer.weight/step",
    "layer.bias/step",
    "layer.bias/exp_avg_sq",
    "layer.weight/sum",
    "layer.weight/momentum_buffer",
];
const DIMS: [u64; 9] = [0, 1, 2, 3, 5, 6, 1 << 20, 1 << 40, 1 << 62];
const DTYPES: [&str; 7] = ["F64", "F16", "BF16", "I32", "U8", "BOOL", "XYZ"];

/// The file's header as JSON, and its data.
fn split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let text = header.to_string();
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// One random edit of the header: metadata, tensor names, shapes, dtypes,
/// offsets.
fn edit_header(rng: &mut Rng, header: &mut Value) {
    let obj = header.as_object_mut().unwrap();
    let tensors: Vec<String> = obj
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    let meta = obj["__metadata__"].as_object_mut().unwrap();
    let meta_keys: Vec<String> = meta.keys().cloned().collect();
    match rng.below(9) {
        0 => {
            let key = rng.pick(&meta_keys).clone();
            meta.insert(key, json!(rng.pick(&GARBAGE)));
        }
        1 => {
            meta.remove(rng.pick(&meta_keys));
        }
        2 => {
            meta.insert(rng.pick(&NAMES).to_string(), json!(rng.pick(&GARBAGE)));
        }
        _ if tensors.is_empty() => {}
        3 => {
            let entry = obj.remove(rng.pick(&tensors)).unwrap();
            obj.insert(rng.pick(&NAMES).to_string(), entry);
        }
        4 => {
            let shape: Vec<u64> = (0..rng.below(4)).map(|_| *rng.pick(&DIMS)).collect();
            obj[rng.pick(&tensors)]["shape"] = json!(shape);
        }
        5 => obj[rng.pick(&tensors)]["dtype"] = json!(rng.pick(&DTYPES)),
        // The same size, transposed: only the model can tell.
        6 => {
            let shape = &mut obj[rng.pick(&tensors)]["shape"];
            shape.as_array_mut().unwrap().reverse();
        }
        7 => {
            let offsets = &mut obj[rng.pick(&tensors)]["data_offsets"];
            let i = rng.below(2);
            let old = offsets[i].as_u64().unwrap();
            offsets[i] = json!(old.wrapping_add(rng.below(9) as u64).wrapping_sub(4));
        }
        _ => {
            obj.remove(rng.pick(&tensors));
        }
    }
}

/// A mutated copy of `bytes`.
fn mutate(rng: &mut Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    match rng.below(6) {
        // Anywhere, or only in the values (NaN, huge, negative squares).
        flip @ (0 | 1) => {
            let start = if flip == 0 { 0 } else { header_end };
            for _ in 0..1 + rng.below(8) {
                let i = start + rng.below(out.len() - start);
                out[i] ^= 1 + rng.below(255) as u8;
            }
        }
        2 => out.truncate(rng.below(bytes.len())),
        3 => out[..8].copy_from_slice(&rng.next().to_le_bytes()),
        _ => {
            let (mut header, data) = split(bytes);
            for _ in 0..1 + rng.below(3) {
                edit_header(rng, &mut header);
            }
            out = join(&header, &data);
        }
    }
    out
}

#[derive(Default, Debug)]
struct Counts {
    unreadable: usize,
    refused: usize,
    accepted: usize,
}

/// Reads `path` and loads it into a fresh `make()` that has trained a step:
/// refused unchanged, or accepted and able to train on.
fn check(path: &Path, make: Make, counts: &mut Counts) {
    let Ok(state) = OptimizerState::<f32>::load(path) else {
        counts.unreadable += 1;
        return;
    };
    let m = model();
    let mut opt = make();
    train(opt.as_mut(), &m, 0..1);
    let before = opt.state();
    match opt.load_state_for(state, &m) {
        Err(_) => {
            assert_eq!(opt.state(), before, "a refused load changed the state");
            counts.refused += 1;
        }
        Ok(()) => {
            train(opt.as_mut(), &m, 1..3);
            counts.accepted += 1;
        }
    }
}

#[test]
fn mutated_state_files_never_panic() {
    let mutations = env_or("NN_MUTATIONS", 300);
    let mut rng = Rng(env_or("NN_MUTATION_SEED", 0x5eed));
    let dir = scratch("mutation");
    let bases: Vec<_> = optimizers()
        .into_iter()
        .map(|(name, make)| {
            let mut opt = make();
            train(opt.as_mut(), &model(), 0..3);
            let path = dir.join(format!("{name}.safetensors"));
            opt.state().save(&path).unwrap();
            (make, std::fs::read(&path).unwrap())
        })
        .collect();
    let path = dir.join("mutated.safetensors");
    let mut counts = Counts::default();
    let mut panics = Vec::new();
    for i in 0..mutations {
        let (make, bytes) = rng.pick(&bases);
        std::fs::write(&path, mutate(&mut rng, bytes)).unwrap();
        if catch_unwind(AssertUnwindSafe(|| check(&path, *make, &mut counts))).is_err() {
            std::fs::copy(&path, dir.join(format!("panic_{i}.safetensors"))).unwrap();
            panics.push(i);
        }
    }
    println!("{mutations} mutations: {counts:?}, {} panics", panics.len());
    assert!(
        panics.is_empty(),
        "mutations {panics:?} panicked; files kept in {}",
        dir.display()
    );
}
