//! What a dataset's samples are compared with: class labels or values.

use ndarray::{ArrayD, ArrayViewD};

use crate::loss::Target;
use crate::Float;

/// Every sample's target, the first axis the sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets<T: Float> {
    /// One integer class per sample.
    Labels(Vec<usize>),
    /// Values of any shape per sample, `[n, …]`: regression targets, several
    /// outputs, probabilities or one-hot rows.
    Values(ArrayD<T>),
}

impl<T: Float> Targets<T> {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Labels(l) => l.len(),
            Targets::Values(v) => v.shape().first().copied().unwrap_or(0),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What one sample's target is.
    pub fn kind(&self) -> TargetKind {
        match self {
            Targets::Labels(l) => TargetKind::Labels {
                // Saturating: a label of `usize::MAX` (read from a file)
                // then names more classes than any model has, an error
                // `fit` reports, instead of overflowing.
                classes: l.iter().max().map_or(0, |&m| m.saturating_add(1)),
            },
            Targets::Values(v) => TargetKind::Values {
                shape: v.shape().get(1..).unwrap_or_default().to_vec(),
            },
        }
    }

    /// All targets as a loss takes them.
    pub fn view(&self) -> Target<'_, T> {
        match self {
            Targets::Labels(l) => Target::Labels(l),
            Targets::Values(v) => Target::Values(v.view()),
        }
    }

    /// The values, if the targets are values.
    pub fn values(&self) -> Option<ArrayViewD<'_, T>> {
        match self {
            Targets::Values(v) => Some(v.view()),
            Targets::Labels(_) => None,
        }
    }
}

/// The kind of one sample's target, as [`crate::data::Data::target_kind`] declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// An integer class in `0..classes` (`classes` is the largest label + 1
    /// when not declared).
    Labels {
        /// Number of classes the labels may name.
        classes: usize,
    },
    /// Values of this shape (the batch axis excluded).
    Values {
        /// One sample's target shape.
        shape: Vec<usize>,
    },
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetKind::Labels { classes } => write!(f, "class labels (0..{classes})"),
            TargetKind::Values { shape } => write!(f, "target values of shape {shape:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_label_names_the_classes_without_overflowing() {
        let kind = |l: Vec<usize>| Targets::<f32>::Labels(l).kind();
        assert_eq!(kind(vec![2, 0, 1]), TargetKind::Labels { classes: 3 });
        assert_eq!(kind(vec![]), TargetKind::Labels { classes: 0 });
        assert_eq!(
            kind(vec![0, usize::MAX]),
            TargetKind::Labels {
                classes: usize::MAX
            }
        );
    }
}
