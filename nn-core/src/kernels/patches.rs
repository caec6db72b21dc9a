//! Non-overlapping square patches of an image as a sequence (a vision
//! transformer's tokens), and the backward that scatters them back.
//!
//! An image `[C, H, W]` (or `[H, W]`, one channel) cut into `p × p` patches
//! gives `[(H/p)·(W/p), C·p·p]`: patches in row-major order, each patch's
//! values ordered channel, row, column — PyTorch's
//! `x.reshape(B, C, H/p, p, W/p, p).permute(0, 2, 4, 1, 3, 5)` flattened, and
//! the order of a `Conv2d(C, D, p, stride = p)` patch embedding's weights.

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::Float;
pub use nn_spec::shapes::{patch_grid, patches_shape};

/// Calls `f(image_offset, patch_offset)` for every run of `p` elements of
/// one sample contiguous on both sides (a patch row): the one map both
/// directions walk, a slice copy per call.
fn for_each_row(grid: [usize; 3], p: usize, mut f: impl FnMut(usize, usize)) {
    let [c, h, w] = grid;
    let (rows, cols) = (h / p, w / p);
    let width = c * p * p;
    for pr in 0..rows {
        for pc in 0..cols {
            let token = (pr * cols + pc) * width;
            for ch in 0..c {
                for i in 0..p {
                    let src = ch * h * w + (pr * p + i) * w + pc * p;
                    f(src, token + (ch * p + i) * p);
                }
            }
        }
    }
}

fn slices<'a, T: Float>(op: &str, a: &'a ArrayViewD<'_, T>) -> &'a [T] {
    a.as_slice().unwrap_or_else(|| {
        panic!(
            "{op}: expected a contiguous array, got strides {:?}",
            a.strides()
        )
    })
}

/// Cuts the batch `x: [B, (C,) H, W]` into `size × size` patches, into `y:
/// [B, (H/p)·(W/p), C·p·p]`.
pub fn patches_into<T: Float>(x: ArrayViewD<'_, T>, size: usize, mut y: ArrayViewMutD<'_, T>) {
    let grid = patch_grid(&x.shape()[1..], size).unwrap_or_else(|e| panic!("{e}"));
    let per = grid.iter().product::<usize>();
    assert_eq!(
        y.len(),
        x.len(),
        "patches: output {:?} does not fit input {:?}",
        y.shape(),
        x.shape()
    );
    let x = slices("patches", &x);
    let y = y
        .as_slice_mut()
        .expect("patches: the output buffer is contiguous");
    for (xs, ys) in x.chunks_exact(per).zip(y.chunks_exact_mut(per)) {
        for_each_row(grid, size, |s, d| {
            ys[d..d + size].copy_from_slice(&xs[s..s + size])
        });
    }
}

/// The gradient of [`patches_into`]: `dy` back to the image layout, into `dx`.
pub fn patches_backward_into<T: Float>(
    dy: ArrayViewD<'_, T>,
    size: usize,
    mut dx: ArrayViewMutD<'_, T>,
) {
    let grid = patch_grid(&dx.shape()[1..], size).unwrap_or_else(|e| panic!("{e}"));
    let per = grid.iter().product::<usize>();
    let dy = slices("patches backward", &dy);
    let dx = dx
        .as_slice_mut()
        .expect("patches backward: the gradient buffer is contiguous");
    for (gs, ds) in dy.chunks_exact(per).zip(dx.chunks_exact_mut(per)) {
        for_each_row(grid, size, |s, d| {
            ds[s..s + size].copy_from_slice(&gs[d..d + size])
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn patches_follow_pytorchs_reshape_permute_order() {
        // A 4×4 image holding 0..16 in 2×2 patches: the first patch is the
        // top-left square (0, 1, 4, 5), the second the top-right (2, 3, 6, 7).
        let x =
            ArrayD::from_shape_vec(IxDyn(&[1, 4, 4]), (0..16).map(|v| v as f64).collect()).unwrap();
        let mut y = ArrayD::zeros(IxDyn(&[1, 4, 4]));
        patches_into(x.view(), 2, y.view_mut());
        let want = [
            0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.,
        ];
        assert_eq!(y.as_slice().unwrap(), want);
        let mut back = ArrayD::zeros(IxDyn(&[1, 4, 4]));
        patches_backward_into(y.view(), 2, back.view_mut());
        assert_eq!(back, x);
    }

    /// Two samples of two channels, 6×6 in 3×3 patches, against PyTorch's
    /// `reshape(B, C, H/p, p, W/p, p).permute(0, 2, 4, 1, 3, 5)` spelled
    /// out with ndarray; the backward puts every value back.
    #[test]
    fn channels_follow_the_reshape_permute_too() {
        let (b, c, h, p) = (2, 2, 6, 3);
        let n = b * c * h * h;
        let x = ArrayD::from_shape_vec(IxDyn(&[b, c, h, h]), (0..n).map(|v| v as f32).collect())
            .unwrap();
        let want = x
            .clone()
            .into_shape_with_order(IxDyn(&[b, c, h / p, p, h / p, p]))
            .unwrap()
            .permuted_axes(IxDyn(&[0, 2, 4, 1, 3, 5]))
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[b, 4, c * p * p]))
            .unwrap();
        let mut y = ArrayD::zeros(IxDyn(&[b, 4, c * p * p]));
        patches_into(x.view(), p, y.view_mut());
        assert_eq!(y, want);
        let mut back = ArrayD::zeros(IxDyn(&[b, c, h, h]));
        patches_backward_into(y.view(), p, back.view_mut());
        assert_eq!(back, x);
    }

    #[test]
    fn a_patch_that_does_not_tile_is_refused() {
        assert!(patches_shape(&[28, 28], 5)
            .unwrap_err()
            .contains("does not tile"));
        assert_eq!(patches_shape(&[3, 28, 28], 7).unwrap(), [16, 147]);
    }
}
