//! `PositionalEmbedding`: a learned vector per position, added to the input.

use ndarray::{s, ArrayD, ArrayViewD, Axis, IxDyn, Zip};
use rand::Rng;

use super::{trainable_grad_buffer, Layer, Share, Workspace};
use crate::init::Initializer;
use crate::tape::{Param, Var};
use crate::Float;

/// A learned `[seq_len, dim]` table whose first `T` rows are added to a
/// `[T, dim]` input, `T <= seq_len` (ViT's learned position embedding;
/// Keras-hub's `PositionEmbedding` followed by the sum). Parameter `weight`.
///
/// ```
/// use nn_core::layers::{Layer, PositionalEmbedding};
/// use nn_core::rand::{rngs::StdRng, SeedableRng};
/// use ndarray::Array3;
///
/// let mut pos = PositionalEmbedding::<f32>::new(16, 8, &mut StdRng::seed_from_u64(0));
/// let x = Array3::<f32>::zeros((2, 10, 8)).into_dyn(); // 10 of the 16 positions
/// let y = pos.forward_train(x.view()).to_owned();
/// assert_eq!(y.slice(ndarray::s![1, .., ..]), pos.weight.value().slice(ndarray::s![..10, ..]));
/// ```
pub struct PositionalEmbedding<T: Float> {
    /// `[seq_len, dim]`.
    pub weight: Param<T>,
    seq_len: usize,
    dim: usize,
    buf: Workspace<T>,
}

impl<T: Float> PositionalEmbedding<T> {
    /// A table for sequences of up to `seq_len` positions of `dim` features,
    /// drawn from `N(0, 0.02²)` (ViT's initialization).
    ///
    /// # Panics
    /// If either size is 0.
    pub fn new<R: Rng + ?Sized>(seq_len: usize, dim: usize, rng: &mut R) -> Self {
        assert!(
            seq_len > 0 && dim > 0,
            "PositionalEmbedding: sizes must be positive, got seq_len {seq_len} and dim {dim}"
        );
        let init = Initializer::RandomNormal {
            mean: 0.0,
            stddev: 0.02,
        };
        PositionalEmbedding {
            weight: Param::new(init.init::<T, R>(&[seq_len, dim], rng)),
            seq_len,
            dim,
            buf: Workspace::new(),
        }
    }

    /// The longest sequence it embeds.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// The width of each position's vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[track_caller]
    fn check(&self, x: &[usize]) {
        assert!(
            x.len() == 3 && x[1] <= self.seq_len && x[2] == self.dim,
            "PositionalEmbedding: expected input [batch, time <= {}, {}], got {x:?}",
            self.seq_len,
            self.dim
        );
    }
}

/// `y = x + weight[..T]` for a batch `x` (`[B, T, dim]`).
fn add_into<T: Float>(weight: &Param<T>, x: ArrayViewD<'_, T>, y: ndarray::ArrayViewMutD<'_, T>) {
    let w = weight.value();
    let table = w.slice(s![..x.shape()[1], ..]);
    Zip::from(y)
        .and(&x)
        .and_broadcast(&table)
        .for_each(|y, &x, &p| *y = x + p);
}

impl<T: Float> Share for PositionalEmbedding<T> {
    fn share(&self) -> Self {
        PositionalEmbedding {
            weight: self.weight.clone(),
            seq_len: self.seq_len,
            dim: self.dim,
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Layer<T> for PositionalEmbedding<T> {
    fn type_name(&self) -> &'static str {
        "PositionalEmbedding"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [t, d] if *t <= self.seq_len && *d == self.dim => Ok(input.to_vec()),
            _ => Err(format!(
                "PositionalEmbedding of {} positions of {} features takes [time <= {}, {}], not {input:?}",
                self.seq_len, self.dim, self.seq_len, self.dim
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.check(&x.shape());
        let t = x.shape()[1];
        let table = x.tape().param(&self.weight);
        let table = if t == self.seq_len {
            table
        } else {
            table.slice(0, 0..t)
        };
        // [B, T, dim] + [T, dim]: the tape sums the gradient over the batch.
        x + &table
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.check(x.shape());
        add_into(&self.weight, x.view(), self.buf.output_mut(x.shape()));
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
        self.check(x.shape());
        if let Some(mut dw) = trainable_grad_buffer(&self.weight) {
            let mut rows = dw.slice_mut(s![..x.shape()[1], ..]);
            for sample in dy.axis_iter(Axis(0)) {
                rows += &sample;
            }
        }
        self.buf
            .input_grad(need_input_grad, x.shape(), |mut dx| dx.assign(&dy))
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check(x.shape());
        let mut y = ArrayD::zeros(IxDyn(x.shape()));
        add_into(&self.weight, x.view(), y.view_mut());
        y
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
    }
}

crate::instances!(impl Layer for PositionalEmbedding: forward, forward_train, backward, predict);
