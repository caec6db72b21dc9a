//! Property tests: for random broadcastable shapes, every gradient of `+ - * /`
//! has its input's shape and equals the finite-difference gradient.

use ndarray::{ArrayD, IxDyn};
use nn_core::{gradcheck, GradcheckOptions, Tape, Var};
use proptest::prelude::*;

/// A shape and two operand shapes that broadcast to it: each operand may drop
/// leading axes and set any remaining axis to 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..=4, 1..=3).prop_flat_map(|full| {
        let n = full.len();
        let operand = move |full: Vec<usize>| {
            (0..=n, prop::collection::vec(any::<bool>(), n)).prop_map(move |(drop, ones)| {
                full.iter()
                    .zip(&ones)
                    .skip(drop)
                    .map(|(&d, &one)| if one { 1 } else { d })
                    .collect::<Vec<_>>()
            })
        };
        (operand(full.clone()), operand(full))
    })
}

fn values(shape: &[usize], seed: u64) -> ArrayD<f64> {
    // Deterministic, away from zero (denominators of div): in [0.5, 2.0].
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        0.5 + 1.5 * ((state >> 11) as f64 / (1u64 << 53) as f64)
    })
}

fn apply(op: usize, a: &Var<f64>, b: &Var<f64>) -> Var<f64> {
    match op {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn broadcast_gradients_have_input_shapes_and_match_finite_differences(
        (sa, sb) in broadcast_pair(),
        op in 0usize..4,
        seed in any::<u64>(),
    ) {
        let (a, b) = (values(&sa, seed), values(&sb, seed ^ 0x9e37));

        let tape = Tape::<f64>::new();
        let (va, vb) = (tape.var(a.clone()), tape.var(b.clone()));
        // A non-uniform weighting so every output element's gradient differs.
        let out = apply(op, &va, &vb);
        let w = tape.constant(values(&out.shape(), seed ^ 0x51));
        (&out * &w).sum().backward();
        prop_assert_eq!(va.grad().unwrap().shape().to_vec(), a.shape().to_vec());
        prop_assert_eq!(vb.grad().unwrap().shape().to_vec(), b.shape().to_vec());

        let report = gradcheck(|v| apply(op, &v[0], &v[1]), &[a, b], &GradcheckOptions::default());
        prop_assert!(report.passed, "{}", report);
    }
}
