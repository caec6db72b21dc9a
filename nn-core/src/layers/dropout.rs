//! `Dropout`: inverted dropout, active only in training.

use std::cell::RefCell;

use crate::kernels::dropout::MaskRng;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::{Rng, SeedableRng};

use super::{ensure_shape, Layer, Share, Workspace};
use crate::kernels::arith::Mul;
use crate::kernels::{binary, dropout};
use crate::tape::Var;
use crate::Float;

/// Zeroes each element with probability `rate` during training and scales the
/// rest by `1 / (1 - rate)`, so evaluation needs no rescaling (Keras and
/// PyTorch). The masks come from the layer's own seeded RNG.
pub struct Dropout<T: Float> {
    rate: f64,
    training: bool,
    rng: RefCell<MaskRng>,
    /// `0` or `1 / (1 - rate)` per element of the last training batch.
    mask: ArrayD<T>,
    buf: Workspace<T>,
}

impl<T: Float> Dropout<T> {
    /// A dropout layer; its masks are drawn from an RNG seeded by `rng`.
    ///
    /// # Panics
    /// If `rate` is not in `[0, 1)`.
    pub fn new<R: Rng + ?Sized>(rate: f64, rng: &mut R) -> Self {
        assert!(
            (0.0..1.0).contains(&rate),
            "Dropout: rate must be in [0, 1), got {rate}"
        );
        Dropout {
            rate,
            training: true,
            rng: RefCell::new(MaskRng::seed_from_u64(rng.random())),
            mask: ArrayD::zeros(IxDyn(&[0])),
            buf: Workspace::new(),
        }
    }

    /// The drop probability.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Reseeds the mask RNG (to reproduce a run).
    pub fn reseed(&self, seed: u64) {
        *self.rng.borrow_mut() = MaskRng::seed_from_u64(seed);
    }

    fn active(&self) -> bool {
        self.training && self.rate > 0.0
    }

    /// Fills `mask` with `0` (probability `rate`) or `1 / (1 - rate)`.
    fn draw_mask(&self, mask: &mut ArrayD<T>) {
        dropout::fill_mask_from(mask.view_mut(), self.rate, &mut self.rng.borrow_mut());
    }
}

impl<T: Float> Share for Dropout<T> {
    /// The same rate and training flag, with an RNG of its own seeded from
    /// this layer's (which advances it), so the two places draw different
    /// masks, as a Keras layer called twice does, and a run stays reproducible.
    fn share(&self) -> Self {
        let seed = self.rng.borrow_mut().random();
        Dropout {
            rate: self.rate,
            training: self.training,
            rng: RefCell::new(MaskRng::seed_from_u64(seed)),
            mask: ArrayD::zeros(IxDyn(&[0])),
            buf: Workspace::new(),
        }
    }
}

impl<T: Float> Layer<T> for Dropout<T> {
    fn type_name(&self) -> &'static str {
        "Dropout"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        if !self.active() {
            return x.clone();
        }
        let mut mask = ArrayD::zeros(IxDyn(&x.shape()));
        self.draw_mask(&mut mask);
        x * &x.tape().constant(mask)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        if !self.active() {
            self.buf.output_mut(x.shape()).assign(&x);
            return self.buf.output();
        }
        ensure_shape(&mut self.mask, x.shape());
        let mut mask = std::mem::take(&mut self.mask);
        self.draw_mask(&mut mask);
        self.mask = mask;
        // Split over the cores and in wide vectors: one thread's scalar loop,
        // here and in the backward, took 0.9 % of an `mlp_big` epoch each
        // while the other core waited.
        let out = self.buf.output_mut(x.shape());
        binary::forward_into(&Mul, x, self.mask.view(), out);
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
        let (active, mask) = (self.active(), &self.mask);
        self.buf.input_grad(need_input_grad, x.shape(), |mut dx| {
            if active {
                binary::forward_into(&Mul, dy, mask.view(), dx);
            } else {
                dx.assign(&dy);
            }
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        x.to_owned()
    }

    fn reseed(&self, seed: u64) {
        Dropout::reseed(self, seed)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

crate::instances!(impl Layer for Dropout: forward, forward_train, backward, predict);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn drops_the_rate_and_scales_the_rest_by_one_over_keep() {
        let mut layer = Dropout::<f64>::new(0.3, &mut MaskRng::seed_from_u64(7));
        let x = ArrayD::from_elem(IxDyn(&[1000, 100]), 1.0);
        let y = layer.forward_train(x.view()).to_owned();
        let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        // Binomial(1e5, 0.3): one standard deviation is 0.00145.
        assert!((dropped - 0.3).abs() < 0.01, "dropped fraction {dropped}");
        // Inverted dropout: survivors are scaled by 1 / (1 - 0.3).
        let keep = 1.0 / 0.7;
        assert!(y.iter().all(|&v| v == 0.0 || v == keep));
        // Backward masks the gradient the same way.
        let dx = layer.backward(x.view(), x.view(), true).to_owned();
        assert_eq!(dx, y);
    }
}
