//! Histograms of a model's parameters and of their gradients, tagged by the
//! parameters' names.

use nn_core::{Float, Parameters};

use super::event::{SummaryData, SummaryValue};
use super::histogram::Histogram;

/// The suffix of a gradient's tag (`dense.weight_grad`), as Keras's
/// `write_grads` named them.
pub(crate) const GRADIENT_SUFFIX: &str = "_grad";

/// A histogram of every parameter's value, tagged with its name (`dense.weight`;
/// a shared one once, under its first name).
pub(crate) fn weight_histograms<T: Float>(params: &dyn Parameters<T>) -> Vec<SummaryValue> {
    let mut out = Vec::new();
    nn_core::visit_distinct_params(params, &mut |name, p| {
        let value = p.value();
        push_histogram(&mut out, name.to_string(), value.iter().map(|v| v.as_f64()));
    });
    out
}

/// A histogram of every gradient there is (frozen parameters have none),
/// tagged with the parameter's name and [`GRADIENT_SUFFIX`], into `out`.
pub(crate) fn gradient_histograms<T: Float>(
    params: &dyn Parameters<T>,
    out: &mut Vec<SummaryValue>,
) {
    nn_core::visit_distinct_params(params, &mut |name, p| {
        if let Some(grad) = p.grad().as_ref() {
            let tag = format!("{name}{GRADIENT_SUFFIX}");
            push_histogram(out, tag, grad.iter().map(|v| v.as_f64()));
        }
    });
}

/// Pushes the histogram of `values` unless it has no finite value to draw.
fn push_histogram<I>(out: &mut Vec<SummaryValue>, tag: String, values: I)
where
    I: Iterator<Item = f64> + Clone,
{
    if let Some(h) = Histogram::of(values) {
        out.push(SummaryValue {
            tag,
            data: SummaryData::Histogram(h),
        });
    }
}
