//! Histograms in TensorBoard's format, and how the callback buckets a tensor.

/// A histogram as an event file stores it (TensorFlow's `HistogramProto`).
///
/// Bucket `i` spans from the previous bucket's limit (from [`Histogram::min`]
/// for the first) to `bucket_limits[i]`; TensorBoard draws the first bucket
/// from `min` and the last up to `max`.
///
/// ```no_run
/// # fn main() -> Result<(), nn::train::EventFileError> {
/// for event in nn::train::read_events("logs/train/events.out.tfevents.1700000000.nn.1.0")? {
///     if let Some(h) = event.histogram("dense.weight") {
///         println!("epoch {}: mean {:.3}, {} buckets", event.step, h.mean(), h.bucket_counts.len());
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values (a `double`, as in the protobuf).
    pub num: f64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_squares: f64,
    /// Each bucket's right edge (the protobuf's `bucket_limit`); the last is at
    /// least [`Histogram::max`].
    pub bucket_limits: Vec<f64>,
    /// How many values fell in each bucket (the protobuf's `bucket`).
    pub bucket_counts: Vec<f64>,
}

/// Buckets per histogram: `tf.summary.histogram`'s default in TensorFlow 2.
pub(crate) const BUCKETS: usize = 30;

impl Histogram {
    /// The mean of the values (NaN for an empty histogram).
    pub fn mean(&self) -> f64 {
        self.sum / self.num
    }

    /// The histogram of the finite values among `values`, in [`BUCKETS`]
    /// equal-width buckets over `[min, max]` (TensorFlow 2's
    /// `tf.summary.histogram` layout rather than TensorFlow 1's ~1500
    /// exponential buckets: as informative for a weight tensor, and a value's
    /// bucket is a division, not a search). A bucket holds the values from
    /// its left edge up to but excluding its right edge, the last one `max`
    /// too, as TensorFlow's `Histogram::Add` does. When every value is equal,
    /// one bucket holds them all. `None` when no value is finite.
    ///
    /// Infinities and NaN are left out (and not counted in `num`): they would
    /// leave TensorBoard no finite range to draw.
    pub(crate) fn of<I>(values: I) -> Option<Histogram>
    where
        I: IntoIterator<Item = f64>,
        I::IntoIter: Clone,
    {
        let values = values.into_iter().filter(|v| v.is_finite());
        let mut h = Histogram {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Histogram::default()
        };
        for v in values.clone() {
            h.min = h.min.min(v);
            h.max = h.max.max(v);
            h.num += 1.0;
            h.sum += v;
            h.sum_squares += v * v;
        }
        if h.num == 0.0 {
            return None;
        }
        if h.min == h.max {
            h.bucket_limits = vec![h.max];
            h.bucket_counts = vec![h.num];
            return Some(h);
        }
        let width = (h.max - h.min) / BUCKETS as f64;
        h.bucket_limits = (1..BUCKETS).map(|i| h.min + width * i as f64).collect();
        // The last edge is `max` itself, not `min + 30 · width`, which rounding
        // could put below it.
        h.bucket_limits.push(h.max);
        h.bucket_counts = vec![0.0; BUCKETS];
        for v in values {
            // `as usize` saturates, and `max` lands at BUCKETS: clamp to the last.
            let bucket = (((v - h.min) / width) as usize).min(BUCKETS - 1);
            h.bucket_counts[bucket] += 1.0;
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_width_buckets_cover_min_to_max() {
        // 0, 1, …, 30: buckets of width 1, the last holding 29 and 30.
        let h = Histogram::of((0..=30).map(f64::from)).unwrap();
        assert_eq!((h.min, h.max, h.num), (0.0, 30.0, 31.0));
        assert_eq!(h.sum, 465.0);
        assert_eq!(
            h.sum_squares,
            (0..=30).map(|v| f64::from(v * v)).sum::<f64>()
        );
        assert_eq!(h.bucket_limits.len(), BUCKETS);
        assert_eq!(h.bucket_limits[0], 1.0);
        assert_eq!(*h.bucket_limits.last().unwrap(), 30.0);
        let mut expected = vec![1.0; BUCKETS];
        expected[BUCKETS - 1] = 2.0;
        assert_eq!(h.bucket_counts, expected);
        assert_eq!(h.mean(), 15.0);
    }

    #[test]
    fn counts_add_up_and_limits_increase() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 9.0)
            .collect();
        let h = Histogram::of(values.iter().copied()).unwrap();
        assert_eq!(h.bucket_counts.iter().sum::<f64>(), 1000.0);
        assert!(h.bucket_limits.windows(2).all(|w| w[0] < w[1]));
        assert!(*h.bucket_limits.last().unwrap() >= h.max);
    }

    #[test]
    fn equal_values_share_one_bucket() {
        let h = Histogram::of([0.0; 5]).unwrap();
        assert_eq!((h.min, h.max, h.num), (0.0, 0.0, 5.0));
        assert_eq!(h.bucket_limits, [0.0]);
        assert_eq!(h.bucket_counts, [5.0]);
    }

    #[test]
    fn non_finite_values_are_left_out() {
        let h = Histogram::of([1.0, f64::NAN, f64::INFINITY, 3.0]).unwrap();
        assert_eq!((h.min, h.max, h.num, h.sum), (1.0, 3.0, 2.0, 4.0));
        assert!(Histogram::of([f64::NAN]).is_none());
        assert!(Histogram::of([]).is_none());
    }
}
