//! [`GraphFitOptions::metrics`](super::GraphFitOptions::metrics): metrics of
//! single outputs of a graph, as Keras's `metrics={"value": ["mae"]}`.

use nn_core::loss::Target;
use nn_core::ndarray::ArrayViewD;
use nn_core::Float;

use crate::distributed::Collective;
use crate::train::data_parallel;
use crate::train::metrics::Metric;
use crate::train::TrainError;

/// Each metric, the output it reads, and the name it is logged under
/// (`value_mae`).
pub(super) struct OutputMetrics<'a, T: Float> {
    outputs: Vec<usize>,
    metrics: Vec<Box<dyn Metric<T> + 'a>>,
    pub(super) names: Vec<String>,
}

impl<'a, T: Float> OutputMetrics<'a, T> {
    /// Finds each metric's output among `outputs` (the model's names).
    pub(super) fn new(
        metrics: Vec<(&str, Box<dyn Metric<T> + 'a>)>,
        outputs: &[String],
    ) -> Result<Self, TrainError> {
        let mut out = OutputMetrics {
            outputs: Vec::new(),
            metrics: Vec::new(),
            names: Vec::new(),
        };
        for (output, metric) in metrics {
            let Some(i) = outputs.iter().position(|o| o == output) else {
                return Err(TrainError::Config(format!(
                    "metrics: `{output}` is not an output of the model (its outputs: {})",
                    outputs.join(", ")
                )));
            };
            out.names.push(format!("{output}_{}", metric.name()));
            out.outputs.push(i);
            out.metrics.push(metric);
        }
        Ok(out)
    }

    pub(super) fn reset(&mut self) {
        self.metrics.iter_mut().for_each(|m| m.reset());
    }

    /// Shows output `output` of a batch, and its target, to its metrics.
    pub(super) fn update(&mut self, output: usize, out: ArrayViewD<'_, T>, target: &Target<'_, T>) {
        for (m, _) in (self.metrics.iter_mut().zip(&self.outputs)).filter(|(_, &o)| o == output) {
            m.update(out.view(), target);
        }
    }

    /// Each metric's value under its name.
    pub(super) fn results(&self) -> Vec<(String, f64)> {
        (self.names.iter().cloned())
            .zip(self.metrics.iter().map(|m| m.result()))
            .collect()
    }

    /// [`OutputMetrics::results`] over every rank of `group` (`samples`:
    /// this rank's), as `fit`'s metrics are.
    pub(super) fn over_ranks(
        &mut self,
        group: &dyn Collective,
        samples: usize,
    ) -> Vec<(String, f64)> {
        let values = data_parallel::reduce_metrics(group, &mut self.metrics, samples);
        (self.names.iter().cloned())
            .zip(values.into_iter().map(|(_, v)| v))
            .collect()
    }
}
