//! Data: an in-memory [`Dataset`], shuffled mini-batches, train/validation
//! splits, and the [`mnist`] loader.

pub mod mnist;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::Float;

/// Inputs (`[n, …]`, one sample per row) and integer labels, in memory.
#[derive(Clone, Debug)]
pub struct Dataset<T: Float = f32> {
    inputs: ArrayD<T>,
    labels: Vec<usize>,
}

impl<T: Float> Dataset<T> {
    /// A dataset of `inputs` (samples along the first axis) and one label each.
    ///
    /// # Panics
    /// If the counts differ.
    pub fn new(inputs: ArrayD<T>, labels: Vec<usize>) -> Self {
        assert!(
            inputs.ndim() >= 1 && inputs.shape()[0] == labels.len(),
            "Dataset: {} labels for inputs of shape {:?}",
            labels.len(),
            inputs.shape()
        );
        Dataset {
            // Already row-major (the usual case): keep it, no copy.
            inputs: if inputs.is_standard_layout() {
                inputs
            } else {
                inputs.as_standard_layout().into_owned()
            },
            labels,
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All inputs.
    pub fn inputs(&self) -> ArrayViewD<'_, T> {
        self.inputs.view()
    }

    /// All labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        &self.inputs.shape()[1..]
    }

    /// The same data with each sample reshaped (e.g. `[28, 28]` → `[784]`).
    ///
    /// # Panics
    /// If the element count per sample differs.
    pub fn reshaped(self, sample_shape: &[usize]) -> Self {
        let mut shape = vec![self.len()];
        shape.extend_from_slice(sample_shape);
        let inputs = self
            .inputs
            .into_shape_with_order(IxDyn(&shape))
            .unwrap_or_else(|e| {
                panic!("Dataset::reshaped: cannot view samples as {sample_shape:?}: {e}")
            });
        Dataset {
            inputs,
            labels: self.labels,
        }
    }

    /// The samples `range` (in order), as a new dataset.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Dataset {
            inputs: self
                .inputs
                .slice_axis(Axis(0), Slice::from(range.clone()))
                .to_owned(),
            labels: self.labels[range].to_vec(),
        }
    }

    /// Splits off the last `fraction` of the samples for validation, as Keras's
    /// `validation_split` does (no shuffling: shuffle first if the order matters).
    ///
    /// # Panics
    /// If `fraction` is not in `[0, 1)`.
    pub fn split(&self, fraction: f64) -> (Self, Self) {
        assert!(
            (0.0..1.0).contains(&fraction),
            "Dataset::split: fraction must be in [0, 1), got {fraction}"
        );
        let n_val = (self.len() as f64 * fraction).round() as usize;
        let cut = self.len() - n_val;
        (self.slice(0..cut), self.slice(cut..self.len()))
    }

    /// Mini-batches in order, or shuffled by `seed`; with `drop_last` a final
    /// partial batch is skipped. Each batch is copied into a buffer reused from
    /// batch to batch.
    pub fn batches(
        &self,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        drop_last: bool,
    ) -> Batches<'_, T> {
        assert!(
            batch_size > 0,
            "Dataset::batches: batch_size must be positive"
        );
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = shuffle_seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        Batches {
            data: self,
            order,
            batch_size,
            drop_last,
            pos: 0,
            x: ArrayD::zeros(IxDyn(&[0])),
            y: Vec::new(),
        }
    }
}

/// An iterator over mini-batches; see [`Dataset::batches`].
pub struct Batches<'a, T: Float> {
    data: &'a Dataset<T>,
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
    x: ArrayD<T>,
    y: Vec<usize>,
}

impl<T: Float> Batches<'_, T> {
    /// The next batch as `(inputs, labels)` views of reused buffers, or `None`
    /// at the end. (A lending iterator: the views live until the next call.)
    pub fn next_batch(&mut self) -> Option<(ArrayViewD<'_, T>, &[usize])> {
        let remaining = self.order.len() - self.pos;
        if remaining == 0 || (self.drop_last && remaining < self.batch_size) {
            return None;
        }
        let n = remaining.min(self.batch_size);
        let idx = &self.order[self.pos..self.pos + n];
        self.pos += n;
        let shape = crate::layers::batch_shape(n, self.data.sample_shape());
        if self.x.shape() != shape.as_slice() {
            self.x = ArrayD::zeros(IxDyn(&shape));
        }
        let per = self.data.sample_shape().iter().product::<usize>();
        let src = self.data.inputs.as_slice().expect("standard layout");
        let dst = self.x.as_slice_mut().expect("standard layout");
        for (k, &i) in idx.iter().enumerate() {
            dst[k * per..(k + 1) * per].copy_from_slice(&src[i * per..(i + 1) * per]);
        }
        self.y.clear();
        self.y.extend(idx.iter().map(|&i| self.data.labels[i]));
        Some((self.x.view(), &self.y))
    }

    /// Number of batches this iterator yields in all.
    pub fn count(&self) -> usize {
        let n = self.order.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset<f32> {
        Dataset::new(
            ArrayD::from_shape_fn(IxDyn(&[n, 2]), |i| (i[0] * 10 + i[1]) as f32),
            (0..n).collect(),
        )
    }

    #[test]
    fn batches_cover_every_sample_once_and_keep_pairs_together() {
        let d = toy(10);
        let mut b = d.batches(4, Some(3), false);
        assert_eq!(b.count(), 3);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        while let Some((x, y)) = b.next_batch() {
            sizes.push(y.len());
            for (row, &label) in x.outer_iter().zip(y) {
                assert_eq!(row[[0]], (label * 10) as f32);
                seen.push(label);
            }
        }
        assert_eq!(sizes, vec![4, 4, 2]);
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shuffling_depends_on_the_seed_and_drop_last_drops() {
        let d = toy(10);
        let order = |seed| {
            let mut b = d.batches(10, Some(seed), false);
            b.next_batch().unwrap().1.to_vec()
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        assert_ne!(order(1), (0..10).collect::<Vec<_>>());
        let mut b = d.batches(4, None, true);
        assert_eq!(b.count(), 2);
        assert_eq!(b.next_batch().unwrap().1, &[0, 1, 2, 3]);
        assert!(b.next_batch().is_some());
        assert!(b.next_batch().is_none());
    }

    #[test]
    fn split_keeps_the_tail_for_validation() {
        let (train, val) = toy(10).split(0.2);
        assert_eq!(train.labels(), &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(val.labels(), &[8, 9]);
    }
}
