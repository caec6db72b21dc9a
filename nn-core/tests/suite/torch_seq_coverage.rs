//! Every case of `../shared/testdata/torch/seq.json` is reproduced by one of
//! the two test files that check them: the recurrent modules by
//! `torch_seq_recurrent.rs`, the attention modules by `torch_seq_attention.rs`
//! (each asserts that it checked every case of its modules). A case of a
//! module neither knows fails here instead of going unchecked.

use crate::common;

use common::load_json;

/// The `torch.nn` modules of seq.json and the test file that checks each.
const CHECKED_BY: [(&str, &str); 5] = [
    ("RNN", "torch_seq_recurrent.rs"),
    ("LSTM", "torch_seq_recurrent.rs"),
    ("GRU", "torch_seq_recurrent.rs"),
    ("MultiheadAttention", "torch_seq_attention.rs"),
    ("TransformerEncoderLayer", "torch_seq_attention.rs"),
];

#[test]
fn every_case_of_seq_json_has_a_test_that_checks_it() {
    let data = load_json("seq.json");
    let cases = data["cases"].as_array().expect("cases");
    let mut unchecked = Vec::new();
    for case in cases {
        let module = case["module"].as_str().expect("module");
        if !CHECKED_BY.iter().any(|(m, _)| *m == module) {
            unchecked.push(format!("{} ({module})", case["name"]));
        }
    }
    assert!(unchecked.is_empty(), "cases no test checks: {unchecked:?}");
    // make_torch_seq_vectors.py writes 14 cases whatever its seed.
    assert_eq!(cases.len(), 14, "seq.json's cases");
}
