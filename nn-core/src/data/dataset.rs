//! [`Dataset`]: inputs and their targets (class labels or values), in memory.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::source::{check_batch, Batches, Data, TargetSlot, TargetSlots};
use super::targets::{TargetKind, Targets};
use crate::parallel::{for_each_range, Shared};
use crate::prefetch::prefetch_lines;
use crate::Float;

/// Why a [`Dataset`] could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DatasetError {
    /// The inputs have no sample axis.
    #[error("inputs need a sample axis first; got a scalar")]
    NoSampleAxis,
    /// Inputs and targets hold different numbers of samples.
    #[error("{inputs} input samples but {targets} targets")]
    SampleCount {
        /// Samples along the inputs' first axis.
        inputs: usize,
        /// Targets given.
        targets: usize,
    },
    /// A label names a class the data does not have.
    #[error("label {label} of sample {sample} is not a class of 0..{classes}")]
    LabelOutOfRange {
        /// The sample.
        sample: usize,
        /// Its label.
        label: usize,
        /// The declared number of classes.
        classes: usize,
    },
    /// A value (input or target) is NaN or infinite.
    #[error("{what} of sample {sample} is {value}")]
    NotFinite {
        /// `input` or `target`.
        what: &'static str,
        /// The sample.
        sample: usize,
        /// The value.
        value: f64,
    },
}

/// Inputs (`[n, …]`, one sample per row) and their targets, in memory:
/// class labels ([`Dataset::new`], [`Dataset::classification`]) or values of
/// any shape ([`Dataset::with_values`]: regression, several outputs,
/// probabilities).
///
/// ```
/// use nn_core::data::Dataset;
/// use ndarray::{ArrayD, IxDyn};
///
/// let x = ArrayD::from_shape_fn(IxDyn(&[100, 2]), |i| (i[0] + i[1]) as f32);
/// let y = x.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
/// let data = Dataset::with_values(x, y);              // y: [100, 1]
/// let (train, val) = data.shuffled(0).split(0.2);
/// assert_eq!((train.len(), val.len()), (80, 20));
/// ```
#[derive(Clone, Debug)]
pub struct Dataset<T: Float = f32> {
    inputs: ArrayD<T>,
    targets: Targets<T>,
    classes: Option<usize>,
}

impl<T: Float> Dataset<T> {
    /// A dataset of `inputs` (samples along the first axis) and one class label
    /// each. The number of classes is taken as the largest label + 1; say it with
    /// [`Dataset::classification`] to have every label checked.
    ///
    /// # Panics
    /// If the counts differ.
    pub fn new(inputs: ArrayD<T>, labels: Vec<usize>) -> Self {
        Self::from_targets(inputs, Targets::Labels(labels))
            .unwrap_or_else(|e| panic!("Dataset::new: {e}"))
    }

    /// A dataset of class labels in `0..classes`, each checked.
    pub fn classification(
        inputs: ArrayD<T>,
        labels: Vec<usize>,
        classes: usize,
    ) -> Result<Self, DatasetError> {
        if let Some((sample, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(DatasetError::LabelOutOfRange {
                sample,
                label,
                classes,
            });
        }
        let mut data = Self::from_targets(inputs, Targets::Labels(labels))?;
        data.classes = Some(classes);
        Ok(data)
    }

    /// A dataset of `inputs` and target values (`[n, …]`, any shape per sample).
    ///
    /// # Panics
    /// If the counts differ.
    pub fn with_values(inputs: ArrayD<T>, values: ArrayD<T>) -> Self {
        Self::from_targets(inputs, Targets::Values(values))
            .unwrap_or_else(|e| panic!("Dataset::with_values: {e}"))
    }

    /// A dataset of `inputs` and `targets`, checking that the counts agree.
    pub fn from_targets(inputs: ArrayD<T>, targets: Targets<T>) -> Result<Self, DatasetError> {
        let Some(&n) = inputs.shape().first() else {
            return Err(DatasetError::NoSampleAxis);
        };
        if targets.len() != n || matches!(&targets, Targets::Values(v) if v.ndim() == 0) {
            return Err(DatasetError::SampleCount {
                inputs: n,
                targets: targets.len(),
            });
        }
        Ok(Dataset {
            inputs: standard(inputs),
            targets: match targets {
                Targets::Values(v) => Targets::Values(standard(v)),
                labels => labels,
            },
            classes: None,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.shape()[0]
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All inputs.
    pub fn inputs(&self) -> ArrayViewD<'_, T> {
        self.inputs.view()
    }

    /// All targets.
    pub fn targets(&self) -> &Targets<T> {
        &self.targets
    }

    /// All labels.
    ///
    /// # Panics
    /// If the dataset holds target values (see [`Dataset::targets`]).
    pub fn labels(&self) -> &[usize] {
        match &self.targets {
            Targets::Labels(l) => l,
            Targets::Values(_) => panic!("Dataset::labels: this dataset holds target values"),
        }
    }

    /// The declared number of classes ([`Dataset::classification`]), if any.
    pub fn classes(&self) -> Option<usize> {
        self.classes
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        &self.inputs.shape()[1..]
    }

    /// The first NaN or infinite input or target value, as an error.
    pub fn check_finite(&self) -> Result<(), DatasetError> {
        let per = self.sample_shape().iter().product::<usize>().max(1);
        let first_bad = |a: &ArrayD<T>, per: usize| {
            a.iter()
                .position(|v| !v.is_finite())
                .map(|i| (i / per, a.iter().nth(i).map_or(f64::NAN, |v| v.as_f64())))
        };
        if let Some((sample, value)) = first_bad(&self.inputs, per) {
            return Err(DatasetError::NotFinite {
                what: "input",
                sample,
                value,
            });
        }
        if let Targets::Values(v) = &self.targets {
            let per = v.shape()[1..].iter().product::<usize>().max(1);
            if let Some((sample, value)) = first_bad(v, per) {
                return Err(DatasetError::NotFinite {
                    what: "target",
                    sample,
                    value,
                });
            }
        }
        Ok(())
    }

    /// The same data with each sample reshaped (e.g. `[28, 28]` → `[784]`).
    ///
    /// # Panics
    /// If the element count per sample differs.
    pub fn reshaped(self, sample_shape: &[usize]) -> Self {
        let shape = crate::layers::batch_shape(self.len(), sample_shape);
        let inputs = self
            .inputs
            .into_shape_with_order(IxDyn(&shape))
            .unwrap_or_else(|e| {
                panic!("Dataset::reshaped: cannot view samples as {sample_shape:?}: {e}")
            });
        Dataset { inputs, ..self }
    }

    /// The samples `range` (in order), as a new dataset.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        self.select(&range.collect::<Vec<_>>())
    }

    /// The samples `indices`, in that order, as a new dataset.
    pub fn select(&self, indices: &[usize]) -> Self {
        let targets = match &self.targets {
            Targets::Labels(l) => Targets::Labels(indices.iter().map(|&i| l[i]).collect()),
            Targets::Values(v) => Targets::Values(v.select(Axis(0), indices)),
        };
        Dataset {
            inputs: self.inputs.select(Axis(0), indices),
            targets,
            classes: self.classes,
        }
    }

    /// The samples in an order shuffled by `seed`.
    pub fn shuffled(&self, seed: u64) -> Self {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        self.select(&order)
    }

    /// Splits off the last `fraction` of the samples for validation, as Keras's
    /// `validation_split` does: the first `⌊len · (1 − fraction)⌋` train (no
    /// shuffling: use [`Dataset::shuffled`] first if the order matters).
    ///
    /// # Panics
    /// If `fraction` is not in `[0, 1)`.
    #[track_caller]
    pub fn split(&self, fraction: f64) -> (Self, Self) {
        let cut = split_point("Dataset::split", self.len(), fraction);
        let first: Vec<usize> = (0..cut).collect();
        let rest: Vec<usize> = (cut..self.len()).collect();
        (self.select(&first), self.select(&rest))
    }

    /// The labels as one-hot rows `[n, classes]` (for categorical losses on
    /// probabilities, or label smoothing by hand).
    ///
    /// # Panics
    /// If the dataset holds values, or a label is not below `classes`.
    pub fn one_hot(&self, classes: usize) -> Self {
        let labels = self.labels();
        let mut rows = ArrayD::zeros(IxDyn(&[labels.len(), classes]));
        for (i, &l) in labels.iter().enumerate() {
            assert!(
                l < classes,
                "Dataset::one_hot: label {l} of sample {i} is not below {classes}"
            );
            rows[[i, l]] = T::one();
        }
        Dataset {
            inputs: self.inputs.clone(),
            targets: Targets::Values(rows),
            classes: Some(classes),
        }
    }

    /// Mini-batches in order, or shuffled by `seed`; see [`Batches::new`].
    pub fn batches(
        &self,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        drop_last: bool,
    ) -> Batches<'_, T> {
        Batches::new(self, batch_size, shuffle_seed, drop_last)
    }
}

impl<T: Float> Data<T> for Dataset<T> {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn sample_shape(&self) -> &[usize] {
        Dataset::sample_shape(self)
    }

    fn target_kind(&self) -> TargetKind {
        match (&self.targets, self.classes) {
            (Targets::Labels(_), Some(classes)) => TargetKind::Labels { classes },
            (targets, _) => targets.kind(),
        }
    }

    fn fill(&self, index: usize, input: &mut [T], target: TargetSlot<'_, T>) {
        let per = input.len();
        let src = self.inputs.as_slice().expect("standard layout");
        input.copy_from_slice(&src[index * per..(index + 1) * per]);
        match (target, &self.targets) {
            (TargetSlot::Label(slot), Targets::Labels(l)) => *slot = l[index],
            (TargetSlot::Values(slot), Targets::Values(v)) => {
                let per = slot.len();
                let src = v.as_slice().expect("standard layout");
                slot.copy_from_slice(&src[index * per..(index + 1) * per]);
            }
            _ => panic!("Dataset::fill: the target slot is not of the dataset's kind"),
        }
    }

    /// Copies the rows on every core for large batches: the rows lie
    /// scattered through memory, and one core's copy of `mlp`'s batches of
    /// 128 MNIST images was a tenth of its training step.
    fn fill_batch(&self, indices: &[usize], inputs: &mut [T], targets: TargetSlots<'_, T>) {
        let n = indices.len();
        let (per, per_y) = check_batch("Dataset::fill_batch", self, n, inputs, &targets);
        let src = self.inputs.as_slice().expect("standard layout");
        let rows = Shared::new(inputs);
        // Rows scattered through memory cost a core more than the streaming
        // element-wise work `for_each_range` weighs: counted four times, a
        // batch of 64 MNIST images is split too.
        for_each_range(n, 4 * n * per, &|part| {
            let end = part.end;
            for k in part {
                // Each row's first lines would miss at full latency before
                // the hardware's prefetch caught up with the copy: fetch
                // the row after next meanwhile (`mlp`'s epochs 0.154 → 0.146 s,
                // medians of 15 alternating, 2026-12-05).
                if let Some(&ahead) = indices[..end].get(k + 2) {
                    prefetch_lines(&src[ahead * per..(ahead + 1) * per]);
                }
                let i = indices[k];
                // SAFETY: the parts' ranges of rows are disjoint.
                let row = unsafe { rows.slice(k * per..(k + 1) * per) };
                row.copy_from_slice(&src[i * per..(i + 1) * per]);
            }
        });
        match (targets, &self.targets) {
            (TargetSlots::Labels(slots), Targets::Labels(l)) => {
                for (slot, &i) in slots.iter_mut().zip(indices) {
                    *slot = l[i];
                }
            }
            (TargetSlots::Values(slots), Targets::Values(v)) => {
                let src = v.as_slice().expect("standard layout");
                for (k, &i) in indices.iter().enumerate() {
                    slots[k * per_y..(k + 1) * per_y]
                        .copy_from_slice(&src[i * per_y..(i + 1) * per_y]);
                }
            }
            _ => panic!("Dataset::fill_batch: the target slots are not of the dataset's kind"),
        }
    }
}

/// `a` in row-major order (already so, the usual case: no copy).
fn standard<T: Float>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// Where Keras's `validation_split` cuts `len` samples: the first
/// `⌊len · (1 − fraction)⌋` train and the rest validate (Keras's
/// `split_at = int(math.floor(n * (1.0 - validation_split)))`, in the same
/// `f64` arithmetic). `what` names the caller in the panic.
///
/// # Panics
/// If `fraction` is not in `[0, 1)`.
#[track_caller]
pub fn split_point(what: &str, len: usize, fraction: f64) -> usize {
    assert!(
        (0.0..1.0).contains(&fraction),
        "{what}: the validation fraction must be in [0, 1), got {fraction}"
    );
    (len as f64 * (1.0 - fraction)).floor() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Target;

    fn toy(n: usize) -> Dataset<f32> {
        Dataset::new(
            ArrayD::from_shape_fn(IxDyn(&[n, 2]), |i| (i[0] * 10 + i[1]) as f32),
            (0..n).collect(),
        )
    }

    fn labels_of(t: Target<'_, f32>) -> Vec<usize> {
        match t {
            Target::Labels(l) => l.to_vec(),
            Target::Values(_) => panic!("labels expected"),
        }
    }

    #[test]
    fn batches_cover_every_sample_once_and_keep_pairs_together() {
        let d = toy(10);
        let mut b = d.batches(4, Some(3), false);
        assert_eq!(b.count(), 3);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        while let Some((x, y)) = b.next_batch() {
            let y = labels_of(y);
            sizes.push(y.len());
            for (row, &label) in x.outer_iter().zip(&y) {
                assert_eq!(row[[0]], (label * 10) as f32);
                seen.push(label);
            }
        }
        assert_eq!(sizes, vec![4, 4, 2]);
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn value_targets_travel_with_their_inputs() {
        let x = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| (i[0] * 3 + i[1]) as f32);
        let y = ArrayD::from_shape_fn(IxDyn(&[7, 2, 2]), |i| (i[0] * 100 + i[1] * 2 + i[2]) as f32);
        let d = Dataset::with_values(x, y);
        let mut b = d.batches(3, Some(5), false);
        let mut seen = 0;
        while let Some((x, t)) = b.next_batch() {
            let Target::Values(v) = t else {
                panic!("values expected")
            };
            assert_eq!(v.shape()[1..], [2, 2]);
            for (row, target) in x.outer_iter().zip(v.outer_iter()) {
                let sample = (row[[0]] / 3.0) as usize;
                assert_eq!(target[[1, 1]], (sample * 100 + 3) as f32);
                seen += 1;
            }
        }
        assert_eq!(seen, 7);
    }

    /// A batch large enough to be copied on every core (300 samples of 256
    /// values) gives the rows and targets one `fill` per sample gives, for
    /// labels and for values; so does the trait's default through `fill`.
    #[test]
    fn a_batch_filled_at_once_is_the_samples_filled_one_by_one() {
        struct OneByOne<'a>(&'a Dataset<f32>);
        impl Data<f32> for OneByOne<'_> {
            fn len(&self) -> usize {
                Data::len(self.0)
            }
            fn sample_shape(&self) -> &[usize] {
                Data::sample_shape(self.0)
            }
            fn target_kind(&self) -> TargetKind {
                Data::target_kind(self.0)
            }
            fn fill(&self, index: usize, input: &mut [f32], target: TargetSlot<'_, f32>) {
                self.0.fill(index, input, target)
            }
        }
        let x = ArrayD::from_shape_fn(IxDyn(&[400, 16, 16]), |i| {
            (i[0] * 1000 + i[1] * 16 + i[2]) as f32
        });
        let labeled = Dataset::new(x.clone(), (0..400).map(|i| i % 7).collect());
        let y = ArrayD::from_shape_fn(IxDyn(&[400, 3]), |i| (i[0] * 3 + i[1]) as f32 + 0.5);
        let valued = Dataset::with_values(x, y);
        let indices: Vec<usize> = (0..300).map(|k| (k * 131 + 17) % 400).collect();
        for data in [&labeled, &valued] {
            let per_y = match data.target_kind() {
                TargetKind::Labels { .. } => 0,
                _ => 3,
            };
            let mut want = (vec![0.0; 300 * 256], vec![0; 300], vec![0.0; 300 * per_y]);
            for (k, &i) in indices.iter().enumerate() {
                let input = &mut want.0[k * 256..(k + 1) * 256];
                if per_y == 0 {
                    data.fill(i, input, TargetSlot::Label(&mut want.1[k]));
                } else {
                    let y = &mut want.2[k * per_y..(k + 1) * per_y];
                    data.fill(i, input, TargetSlot::Values(y));
                }
            }
            for source in [data as &dyn Data<f32>, &OneByOne(data)] {
                let mut got = (
                    vec![f32::NAN; 300 * 256],
                    vec![9; 300],
                    vec![f32::NAN; 300 * per_y],
                );
                let targets = if per_y == 0 {
                    TargetSlots::Labels(&mut got.1)
                } else {
                    TargetSlots::Values(&mut got.2)
                };
                source.fill_batch(&indices, &mut got.0, targets);
                assert_eq!(got.0, want.0);
                if per_y == 0 {
                    assert_eq!(got.1, want.1);
                } else {
                    assert_eq!(got.2, want.2);
                }
            }
        }
    }

    #[test]
    fn shuffling_depends_on_the_seed_and_drop_last_drops() {
        let d = toy(10);
        let order = |seed| {
            let mut b = d.batches(10, Some(seed), false);
            labels_of(b.next_batch().unwrap().1)
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        assert_ne!(order(1), (0..10).collect::<Vec<_>>());
        let mut b = d.batches(4, None, true);
        assert_eq!(b.count(), 2);
        assert_eq!(labels_of(b.next_batch().unwrap().1), vec![0, 1, 2, 3]);
        assert!(b.next_batch().is_some());
        assert!(b.next_batch().is_none());
    }

    #[test]
    fn split_keeps_the_tail_for_validation() {
        let (train, val) = toy(10).split(0.2);
        assert_eq!(train.labels(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(val.labels(), &[8, 9]);
        // Keras's floor(n · (1 − f)) training rows, worked out by hand:
        // 10 · 0.75 = 7.5, 5 · 0.7 = 3.5, 1997 · 0.75 = 1497.75.
        for (n, f, train) in [(10, 0.25, 7), (5, 0.3, 3), (1997, 0.25, 1497), (7, 0.0, 7)] {
            assert_eq!(split_point("split", n, f), train, "{n} samples, {f}");
            assert_eq!(toy(n).split(f).0.len(), train);
        }
    }

    #[test]
    fn labels_are_range_checked_when_classes_are_declared() {
        let x = ArrayD::<f32>::zeros(IxDyn(&[3, 1]));
        let err = Dataset::classification(x.clone(), vec![0, 4, 1], 3).unwrap_err();
        assert_eq!(
            err,
            DatasetError::LabelOutOfRange {
                sample: 1,
                label: 4,
                classes: 3
            }
        );
        let ok = Dataset::classification(x, vec![0, 2, 1], 3).unwrap();
        assert_eq!(ok.target_kind(), TargetKind::Labels { classes: 3 });
    }

    #[test]
    fn counts_must_agree_and_non_finite_values_are_found() {
        let x = ArrayD::<f32>::zeros(IxDyn(&[3, 2]));
        assert_eq!(
            Dataset::from_targets(x.clone(), Targets::Labels(vec![0, 1])).unwrap_err(),
            DatasetError::SampleCount {
                inputs: 3,
                targets: 2
            }
        );
        let mut y = ArrayD::<f32>::zeros(IxDyn(&[3, 2]));
        y[[2, 1]] = f32::NAN;
        let err = Dataset::with_values(x, y).check_finite().unwrap_err();
        assert!(matches!(
            err,
            DatasetError::NotFinite {
                what: "target",
                sample: 2,
                ..
            }
        ));
    }

    #[test]
    fn one_hot_rows_match_the_labels() {
        let d = toy(3).one_hot(4);
        let v = d.targets().values().unwrap();
        assert_eq!(v.shape(), &[3, 4]);
        assert_eq!(v.sum(), 3.0);
        assert_eq!(v[[2, 2]], 1.0);
    }
}
