//! Gradient checking by central finite differences in `f64`, like
//! `torch.autograd.gradcheck`: run it on your own functions.
//!
//! ```
//! use nn_core::{gradcheck, GradcheckOptions};
//! use ndarray::array;
//!
//! // f(x, w) = Σ tanh(x @ w)
//! let report = gradcheck(
//!     |v| v[0].matmul(&v[1]).tanh().sum(),
//!     &[array![[0.1, -0.4], [0.7, 0.2]].into_dyn(), array![[0.3], [-0.5]].into_dyn()],
//!     &GradcheckOptions::default(),
//! );
//! assert!(report.passed, "{report}");
//! ```

use std::fmt;

use ndarray::{ArrayD, IxDyn};

use crate::tape::{Tape, Var};

/// Tolerances for [`gradcheck`]: an entry passes when
/// `|analytic - numeric| <= atol + rtol * |numeric|` (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// One Jacobian entry: where it is and both estimates of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Which input.
    pub input: usize,
    /// The element of that input.
    pub index: Vec<usize>,
    /// The element of the output.
    pub output_index: Vec<usize>,
    /// From the tape's backward pass.
    pub analytic: f64,
    /// From central finite differences.
    pub numeric: f64,
}

/// What [`gradcheck`] found.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// Whether every Jacobian entry is within tolerance.
    pub passed: bool,
    /// The largest `|analytic - numeric|` over all entries.
    pub max_abs_error: f64,
    /// The entry furthest outside (or closest to) its tolerance.
    pub worst: Option<Mismatch>,
    /// Number of Jacobian entries compared.
    pub checked: usize,
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "passed" } else { "FAILED" };
        write!(
            f,
            "gradcheck {verdict}: {} entries, max |analytic - numeric| = {:.3e}",
            self.checked, self.max_abs_error
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst at input {} index {:?}, output index {:?}: analytic {:.9e}, numeric {:.9e}",
                w.input, w.index, w.output_index, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

/// Compares the Jacobian of `f` computed by the tape with central finite
/// differences, at `inputs`.
///
/// `f` receives one variable per input (each requiring a gradient, on a fresh
/// tape) and may return any shape: every output element is checked against every
/// input element. Keep inputs small: the cost is one backward pass per output
/// element plus two forward passes per input element.
pub fn gradcheck<F>(f: F, inputs: &[ArrayD<f64>], opts: &GradcheckOptions) -> GradcheckReport
where
    F: Fn(&[Var<f64>]) -> Var<f64>,
{
    let eval = |xs: &[ArrayD<f64>]| -> ArrayD<f64> {
        let tape = Tape::new();
        let vars: Vec<Var<f64>> = xs.iter().map(|x| tape.var(x.clone())).collect();
        f(&vars).value()
    };
    let y0 = eval(inputs);
    let out_shape = y0.shape().to_vec();

    // analytic[i][j] = d y_j / d x_i, one backward pass per output element.
    let mut analytic: Vec<Vec<ArrayD<f64>>> = vec![Vec::with_capacity(y0.len()); inputs.len()];
    for j in 0..y0.len() {
        let tape = Tape::new();
        let vars: Vec<Var<f64>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
        let y = f(&vars);
        let mut cot = ArrayD::zeros(IxDyn(&out_shape));
        cot.as_slice_mut().expect("standard layout")[j] = 1.0;
        y.backward_with(cot);
        for (i, v) in vars.iter().enumerate() {
            analytic[i].push(
                v.grad()
                    .unwrap_or_else(|| ArrayD::zeros(inputs[i].raw_dim())),
            );
        }
    }

    let mut report = GradcheckReport {
        passed: true,
        max_abs_error: 0.0,
        worst: None,
        checked: 0,
    };
    let mut worst_ratio = f64::NEG_INFINITY;
    let mut xs: Vec<ArrayD<f64>> = inputs
        .iter()
        .map(|x| x.as_standard_layout().into_owned())
        .collect();
    for i in 0..xs.len() {
        for e in 0..xs[i].len() {
            let orig = xs[i].as_slice().expect("standard layout")[e];
            xs[i].as_slice_mut().expect("standard layout")[e] = orig + opts.eps;
            let plus = eval(&xs);
            xs[i].as_slice_mut().expect("standard layout")[e] = orig - opts.eps;
            let minus = eval(&xs);
            xs[i].as_slice_mut().expect("standard layout")[e] = orig;
            for (j, (p, m)) in plus.iter().zip(minus.iter()).enumerate() {
                let numeric = (p - m) / (2.0 * opts.eps);
                let a = analytic[i][j].as_standard_layout();
                let a = a.as_slice().expect("standard layout")[e];
                let err = (a - numeric).abs();
                let ratio = if err.is_nan() {
                    f64::INFINITY
                } else {
                    err / (opts.atol + opts.rtol * numeric.abs())
                };
                report.checked += 1;
                report.max_abs_error = report.max_abs_error.max(err);
                if ratio > 1.0 {
                    report.passed = false;
                }
                if ratio > worst_ratio {
                    worst_ratio = ratio;
                    report.worst = Some(Mismatch {
                        input: i,
                        index: unravel(e, xs[i].shape()),
                        output_index: unravel(j, &out_shape),
                        analytic: a,
                        numeric,
                    });
                }
            }
        }
    }
    report
}

/// The multi-index of flat (row-major) position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = flat % n;
        flat /= n;
    }
    idx
}
