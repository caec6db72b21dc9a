//! Every row of the activation table, at its defaults and with each of its
//! arguments changed, agrees with central finite differences (f64), on the
//! tape. A row this file does not cover fails the coverage test.

use std::collections::BTreeSet;

use ndarray::{ArrayD, IxDyn};
use nn_core::activation::{ActivationFn, Builtin};
use nn_core::{gradcheck, GradcheckOptions};
use nn_spec::ACTIVATIONS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Activations with arguments changed from their defaults, so every argument
/// of every row is exercised; `threshold` has no defaults and appears here
/// only.
const WITH_ARGUMENTS: &[&str] = &[
    "celu(alpha = 0.7)",
    "elu(alpha = 0.5)",
    "gelu(approximate = true)",
    "glu(axis = 0)",
    "hard_shrink(threshold = 1.3)",
    "leaky_relu(negative_slope = 0.01)",
    "log_softmax(axis = 0)",
    "relu(negative_slope = 0.1)",
    "relu(max_value = 2.5)",
    "relu(threshold = 0.75)",
    "relu(threshold = -0.75)",
    "relu(max_value = 2.5, threshold = -0.75)",
    "relu(negative_slope = 0.3, max_value = 2.5, threshold = 0.75)",
    "soft_shrink(threshold = 1.3)",
    "softmax(axis = 0)",
    "sparsemax(axis = 0)",
    "squareplus(b = 1.5)",
    "threshold(threshold = 0.75, default_value = -1.0)",
];

/// Points where some activation above has a kink: finite differences across
/// one are meaningless, so inputs keep away from them.
const KINKS: &[f64] = &[0.0, 0.5, 0.75, 1.0, 1.3, 2.5, 3.0, 6.0];

/// A `[4, 6]` input in (-4, 4), at least 0.05 from every kink.
fn input(rng: &mut StdRng) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[4, 6]), |_| loop {
        let v: f64 = rng.random_range(-4.0..4.0);
        if KINKS.iter().all(|k| (v.abs() - k).abs() > 0.05) {
            return v;
        }
    })
}

fn check(label: &str, a: Builtin, x: &ArrayD<f64>) {
    let report = gradcheck(
        |v| a.apply(&v[0]),
        std::slice::from_ref(x),
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "{label}: {report}");
    assert!(report.checked > 0, "{label}: nothing compared");
}

#[test]
fn every_activation_at_its_defaults() {
    let mut rng = StdRng::seed_from_u64(20261201);
    let x = input(&mut rng);
    for spec in ACTIVATIONS.iter().filter(|s| s.has_defaults()) {
        for name in spec.names() {
            let a = Builtin::from_name(name).unwrap_or_else(|| panic!("{name} has no built-in"));
            check(name, a, &x);
        }
    }
}

#[test]
fn every_argument_changed() {
    let mut rng = StdRng::seed_from_u64(20261202);
    let x = input(&mut rng);
    for text in WITH_ARGUMENTS {
        let a: Builtin = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        check(text, a, &x);
    }
}

#[test]
fn every_row_and_argument_is_covered() {
    let mut covered = BTreeSet::new();
    for text in WITH_ARGUMENTS {
        let (name, args) = text.split_once('(').unwrap();
        for arg in args.trim_end_matches(')').split(',') {
            let key = arg.split('=').next().unwrap().trim();
            covered.insert(format!("{name}.{key}"));
        }
    }
    for spec in ACTIVATIONS {
        for arg in spec.args {
            let key = format!("{}.{}", spec.name, arg.name);
            assert!(
                covered.contains(&key),
                "argument `{key}` of the activation table has no gradient check here"
            );
        }
        assert!(
            spec.has_defaults() || WITH_ARGUMENTS.iter().any(|t| t.starts_with(spec.name)),
            "`{}` needs arguments and has no gradient check here",
            spec.name
        );
    }
}
