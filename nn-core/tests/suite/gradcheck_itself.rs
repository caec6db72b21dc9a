//! `gradcheck` catches a wrong gradient and says where it is.

use ndarray::{array, ArrayD};
use nn_core::tape::Op;
use nn_core::{gradcheck, GradcheckOptions, Var};

/// y = x², with a backward that is wrong for the second element only.
struct BrokenSquare;

impl Op<f64> for BrokenSquare {
    fn name(&self) -> &'static str {
        "broken_square"
    }
    fn backward(
        &self,
        x: &[&ArrayD<f64>],
        _y: &ArrayD<f64>,
        dy: &ArrayD<f64>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<f64>>> {
        let mut g = x[0].mapv(|v| 2.0 * v) * dy;
        g[[1]] *= 1.01;
        vec![Some(g)]
    }
}

fn broken(v: &[Var<f64>]) -> Var<f64> {
    v[0].tape()
        .record(&[&v[0]], |x| (x[0].mapv(|e| e * e), BrokenSquare))
}

#[test]
fn a_wrong_gradient_fails_with_its_location() {
    let report = gradcheck(
        broken,
        &[array![1.0, 2.0, 3.0].into_dyn()],
        &GradcheckOptions::default(),
    );
    assert!(!report.passed);
    let worst = report.worst.clone().expect("a mismatch");
    assert_eq!(
        (worst.input, worst.index.clone(), worst.output_index.clone()),
        (0, vec![1], vec![1])
    );
    // analytic 2·2·1.01 = 4.04 against the true derivative 4
    assert!((worst.analytic - 4.04).abs() < 1e-12);
    assert!((worst.numeric - 4.0).abs() < 1e-6);
    assert!(report.to_string().contains("FAILED"));
}

#[test]
fn a_correct_gradient_passes_with_a_tiny_error() {
    let report = gradcheck(
        |v| v[0].pow(2.0),
        &[array![1.0, 2.0, 3.0].into_dyn()],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "{report}");
    assert_eq!(report.checked, 9); // 3 outputs × 3 inputs, off-diagonal zeros included
    assert!(report.max_abs_error < 1e-8);
}
