//! Compile errors of `sequential!`: one mistake per file under `tests/ui/`, each
//! with the expected message in its `.stderr` snapshot (every kind of mistake
//! the macro reports has one; `nn-macros`' own tests check that). The cases
//! under `tests/ui/checked/` are mistakes only the compiler sees, in the code
//! the macro generates (a nested model's shapes, declared by another
//! invocation); those under `tests/ui/module/` are `#[derive(Module)]`'s, those under
//! `tests/ui/functional/` are `functional!`'s. Code that must compile is
//! tested as plain modules of `nn`'s test suite (`tests/suite/hygienic_names.rs`, …): a single
//! passing case would make trybuild build every dependency instead of only
//! checking it.

#[test]
fn sequential_mistakes_are_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.compile_fail("tests/ui/checked/*.rs");
    t.compile_fail("tests/ui/module/*.rs");
    t.compile_fail("tests/ui/functional/*.rs");
}
