//! How a file loader ([`crate::data::npy`], [`crate::data::csv`]) reads the
//! targets it finds: as class labels or as values.

/// What the targets in a file are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetsAs {
    /// Integer class labels (whole numbers `>= 0`), one per sample.
    Labels {
        /// The number of classes, every label checked to be below it; `None`
        /// infers it as the largest label + 1.
        classes: Option<usize>,
    },
    /// Values (regression targets, several outputs, probabilities).
    Values,
}

impl TargetsAs {
    /// Labels of `classes` classes, each checked.
    pub fn labels(classes: usize) -> Self {
        TargetsAs::Labels {
            classes: Some(classes),
        }
    }

    /// Labels whose number of classes is the largest label + 1.
    pub fn inferred_labels() -> Self {
        TargetsAs::Labels { classes: None }
    }
}

impl Default for TargetsAs {
    /// Labels with the number of classes inferred.
    fn default() -> Self {
        Self::inferred_labels()
    }
}
