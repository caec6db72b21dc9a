//! `Patches`: an image cut into square patches, a vision transformer's
//! sequence of tokens.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{batch_shape, Layer, Share, Workspace};
use crate::kernels::owned::owned;
use crate::kernels::patches::{patch_grid, patches_backward_into, patches_into, patches_shape};
use crate::tape::Var;
use crate::Float;

/// Non-overlapping `SIZE × SIZE` patches of a `(channels, height, width)` or
/// `(height, width)` image, as the sequence `((H/p)·(W/p), C·p·p)`: patches
/// in row-major order, each ordered channel, row, column (the layout of
/// PyTorch's `reshape`/`permute` patching, see [`crate::kernels::patches`]).
///
/// ```
/// use nn_core::layers::{Layer, Patches};
///
/// let vit_tokens = Patches::<f32>::new(7);
/// assert_eq!(vit_tokens.output_shape(&[28, 28]).unwrap(), vec![16, 49]);
/// ```
pub struct Patches<T: Float> {
    size: usize,
    buf: Workspace<T>,
}

impl<T: Float> Patches<T> {
    /// Patches of `size × size` pixels.
    ///
    /// # Panics
    /// If `size` is zero.
    pub fn new(size: usize) -> Self {
        assert!(size > 0, "Patches: the patch size must be positive");
        Patches {
            size,
            buf: Workspace::new(),
        }
    }

    /// The side of a patch.
    pub fn size(&self) -> usize {
        self.size
    }

    fn out_shape(&self, x: &[usize]) -> smallvec::SmallVec<[usize; 6]> {
        let sample = patches_shape(&x[1.min(x.len())..], self.size)
            .unwrap_or_else(|e| panic!("Patches: input {x:?}: {e}"));
        batch_shape(x[0], &sample)
    }
}

impl<T: Float> Share for Patches<T> {
    fn share(&self) -> Self {
        Self::new(self.size)
    }
}

impl<T: Float> Layer<T> for Patches<T> {
    fn type_name(&self) -> &'static str {
        "Patches"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        patches_shape(input, self.size).map(|s| s.to_vec())
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let shape = x.shape();
        let [c, h, w] = patch_grid(&shape[1..], self.size)
            .unwrap_or_else(|e| panic!("Patches: input {shape:?}: {e}"));
        let (p, n) = (self.size, shape[0]);
        // [n, c, h/p, p, w/p, p] → [n, h/p, w/p, c, p, p]: the kernel's order.
        x.reshape(&[n, c, h / p, p, w / p, p])
            .permute(&[0, 2, 4, 1, 3, 5])
            .reshape(&[n, (h / p) * (w / p), c * p * p])
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        let shape = self.out_shape(x.shape());
        patches_into(x, self.size, self.buf.output_mut(&shape));
        self.buf.output()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        let size = self.size;
        self.buf.input_grad(need_input_grad, x.shape(), |dx| {
            patches_backward_into(dy, size, dx)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let shape = self.out_shape(x.shape());
        owned(IxDyn(&shape), |y| patches_into(x, self.size, y))
    }
}

crate::instances!(impl Layer for Patches: forward, forward_train, backward, predict);
