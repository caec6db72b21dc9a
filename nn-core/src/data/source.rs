//! [`Data`]: anything that hands out samples by index — an in-memory
//! [`Dataset`](super::Dataset) or samples made on the fly — and the
//! shuffled mini-[`Batches`] the training loop draws from it.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::targets::TargetKind;
use crate::loss::Target;
use crate::Float;

/// Where [`Data::fill`] writes one sample's target.
pub enum TargetSlot<'a, T> {
    /// The sample's class.
    Label(&'a mut usize),
    /// The sample's values, flattened in row-major order.
    Values(&'a mut [T]),
}

/// Where [`Data::fill_batch`] writes a batch's targets, sample `k`'s in slot `k`.
pub enum TargetSlots<'a, T> {
    /// The samples' classes.
    Labels(&'a mut [usize]),
    /// The samples' values, each flattened in row-major order, one after another.
    Values(&'a mut [T]),
}

/// Samples by index: what [`fit`](https://docs.rs/nn) trains on. Implement it
/// for data made on the fly (augmentation, synthetic tasks, a file read
/// lazily); [`Dataset`](super::Dataset) implements it for data in memory.
///
/// ```
/// use nn_core::data::{Data, TargetKind, TargetSlot};
///
/// /// `y = 2x` for x in a grid, generated when asked.
/// struct Doubling { n: usize }
///
/// impl Data<f32> for Doubling {
///     fn len(&self) -> usize { self.n }
///     fn sample_shape(&self) -> &[usize] { &[1] }
///     fn target_kind(&self) -> TargetKind { TargetKind::Values { shape: vec![1] } }
///     fn fill(&self, i: usize, input: &mut [f32], target: TargetSlot<'_, f32>) {
///         input[0] = i as f32 / self.n as f32;
///         if let TargetSlot::Values(y) = target { y[0] = 2.0 * input[0] }
///     }
/// }
///
/// let data = Doubling { n: 10 };
/// let mut batches = nn_core::data::Batches::new(&data, 4, Some(0), false);
/// let (x, y) = batches.next_batch().unwrap();
/// assert_eq!(x.shape(), &[4, 1]);
/// ```
pub trait Data<T: Float> {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one input sample (the batch axis excluded).
    fn sample_shape(&self) -> &[usize];

    /// What each sample's target is: the same for every sample.
    fn target_kind(&self) -> TargetKind;

    /// Writes sample `index`'s input (row-major, `sample_shape` elements) and
    /// its target (the slot of [`Data::target_kind`]'s kind).
    fn fill(&self, index: usize, input: &mut [T], target: TargetSlot<'_, T>);

    /// Writes a whole batch: sample `indices[k]` into row `k` of `inputs`
    /// (`sample_shape` elements each) and slot `k` of `targets`. The
    /// default calls [`Data::fill`] for each sample in turn; data in memory
    /// may split the copies over the cores.
    fn fill_batch(&self, indices: &[usize], inputs: &mut [T], targets: TargetSlots<'_, T>) {
        let (per, per_y) = check_batch("fill_batch", self, indices.len(), inputs, &targets);
        let mut targets = targets;
        for (k, &i) in indices.iter().enumerate() {
            let input = &mut inputs[k * per..(k + 1) * per];
            let target = match &mut targets {
                TargetSlots::Labels(labels) => TargetSlot::Label(&mut labels[k]),
                TargetSlots::Values(values) => {
                    TargetSlot::Values(&mut values[k * per_y..(k + 1) * per_y])
                }
            };
            self.fill(i, input, target);
        }
    }
}

/// A reference to data is data (so `&dyn Data<T>` goes where a `Data` is asked for).
impl<T: Float, D: Data<T> + ?Sized> Data<T> for &D {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn sample_shape(&self) -> &[usize] {
        (**self).sample_shape()
    }
    fn target_kind(&self) -> TargetKind {
        (**self).target_kind()
    }
    fn fill(&self, index: usize, input: &mut [T], target: TargetSlot<'_, T>) {
        (**self).fill(index, input, target)
    }
    fn fill_batch(&self, indices: &[usize], inputs: &mut [T], targets: TargetSlots<'_, T>) {
        (**self).fill_batch(indices, inputs, targets)
    }
}

/// The values of one sample's input and of its target (0 for a label) for
/// a `fill_batch` of `n` samples into `inputs` and `targets`.
///
/// # Panics
/// If the buffers do not hold `n` samples of `data`'s shapes, naming `op`.
pub(crate) fn check_batch<T: Float, D: Data<T> + ?Sized>(
    op: &str,
    data: &D,
    n: usize,
    inputs: &[T],
    targets: &TargetSlots<'_, T>,
) -> (usize, usize) {
    let per = data.sample_shape().iter().product::<usize>();
    let per_y = match data.target_kind() {
        TargetKind::Values { shape } => shape.iter().product::<usize>(),
        TargetKind::Labels { .. } => 0,
    };
    let (slots, have) = match targets {
        TargetSlots::Labels(l) => (n, l.len()),
        TargetSlots::Values(v) => (n * per_y, v.len()),
    };
    assert!(
        inputs.len() == n * per && have == slots,
        "{op}: buffers of {} input values and {have} target slots for {n} samples of {per} input values{}",
        inputs.len(),
        match targets {
            TargetSlots::Labels(_) => " and a label each".to_string(),
            TargetSlots::Values(_) => format!(" and {per_y} target values"),
        }
    );
    (per, per_y)
}

/// The seed epoch `epoch` (from 0) of a run seeded with `seed` shuffles
/// with: the first epoch `seed` itself, each later one a SplitMix64 mix of
/// the two. Two runs with neighbouring seeds then share no epoch's order
/// (with `seed + epoch`, seed 1's first epoch would be seed 0's second), and
/// the mix is a stream apart from the dropout masks' ([`crate::layers::mix_seed`]
/// of the seed and the epoch).
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    // "SHUFFLE" in ASCII: not a rank, which the masks' seeds mix in.
    const SHUFFLE: u64 = 0x0053_4855_4646_4C45;
    match epoch {
        0 => seed,
        e => crate::layers::mix_seed(crate::layers::mix_seed(seed, e as u64), SHUFFLE),
    }
}

/// Mini-batches of a [`Data`], in order or shuffled by a seed.
pub struct Batches<'a, T: Float> {
    data: &'a dyn Data<T>,
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
    /// This process's share of each batch, `(rank, ranks)` (data-parallel
    /// training); `(0, 1)` takes all of it.
    shard: (usize, usize),
    /// The positions in `order` of the batch last returned.
    last: std::ops::Range<usize>,
    target_shape: Option<Vec<usize>>,
    x: ArrayD<T>,
    labels: Vec<usize>,
    values: ArrayD<T>,
}

impl<'a, T: Float> Batches<'a, T> {
    /// Batches of `batch_size` samples of `data`, in order or shuffled by
    /// `shuffle_seed`; with `drop_last` a final partial batch is skipped.
    /// Each batch is copied into buffers reused from batch to batch.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn new(
        data: &'a dyn Data<T>,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        drop_last: bool,
    ) -> Self {
        assert!(batch_size > 0, "Batches: batch_size must be positive");
        let mut order: Vec<usize> = (0..data.len()).collect();
        if let Some(seed) = shuffle_seed {
            order.shuffle(&mut StdRng::seed_from_u64(seed));
        }
        let target_shape = match data.target_kind() {
            TargetKind::Labels { .. } => None,
            TargetKind::Values { shape } => Some(shape),
        };
        Batches {
            data,
            order,
            batch_size,
            drop_last,
            pos: 0,
            shard: (0, 1),
            last: 0..0,
            target_shape,
            x: ArrayD::zeros(IxDyn(&[0])),
            labels: Vec::new(),
            values: ArrayD::zeros(IxDyn(&[0])),
        }
    }

    /// Makes this iterator yield only process `rank`'s share (of `ranks`) of
    /// every batch, for data-parallel training: each batch of
    /// `batch_size × ranks` samples (in the shared seeded order) is cut into
    /// `ranks` contiguous runs, as even as can be, and `rank` takes run
    /// `rank`. A final batch too small to give every rank a sample is skipped.
    ///
    /// ```
    /// use nn_core::data::{Batches, Dataset};
    /// use nn_core::ndarray::{ArrayD, IxDyn};
    ///
    /// let data = Dataset::new(ArrayD::<f32>::zeros(IxDyn(&[10, 1])), vec![0; 10]);
    /// let mut shard = Batches::new(&data, 2, None, false).sharded(1, 2);
    /// let mut seen = Vec::new();
    /// while shard.next_batch().is_some() {
    ///     seen.push(shard.last_indices().to_vec());
    /// }
    /// // Batches of 4 (2 per rank); the last 2 samples split one each.
    /// assert_eq!(seen, [vec![2, 3], vec![6, 7], vec![9]]);
    /// ```
    ///
    /// # Panics
    /// If `rank >= ranks`.
    pub fn sharded(mut self, rank: usize, ranks: usize) -> Self {
        assert!(
            rank < ranks,
            "Batches::sharded: rank {rank} of {ranks} ranks"
        );
        self.batch_size *= ranks;
        self.shard = (rank, ranks);
        self
    }

    /// The next batch as `(inputs, targets)` views of reused buffers, or
    /// `None` at the end. (A lending iterator: the views live until the next call.)
    pub fn next_batch(&mut self) -> Option<(ArrayViewD<'_, T>, Target<'_, T>)> {
        let (mine, whole) = self.batch_at(self.pos)?;
        self.last = mine;
        self.pos += whole;
        self.fill_last();
        Some(match &self.target_shape {
            None => (self.x.view(), Target::Labels(&self.labels)),
            Some(_) => (self.x.view(), Target::Values(self.values.view())),
        })
    }

    /// Copies the samples of the batch last chosen into the buffers.
    fn fill_last(&mut self) {
        let n = self.last.len();
        let idx = &self.order[self.last.clone()];
        resize(&mut self.x, n, self.data.sample_shape());
        let per = self.data.sample_shape().iter().product::<usize>();
        let x = self.x.as_slice_mut().expect("standard layout");
        let targets = match &self.target_shape {
            None => {
                self.labels.clear();
                self.labels.resize(n, 0);
                TargetSlots::Labels(&mut self.labels)
            }
            Some(shape) => {
                resize(&mut self.values, n, shape);
                TargetSlots::Values(self.values.as_slice_mut().expect("standard layout"))
            }
        };
        self.data.fill_batch(idx, &mut x[..n * per], targets);
    }

    /// The batch starting at position `pos` of the order: this process's
    /// positions and the whole batch's length, or `None` past the end.
    fn batch_at(&self, pos: usize) -> Option<(std::ops::Range<usize>, usize)> {
        let remaining = self.order.len() - pos;
        let (rank, ranks) = self.shard;
        if remaining == 0 || (self.drop_last && remaining < self.batch_size) {
            return None;
        }
        let whole = remaining.min(self.batch_size);
        let mine = share(whole, rank, ranks)?;
        Some((pos + mine.start..pos + mine.end, whole))
    }

    /// The sample indices (in the data) of the batch last returned.
    pub fn last_indices(&self) -> &[usize] {
        &self.order[self.last.clone()]
    }

    /// Number of batches this iterator yields in all.
    pub fn count(&self) -> usize {
        let n = self.order.len();
        let ranks = self.shard.1;
        if self.drop_last {
            n / self.batch_size
        } else if n % self.batch_size < ranks {
            // A final batch that cannot give every rank a sample is skipped.
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }
}

/// Sizes `a` as `[n, sample…]`, reallocating only when the shape changes.
fn resize<T: Float>(a: &mut ArrayD<T>, n: usize, sample: &[usize]) {
    let shape = crate::layers::batch_shape(n, sample);
    if a.shape() != shape.as_slice() {
        *a = ArrayD::zeros(IxDyn(&shape));
    }
}

/// Rank `rank`'s part of a data-parallel batch of `whole` samples, as
/// positions in it: `ranks` contiguous runs, as even as can be; `None` when
/// the batch is too small to give every rank a sample (it is then skipped).
/// How [`Batches::sharded`] and `fit_graph` share their batches out.
///
/// ```
/// use nn_core::data::share;
///
/// assert_eq!(share(13, 0, 2), Some(0..6));
/// assert_eq!(share(13, 1, 2), Some(6..13));
/// assert_eq!(share(1, 0, 2), None);
/// ```
pub fn share(whole: usize, rank: usize, ranks: usize) -> Option<std::ops::Range<usize>> {
    (whole >= ranks.max(1)).then(|| rank * whole / ranks..(rank + 1) * whole / ranks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// The first epoch shuffles with the seed itself; no two of seeds 0–99
    /// share a seed over epochs 0–99 (they did as `seed + epoch`), nor does
    /// an epoch's shuffle share one with its dropout masks.
    #[test]
    fn neighbouring_seeds_share_no_epoch() {
        assert_eq!(epoch_seed(7, 0), 7);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..100u64 {
            for epoch in 0..100 {
                assert!(
                    seen.insert(epoch_seed(seed, epoch)),
                    "seed {seed} epoch {epoch}"
                );
                if epoch > 0 {
                    assert_ne!(
                        epoch_seed(seed, epoch),
                        crate::layers::mix_seed(seed, epoch as u64)
                    );
                }
            }
        }
    }

    /// Records the samples filled.
    struct Recorder {
        filled: RefCell<Vec<usize>>,
    }

    impl Data<f32> for Recorder {
        fn len(&self) -> usize {
            12
        }
        fn sample_shape(&self) -> &[usize] {
            &[1]
        }
        fn target_kind(&self) -> TargetKind {
            TargetKind::Labels { classes: 2 }
        }
        fn fill(&self, i: usize, _: &mut [f32], _: TargetSlot<'_, f32>) {
            self.filled.borrow_mut().push(i);
        }
    }

    /// The samples each batch of 4 fills, batch by batch, on `rank` of
    /// `ranks` (each rank's batch size is its share).
    fn fills(rank: usize, ranks: usize) -> Vec<Vec<usize>> {
        let data = Recorder {
            filled: RefCell::default(),
        };
        let mut batches = Batches::new(&data, 4 / ranks, Some(7), false).sharded(rank, ranks);
        let mut out = Vec::new();
        while batches.next_batch().is_some() {
            out.push(std::mem::take(&mut *data.filled.borrow_mut()));
        }
        out
    }

    /// Through `fill_batch`'s default, each rank fills its share of each
    /// batch, in order, and the shares make up the unsharded batch.
    #[test]
    fn ranks_fill_their_share_of_each_batch() {
        let whole = fills(0, 1);
        let (first, second) = (fills(0, 2), fills(1, 2));
        assert_eq!(whole.len(), 3);
        assert_eq!((first.len(), second.len()), (3, 3));
        for ((w, a), b) in whole.iter().zip(&first).zip(&second) {
            assert_eq!((a.len(), b.len()), (2, 2));
            assert_eq!([a.clone(), b.clone()].concat(), *w);
        }
        let mut all: Vec<usize> = whole.concat();
        all.sort_unstable();
        assert_eq!(all, (0..12).collect::<Vec<_>>());
    }
}
