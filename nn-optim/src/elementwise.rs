//! Element-wise updates over contiguous parameters, split over nn's worker
//! threads when large (Adam's square roots and divisions were a tenth of an
//! MLP epoch on one core while the other waited).

use std::ops::Range;

use nn_core::parallel::for_each_range;

/// Runs `update` over index ranges covering `0..len`. Each element is updated
/// independently, so the result does not depend on how the range is split.
pub(crate) fn update_elements<F: Fn(Range<usize>) + Sync>(len: usize, update: F) {
    // A few arithmetic operations per element: count the work as 4 touches.
    for_each_range(len, 4 * len, &update);
}
