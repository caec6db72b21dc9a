//! Crate-wide checks: the macro never panics, every kind of mistake has a
//! compile-fail case under `nn-checks/tests/ui/`, and the layer table is consistent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Attribute, Item};

use crate::errors::{Errors, Mistake};
use crate::parse::ModelDef;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn is_cfg_test(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.to_token_stream().to_string().replace(' ', "") == "cfg(test)"
    })
}

/// `{ unreachable!() }`: the body of a stand-in method emitted beside a
/// compile error, which never runs.
fn is_stand_in_body(stream: TokenStream) -> bool {
    let tts: Vec<TokenTree> = stream.into_iter().collect();
    matches!(
        tts.as_slice(),
        [TokenTree::Ident(i), TokenTree::Punct(p), TokenTree::Group(g)]
            if i == "unreachable" && p.as_char() == '!'
                && g.delimiter() == Delimiter::Parenthesis && g.stream().is_empty()
    )
}

/// Appends to `found` every call that can panic the macro: `panic!`,
/// `unreachable!`, `unimplemented!`, `todo!`, `.unwrap()`, `.expect(..)`.
/// Inside `quote!`, `{ unreachable!() }` bodies are allowed.
fn scan(stream: TokenStream, in_quote: bool, file: &str, found: &mut Vec<String>) {
    let tts: Vec<TokenTree> = stream.into_iter().collect();
    for (i, tt) in tts.iter().enumerate() {
        let next = tts.get(i + 1);
        let after = tts.get(i + 2);
        match tt {
            TokenTree::Group(g) => {
                if in_quote && g.delimiter() == Delimiter::Brace && is_stand_in_body(g.stream()) {
                    continue;
                }
                let quote_macro = i >= 2
                    && matches!(&tts[i - 1], TokenTree::Punct(p) if p.as_char() == '!')
                    && matches!(&tts[i - 2], TokenTree::Ident(id) if id == "quote" || id == "quote_spanned");
                scan(g.stream(), in_quote || quote_macro, file, found);
            }
            TokenTree::Ident(id)
                if ["panic", "unreachable", "unimplemented", "todo"]
                    .iter()
                    .any(|m| id == m)
                    && matches!(next, Some(TokenTree::Punct(p)) if p.as_char() == '!') =>
            {
                found.push(format!("{file}: `{id}!`"));
            }
            TokenTree::Punct(p)
                if p.as_char() == '.'
                    && matches!(next, Some(TokenTree::Ident(id)) if id == "unwrap" || id == "expect")
                    && matches!(after, Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis) =>
            {
                if let Some(n) = next {
                    found.push(format!("{file}: `.{n}(..)`"));
                }
            }
            _ => {}
        }
    }
}

/// Scans the items of the module in `file` (whose submodules live in `dir`),
/// following `mod` declarations and skipping `#[cfg(test)]` items; records the
/// files it read and those that are test-only.
fn scan_module(
    items: &[Item],
    dir: &Path,
    file: &str,
    read: &mut BTreeSet<PathBuf>,
    test_only: &mut BTreeSet<PathBuf>,
    found: &mut Vec<String>,
) {
    for item in items {
        match item {
            Item::Mod(m) => {
                let name = m.ident.to_string();
                let sub_dir = dir.join(&name);
                let test = is_cfg_test(&m.attrs);
                match &m.content {
                    Some((_, inner)) if !test => {
                        scan_module(inner, &sub_dir, file, read, test_only, found)
                    }
                    Some(_) => {}
                    None => {
                        let flat = dir.join(format!("{name}.rs"));
                        let path = if flat.exists() {
                            flat
                        } else {
                            sub_dir.join("mod.rs")
                        };
                        if test {
                            test_only.insert(path);
                        } else {
                            scan_file(&path, &sub_dir, read, test_only, found);
                        }
                    }
                }
            }
            _ if is_cfg_test(item_attrs(item)) => {}
            _ => scan(item.to_token_stream(), false, file, found),
        }
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Fn(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Const(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        _ => &[],
    }
}

fn scan_file(
    path: &Path,
    dir: &Path,
    read: &mut BTreeSet<PathBuf>,
    test_only: &mut BTreeSet<PathBuf>,
    found: &mut Vec<String>,
) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read.insert(path.to_path_buf());
    let name = path
        .strip_prefix(manifest_dir())
        .unwrap_or(path)
        .display()
        .to_string();
    scan_module(&parsed.items, dir, &name, read, test_only, found);
}

fn rust_files(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.insert(path);
        }
    }
}

#[test]
fn the_macro_never_panics() {
    let src = manifest_dir().join("src");
    let (mut read, mut test_only, mut found) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    scan_file(
        &src.join("lib.rs"),
        &src,
        &mut read,
        &mut test_only,
        &mut found,
    );
    assert!(
        found.is_empty(),
        "calls that can panic in nn-macros/src (report a spanned `syn::Error` instead):\n{}",
        found.join("\n")
    );
    // Every file was read, or is a test module.
    let mut all = BTreeSet::new();
    rust_files(&src, &mut all);
    let missed: Vec<_> = all
        .iter()
        .filter(|p| !read.contains(*p) && !test_only.contains(*p))
        .collect();
    assert!(
        missed.is_empty(),
        "files not reached from lib.rs: {missed:?}"
    );
}

#[test]
fn the_scan_sees_what_it_must() {
    let mut found = Vec::new();
    let code: TokenStream = "fn f() { a.unwrap(); b.expect(\"x\"); panic!(); todo!(); \
        quote!(fn g() { unreachable!() } fn h() { unreachable!(); x.unwrap() }); }"
        .parse()
        .unwrap();
    scan(code, false, "t", &mut found);
    assert_eq!(found.len(), 6, "{found:?}");
}

/// Every kind of mistake is made by at least one case under `nn-checks/tests/ui/`, and
/// each case makes exactly one mistake. The cases are run through the macro's
/// own parser and validator, so this needs no compiler; `nn-checks/tests/ui.rs` checks
/// the messages and spans rustc shows.
#[test]
fn every_mistake_has_a_ui_case() {
    // The cases the compiler rejects in the generated code
    // (`nn-checks/tests/ui/checked/`) are not read here.
    let dir = manifest_dir().join("../nn-checks/tests/ui");
    let mut covered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    read_cases(
        &dir,
        "sequential",
        &mut covered,
        &mut problems,
        |tokens, errors| {
            let def: ModelDef = syn::parse2(tokens)?;
            crate::validate::check(&def, errors);
            Ok(())
        },
    );
    read_cases(
        &dir.join("functional"),
        "functional",
        &mut covered,
        &mut problems,
        |tokens, errors| {
            let def: crate::functional::parse::GraphDef = syn::parse2(tokens)?;
            crate::functional::graph::check(&def, errors);
            Ok(())
        },
    );
    for m in Mistake::ALL {
        if !covered.contains_key(&format!("{m:?}")) {
            problems.push(format!(
                "Mistake::{m:?} has no case under nn-checks/tests/ui/"
            ));
        }
    }
    // The mistakes the compiler finds in the generated code: a case each,
    // named after the variant, under `nn-checks/tests/ui/checked/`.
    for m in Mistake::CHECKED_BY_COMPILER {
        let case = dir
            .join("checked")
            .join(format!("{}.rs", snake_case(&format!("{m:?}"))));
        if !case.exists() || !case.with_extension("stderr").exists() {
            problems.push(format!(
                "Mistake::{m:?} has no case {} with its .stderr",
                case.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each activation layer's function is a built-in activation, and each
/// layer a built-in layer: the hint for `activation = ReLU` names both.
#[test]
fn activation_layers_name_their_functions() {
    let layers: Vec<&str> = crate::layers::BUILTINS.iter().map(|(n, _)| *n).collect();
    for (layer, function) in crate::layers::activation::FUNCTION_OF_LAYER {
        assert!(layers.contains(&layer), "{layer} is not a built-in layer");
        assert!(
            crate::activation_fn::all_names().any(|n| n == function),
            "{function} is not a built-in activation"
        );
    }
}

/// A block's bad activation and its missing body are reported together.
#[test]
fn a_residual_reports_its_activation_and_its_body_at_once() {
    let tokens: TokenStream = quote::quote! {
        pub struct Net: input(8) {
            Residual(activation = rleu),
            Dense(10),
        }
    };
    let def: ModelDef = syn::parse2(tokens).unwrap();
    let mut errors = Errors::default();
    crate::validate::check(&def, &mut errors);
    assert_eq!(
        format!("{:?}", errors.seen),
        "[UnknownActivation, ResidualWithoutBody]"
    );
}

/// Runs each case under `dir` (its one `name!` invocation) through `check`,
/// recording the one mistake it makes in `covered`, or a problem.
fn read_cases(
    dir: &Path,
    name: &str,
    covered: &mut BTreeMap<String, Vec<String>>,
    problems: &mut Vec<String>,
    check: impl Fn(TokenStream, &mut Errors) -> syn::Result<()>,
) {
    let files: BTreeSet<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    for path in &files {
        let case = path.file_stem().unwrap().to_string_lossy().to_string();
        if !path.with_extension("stderr").exists() {
            problems.push(format!("{case}: no .stderr snapshot"));
        }
        let text = std::fs::read_to_string(path).unwrap();
        let file = syn::parse_file(&text).unwrap();
        let macros: Vec<_> = file
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == name) => {
                    Some(m.mac.tokens.clone())
                }
                _ => None,
            })
            .collect();
        if macros.len() != 1 {
            problems.push(format!(
                "{case}: {} `{name}!` invocations, expected one",
                macros.len()
            ));
            continue;
        }
        let mut errors = Errors::default();
        if let Err(e) = check(macros[0].clone(), &mut errors) {
            problems.push(format!("{case}: does not parse: {e}"));
            continue;
        }
        match errors.seen.as_slice() {
            [m] => covered.entry(format!("{m:?}")).or_default().push(case),
            seen => problems.push(format!(
                "{case}: makes {seen:?}, expected exactly one mistake"
            )),
        }
    }
}

/// `NestedInputShape` → `nested_input_shape`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[test]
fn layer_names_are_unique() {
    let mut names: Vec<&str> = crate::layers::BUILTINS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

/// A required argument spelt wrong is reported at the misspelling, with the
/// name to write, for every layer whose required argument can be named; a
/// required argument simply left out is still reported as missing.
#[test]
fn a_misspelt_required_argument_is_named_at_the_typo() {
    let message = |layer: &str| {
        let tokens: TokenStream =
            format!("struct Net: input(1, 28, 28) {{ {layer}, Flatten, Dense(10) }}")
                .parse()
                .unwrap();
        let def: ModelDef = syn::parse2(tokens).unwrap();
        let mut errors = Errors::default();
        crate::validate::check(&def, &mut errors);
        let seen = errors.seen.clone();
        (seen, errors.finish(()).unwrap_err().to_string())
    };
    for (layer, says) in [
        (
            "Conv2d(8, kernal = 3)",
            "Conv2d does not take an argument `kernal`; did you mean `kernel`?",
        ),
        ("Conv2d(fliters = 8, kernel = 3)", "did you mean `filters`?"),
        ("MaxPool2d(pool_siz = 2)", "did you mean `pool_size`?"),
        ("Patches(sise = 7)", "did you mean `size`?"),
        ("Dropout(rat = 0.5)", "did you mean `rate`?"),
    ] {
        let (seen, text) = message(layer);
        assert_eq!(seen, [Mistake::UnknownArgument], "{layer}: {text}");
        assert!(text.contains(says), "{layer}: {text}");
    }
    let (seen, _) = message("Conv2d(8)");
    assert_eq!(seen, [Mistake::ConvWithoutKernel]);
}
