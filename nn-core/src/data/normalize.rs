//! Per-feature scaling learnt from data: standardization to mean 0 and
//! standard deviation 1 (Keras `Normalization.adapt`, scikit-learn
//! `StandardScaler`) or min-max scaling to `[0, 1]` (`MinMaxScaler`).
//!
//! A feature is one element of a sample: for samples `[n, 28, 28]` there are
//! 784 features, each with its own statistics. Fit on the training data only,
//! then apply the same [`Normalizer`] to validation and test data.
//!
//! ```
//! use nn_core::data::{normalize::Normalizer, Dataset};
//! use ndarray::{ArrayD, IxDyn};
//!
//! let x = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]).unwrap();
//! let y = ArrayD::from_shape_vec(IxDyn(&[3, 1]), vec![100.0, 200.0, 300.0]).unwrap();
//! let data = Dataset::<f64>::with_values(x, y);
//!
//! let inputs = Normalizer::standard(data.inputs())?;
//! let targets = Normalizer::standard(data.targets().values().unwrap())?;
//! let scaled = targets.apply_to_targets(&inputs.apply_to_inputs(&data))?;
//! assert!(scaled.inputs().mean().unwrap().abs() < 1e-12);
//! // Predictions of the scaled targets go back to the original units:
//! let back = targets.invert(scaled.targets().values().unwrap());
//! assert!((back[[2, 0]] - 300.0).abs() < 1e-9);
//! # Ok::<(), nn_core::data::normalize::NormalizeError>(())
//! ```

use ndarray::{Array2, ArrayD, ArrayView1, ArrayViewD, Axis, IxDyn};

use super::{Dataset, Targets};
use crate::Float;

/// Why statistics could not be computed, or applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NormalizeError {
    /// The array is a scalar, with no sample axis.
    #[error("samples need a sample axis first; got a scalar")]
    NoSampleAxis,
    /// There are no samples to learn from.
    #[error("no samples to compute statistics from")]
    NoSamples,
    /// A value is NaN or infinite.
    #[error("feature {feature} of sample {sample} is {value}")]
    NotFinite {
        /// The sample.
        sample: usize,
        /// The feature (index into the flattened sample).
        feature: usize,
        /// The value.
        value: f64,
    },
    /// Targets were to be scaled but the dataset holds class labels.
    #[error("the dataset holds class labels, not target values to scale")]
    LabelTargets,
}

/// A per-feature affine map `(x - offset) / scale`, learnt from samples
/// (axis 0) by [`Normalizer::standard`] or [`Normalizer::min_max`].
#[derive(Clone, Debug, PartialEq)]
pub struct Normalizer<T: Float = f32> {
    offset: ArrayD<T>,
    scale: ArrayD<T>,
}

impl<T: Float> Normalizer<T> {
    /// Standardization: offset the mean, scale the population standard
    /// deviation (ddof 0, as Keras and scikit-learn use), so each feature of
    /// `samples` ends with mean 0 and standard deviation 1. A constant feature
    /// keeps scale 1 (it becomes 0 everywhere, rather than NaN).
    pub fn standard(samples: ArrayViewD<'_, T>) -> Result<Self, NormalizeError> {
        let (rows, feature_shape) = as_rows(samples)?;
        let n = rows.nrows() as f64;
        let mean = columns(&rows, |_, c| c.sum() / n);
        let var = columns(&rows, |f, c| {
            c.fold(0.0, |s, v| s + (v - mean[f]).powi(2)) / n
        });
        let scale: Vec<f64> = mean
            .iter()
            .zip(&var)
            .map(|(&m, &v)| {
                // scikit-learn's test for a constant feature: a variance within the
                // rounding error of summing n values is zero.
                let eps = f64::EPSILON;
                let bound = n * eps * v + (n * m * eps).powi(2);
                if v <= bound {
                    1.0
                } else {
                    v.sqrt()
                }
            })
            .collect();
        Ok(Self::from_stats(feature_shape, mean, scale))
    }

    /// Min-max scaling: offset the minimum, scale the range, so each feature
    /// of `samples` spans `[0, 1]`. A constant feature keeps scale 1.
    pub fn min_max(samples: ArrayViewD<'_, T>) -> Result<Self, NormalizeError> {
        let (rows, feature_shape) = as_rows(samples)?;
        let min = columns(&rows, |_, c| c.fold(f64::INFINITY, |m, &v| m.min(v)));
        let max = columns(&rows, |_, c| c.fold(f64::NEG_INFINITY, |m, &v| m.max(v)));
        let range = min.iter().zip(&max).map(|(lo, hi)| hi - lo);
        let scale = range.map(|r| if r > 0.0 { r } else { 1.0 }).collect();
        Ok(Self::from_stats(feature_shape, min, scale))
    }

    fn from_stats(feature_shape: Vec<usize>, offset: Vec<f64>, scale: Vec<f64>) -> Self {
        let shape = IxDyn(&feature_shape);
        let to_array = |v: Vec<f64>| {
            ArrayD::from_shape_vec(shape.clone(), v.into_iter().map(T::lit).collect())
                .expect("one statistic per feature")
        };
        Normalizer {
            offset: to_array(offset),
            scale: to_array(scale),
        }
    }

    /// What is subtracted from each feature: the mean or the minimum.
    pub fn offset(&self) -> ArrayViewD<'_, T> {
        self.offset.view()
    }

    /// What each feature is then divided by: the standard deviation or the
    /// range, 1 where that is 0.
    pub fn scale(&self) -> ArrayViewD<'_, T> {
        self.scale.view()
    }

    /// `(samples - offset) / scale`, for samples `[n, …]` of the fitted shape.
    ///
    /// # Panics
    /// If one sample's shape is not the one the statistics were computed for.
    pub fn apply(&self, samples: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check_shape(&samples, "apply");
        (&samples - &self.offset) / &self.scale
    }

    /// `samples * scale + offset`: undoes [`Normalizer::apply`] (e.g. to read
    /// a model's predictions of normalized targets in the original units).
    ///
    /// # Panics
    /// As [`Normalizer::apply`].
    pub fn invert(&self, samples: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check_shape(&samples, "invert");
        &samples * &self.scale + &self.offset
    }

    /// `data` with its inputs normalized; targets (and declared classes) kept.
    ///
    /// # Panics
    /// As [`Normalizer::apply`].
    pub fn apply_to_inputs(&self, data: &Dataset<T>) -> Dataset<T> {
        let inputs = self.apply(data.inputs());
        match (data.targets(), data.classes()) {
            (Targets::Labels(l), Some(classes)) => {
                Dataset::classification(inputs, l.clone(), classes).expect("labels already checked")
            }
            (targets, _) => {
                Dataset::from_targets(inputs, targets.clone()).expect("sample count unchanged")
            }
        }
    }

    /// `data` with its value targets normalized; inputs kept.
    ///
    /// # Panics
    /// As [`Normalizer::apply`], for one target's shape.
    pub fn apply_to_targets(&self, data: &Dataset<T>) -> Result<Dataset<T>, NormalizeError> {
        let values = data
            .targets()
            .values()
            .ok_or(NormalizeError::LabelTargets)?;
        Ok(Dataset::with_values(
            data.inputs().to_owned(),
            self.apply(values),
        ))
    }

    fn check_shape(&self, samples: &ArrayViewD<'_, T>, what: &str) {
        assert!(
            samples.ndim() >= 1 && samples.shape()[1..] == *self.offset.shape(),
            "Normalizer::{what}: got samples {:?}; the statistics are for samples of shape {:?}",
            samples.shape(),
            self.offset.shape(),
        );
    }
}

/// The samples as rows `[n, features]` of `f64`, and one sample's shape;
/// checked: at least one sample, every value finite. Statistics are summed in
/// `f64` so that `f32` data of many samples keeps its precision.
fn as_rows<T: Float>(
    samples: ArrayViewD<'_, T>,
) -> Result<(Array2<f64>, Vec<usize>), NormalizeError> {
    let (&n, feature_shape) = samples
        .shape()
        .split_first()
        .ok_or(NormalizeError::NoSampleAxis)?;
    if n == 0 {
        return Err(NormalizeError::NoSamples);
    }
    let features = feature_shape.iter().product::<usize>();
    let flat: Vec<f64> = samples.iter().map(|v| v.as_f64()).collect();
    if let Some(i) = flat.iter().position(|v| !v.is_finite()) {
        return Err(NormalizeError::NotFinite {
            sample: i / features.max(1),
            feature: i % features.max(1),
            value: flat[i],
        });
    }
    let rows = Array2::from_shape_vec((n, features), flat).expect("n × features");
    Ok((rows, feature_shape.to_vec()))
}

/// `stat(feature, values)` of every feature, in flattened order.
fn columns(rows: &Array2<f64>, stat: impl Fn(usize, ArrayView1<'_, f64>) -> f64) -> Vec<f64> {
    rows.axis_iter(Axis(1))
        .enumerate()
        .map(|(feature, values)| stat(feature, values))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feature 0: 1..=4 (mean 2.5, population std sqrt(1.25)); feature 1:
    /// constant 7; feature 2: -10, 0, 10, 40 (mean 10, std sqrt(350)).
    fn samples() -> ArrayD<f64> {
        let v = [1., 7., -10., 2., 7., 0., 3., 7., 10., 4., 7., 40.];
        ArrayD::from_shape_vec(IxDyn(&[4, 3]), v.to_vec()).unwrap()
    }

    fn mean_and_std(a: &ArrayD<f64>, feature: usize) -> (f64, f64) {
        let col = a.index_axis(Axis(1), feature);
        let mean = col.mean().unwrap();
        (mean, col.std(0.0))
    }

    #[test]
    fn standardized_features_have_mean_0_and_std_1() {
        let n = Normalizer::standard(samples().view()).unwrap();
        assert_eq!(n.offset().as_slice().unwrap(), &[2.5, 7.0, 10.0]);
        let s = n.scale();
        assert!((s[[0]] - 1.25f64.sqrt()).abs() < 1e-15);
        assert!((s[[2]] - 350f64.sqrt()).abs() < 1e-12);
        let out = n.apply(samples().view());
        for f in [0, 2] {
            let (mean, std) = mean_and_std(&out, f);
            assert!(mean.abs() < 1e-15, "feature {f}: mean {mean}");
            assert!((std - 1.0).abs() < 1e-15, "feature {f}: std {std}");
        }
    }

    #[test]
    fn a_constant_feature_becomes_zero_not_nan() {
        let n = Normalizer::standard(samples().view()).unwrap();
        assert_eq!(n.scale()[[1]], 1.0);
        let out = n.apply(samples().view());
        assert!(out.index_axis(Axis(1), 1).iter().all(|&v| v == 0.0));
        // Rounding in the mean of a constant that is not exact in binary must
        // not count as variance either.
        let c = ArrayD::from_elem(IxDyn(&[1000, 1]), 0.1f32);
        assert_eq!(Normalizer::standard(c.view()).unwrap().scale()[[0]], 1.0);
    }

    #[test]
    fn invert_round_trips() {
        for n in [
            Normalizer::standard(samples().view()).unwrap(),
            Normalizer::min_max(samples().view()).unwrap(),
        ] {
            let back = n.invert(n.apply(samples().view()).view());
            for (a, b) in back.iter().zip(samples().iter()) {
                assert!((a - b).abs() < 1e-12, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn min_max_spans_0_to_1() {
        let n = Normalizer::min_max(samples().view()).unwrap();
        assert_eq!(n.offset().as_slice().unwrap(), &[1.0, 7.0, -10.0]);
        assert_eq!(n.scale().as_slice().unwrap(), &[3.0, 1.0, 50.0]);
        let out = n.apply(samples().view());
        assert_eq!(
            out.index_axis(Axis(1), 2)
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![0.0, 0.2, 0.4, 1.0]
        );
    }

    #[test]
    fn statistics_are_per_element_of_a_multi_axis_sample() {
        // Samples [2, 2, 1]: element [0, 0] is 0 then 2, element [1, 0] is 5 then 5.
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2, 1]), vec![0.0f32, 5., 2., 5.]).unwrap();
        let n = Normalizer::standard(x.view()).unwrap();
        assert_eq!(n.offset().shape(), &[2, 1]);
        assert_eq!(n.offset().as_slice().unwrap(), &[1.0, 5.0]);
        assert_eq!(n.scale().as_slice().unwrap(), &[1.0, 1.0]);
        assert_eq!(
            n.apply(x.view()).as_slice().unwrap(),
            &[-1.0, 0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn datasets_keep_what_is_not_scaled() {
        let labelled = Dataset::classification(samples(), vec![0, 1, 2, 1], 5).unwrap();
        let n = Normalizer::standard(labelled.inputs()).unwrap();
        let scaled = n.apply_to_inputs(&labelled);
        assert_eq!(scaled.labels(), &[0, 1, 2, 1]);
        assert_eq!(scaled.classes(), Some(5));
        assert_eq!(
            n.apply_to_targets(&labelled).unwrap_err(),
            NormalizeError::LabelTargets
        );

        let y = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![10.0, 20.0, 30.0, 40.0]).unwrap();
        let values = Dataset::with_values(samples(), y);
        let t = Normalizer::standard(values.targets().values().unwrap()).unwrap();
        let scaled = t.apply_to_targets(&values).unwrap();
        assert_eq!(scaled.inputs(), samples().view());
        let (mean, std) = mean_and_std(&scaled.targets().values().unwrap().to_owned(), 0);
        assert!(mean.abs() < 1e-15 && (std - 1.0).abs() < 1e-15);
    }

    #[test]
    fn bad_samples_are_errors() {
        let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 3]));
        assert_eq!(
            Normalizer::standard(empty.view()).unwrap_err(),
            NormalizeError::NoSamples
        );
        let scalar = ArrayD::<f32>::zeros(IxDyn(&[]));
        assert_eq!(
            Normalizer::min_max(scalar.view()).unwrap_err(),
            NormalizeError::NoSampleAxis
        );
        let mut x = samples();
        x[[2, 1]] = f64::NAN;
        assert!(matches!(
            Normalizer::standard(x.view()).unwrap_err(),
            NormalizeError::NotFinite {
                sample: 2,
                feature: 1,
                ..
            }
        ));
    }

    #[test]
    #[should_panic(expected = "got samples [2, 4]; the statistics are for samples of shape [3]")]
    fn applying_to_another_shape_panics_with_both_shapes() {
        let n = Normalizer::standard(samples().view()).unwrap();
        n.apply(ArrayD::zeros(IxDyn(&[2, 4])).view());
    }
}
