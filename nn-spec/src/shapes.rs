//! Output sizes of sliding windows (convolution and pooling) and of image
//! patches, used by the kernels at run time and by the `sequential!` macro at
//! compile time.

/// Length of a window's output along one axis: `(input + pad_total - span) /
/// stride + 1` with `span = dilation * (kernel - 1) + 1`, or `None` when the
/// (dilated) kernel does not fit the padded input or a size is zero.
///
/// ```
/// // A 5-tap kernel over 28 inputs, stride 1: 24 outputs (LeNet-5's first layer).
/// assert_eq!(nn_spec::shapes::window_output_len(28, 5, 1, 1, 0), Some(24));
/// assert_eq!(nn_spec::shapes::window_output_len(3, 5, 1, 1, 0), None);
/// ```
pub fn window_output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_total: usize,
) -> Option<usize> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation.checked_mul(kernel - 1)?.checked_add(1)?;
    let padded = input.checked_add(pad_total)?;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

/// Total padding along one axis for Keras's and PyTorch's `"same"`: enough
/// that the output has `ceil(input / stride)` entries. Of an odd total, the
/// extra row or column goes after (bottom, right), as both frameworks do.
///
/// ```
/// assert_eq!(nn_spec::shapes::same_padding_total(28, 3, 1, 1), 2);
/// assert_eq!(nn_spec::shapes::same_padding_total(28, 3, 2, 1), 1);
/// ```
pub fn same_padding_total(input: usize, kernel: usize, stride: usize, dilation: usize) -> usize {
    if input == 0 || kernel == 0 || stride == 0 {
        return 0;
    }
    // Saturating: absurd sizes written in a model must not overflow the macro.
    let out = input.div_ceil(stride);
    let span = dilation.saturating_mul(kernel - 1).saturating_add(1);
    ((out - 1).saturating_mul(stride).saturating_add(span)).saturating_sub(input)
}

/// Splits a total padding into `(before, after)`, the odd one after.
pub fn split_padding(total: usize) -> (usize, usize) {
    (total / 2, total - total / 2)
}

/// The `[C, H, W]` of one sample, or why `sample` cannot be cut into
/// `size × size` patches.
pub fn patch_grid(sample: &[usize], size: usize) -> Result<[usize; 3], String> {
    let (c, h, w) = match *sample {
        [h, w] => (1, h, w),
        [c, h, w] => (c, h, w),
        _ => {
            return Err(format!(
                "expected an image (height, width) or (channels, height, width), got {sample:?}"
            ))
        }
    };
    if size == 0 || !h.is_multiple_of(size) || !w.is_multiple_of(size) {
        return Err(format!(
            "a {size}×{size} patch does not tile a {h}×{w} image"
        ));
    }
    Ok([c, h, w])
}

/// One sample's output shape, `[(H/p)·(W/p), C·p·p]`.
pub fn patches_shape(sample: &[usize], size: usize) -> Result<[usize; 2], String> {
    let [c, h, w] = patch_grid(sample, size)?;
    Ok([(h / size) * (w / size), c * size * size])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_keeps_ceil_of_input_over_stride() {
        // The defining property of "same", checked by brute force.
        for input in 1..20 {
            for kernel in 1..6 {
                for stride in 1..4 {
                    for dilation in 1..3 {
                        let total = same_padding_total(input, kernel, stride, dilation);
                        assert_eq!(
                            window_output_len(input, kernel, stride, dilation, total),
                            Some(input.div_ceil(stride)),
                            "input {input} kernel {kernel} stride {stride} dilation {dilation}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn window_rejects_zero_sizes_and_overflow() {
        assert_eq!(window_output_len(10, 0, 1, 1, 0), None);
        assert_eq!(window_output_len(10, 3, 0, 1, 0), None);
        assert_eq!(window_output_len(usize::MAX, 3, 1, 1, 5), None);
        assert_eq!(window_output_len(10, usize::MAX, 1, 2, 0), None);
        assert_eq!(same_padding_total(10, 3, 1, usize::MAX), usize::MAX - 10);
    }
}
