//! Compile errors of `sequential!`: one mistake per file under `tests/ui/`, each
//! with the expected message in its `.stderr` snapshot.

#[test]
fn sequential_mistakes_are_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
