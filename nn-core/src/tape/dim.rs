//! Axes as PyTorch's `dim` arguments take them: counted from the front
//! (`0`, `1`, …) or, when negative, from the back (`-1` the last).

use std::fmt::Display;

/// An axis of a tensor: a `usize` from the front, or an `isize`/`i32`
/// that, when negative, counts from the back (`x.sum_axis(-1, false)`).
pub trait Dim: Copy + Display {
    /// The axis among `len` places (the tensor's axes, or one more where
    /// an op inserts an axis), `None` when out of range.
    fn among(self, len: usize) -> Option<usize>;
}

impl Dim for usize {
    fn among(self, len: usize) -> Option<usize> {
        (self < len).then_some(self)
    }
}

impl Dim for isize {
    fn among(self, len: usize) -> Option<usize> {
        if self < 0 {
            len.checked_sub(self.unsigned_abs())
        } else {
            (self as usize).among(len)
        }
    }
}

impl Dim for i32 {
    fn among(self, len: usize) -> Option<usize> {
        (self as isize).among(len)
    }
}

/// `dim` among `len` places of `shape` for `op`.
///
/// # Panics
/// If it is out of range, naming `op`, the shape and the range allowed (at
/// the caller's line).
#[track_caller]
pub(crate) fn place(op: &str, dim: impl Dim, shape: &[usize], len: usize) -> usize {
    // A `match`, not a closure: the panic keeps the caller's location.
    match dim.among(len) {
        Some(axis) => axis,
        None => panic!(
            "{op}: axis {dim} is out of range for shape {shape:?} (0 to {} from the front, -{len} to -1 from the back)",
            len as isize - 1
        ),
    }
}

/// `dim` among the axes of `shape`, for `op` (see [`place`]).
#[track_caller]
pub(crate) fn axis(op: &str, dim: impl Dim, shape: &[usize]) -> usize {
    place(op, dim, shape, shape.len())
}

#[cfg(test)]
mod tests {
    use super::Dim;

    #[test]
    fn negative_axes_count_from_the_back() {
        assert_eq!((-1isize).among(3), Some(2));
        assert_eq!((-3i32).among(3), Some(0));
        assert_eq!((-4isize).among(3), None);
        assert_eq!(2usize.among(3), Some(2));
        assert_eq!(3usize.among(3), None);
        assert_eq!(3i32.among(3), None);
        assert_eq!(0i32.among(0), None);
    }
}
