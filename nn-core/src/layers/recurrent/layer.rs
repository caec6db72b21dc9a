//! [`Layer`] for [`Recurrent`]: samples `[T, input_size]`, batches
//! `[B, T, input_size]`.

use ndarray::{ArrayD, ArrayViewD, Ix3};
use smallvec::{smallvec, SmallVec};

use super::static_path::Buffers;
use super::{Cell, Recurrent};
use crate::kernels::recurrent::CacheFor;
use crate::layers::Layer;
use crate::tape::{Param, Var};
use crate::Float;

/// The most memory a recurrent layer keeps between `predict` calls: an
/// evaluation batch of 1000 sequences of 28 steps of an `LSTM(128)` takes
/// 33 MB.
const KEPT_FOR_PREDICT: usize = 64 << 20;

impl<T: Float, C: Cell> Recurrent<T, C> {
    /// The output shape of a batch of `b` sequences of `t` steps (held
    /// inline: checking a gradient's shape allocates nothing).
    fn batch_output(&self, b: usize, t: usize) -> SmallVec<[usize; 3]> {
        let n = self.config.output_size();
        if self.config.return_sequences {
            smallvec![b, t, n]
        } else {
            smallvec![b, n]
        }
    }

    /// Checks that `x` is a batch `[B, T, input_size]`, naming the layer.
    #[track_caller]
    fn check_batch(&self, x: &[usize]) {
        let i = self.config.input_size;
        assert!(
            matches!(x, &[_, t, f] if t > 0 && f == i),
            "{}: expected input of shape [batch, steps, {i}] (steps at least 1), got {x:?}",
            self.cell.name()
        );
    }
}

impl<T: Float, C: Cell> Layer<T> for Recurrent<T, C> {
    fn type_name(&self) -> &'static str {
        self.cell.name()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let i = self.config.input_size;
        match input {
            &[t, f] if t > 0 && f == i => Ok(self.batch_output(0, t)[1..].to_vec()),
            _ => Err(format!(
                "{} expects input shape [steps, {i}] (steps at least 1), got {input:?}",
                self.cell.name()
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let out = self.forward_with_state(x, None, None);
        if self.config.return_sequences {
            out.output
        } else {
            self.last_output(&out.h_n)
        }
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.check_batch(x.shape());
        let x = x.into_dimensionality::<Ix3>().expect("checked 3-D");
        let drop = self.training && self.config.dropout > 0.0;
        let mut rng = self.rng.borrow_mut();
        let rng: Option<&mut dyn rand::RngCore> = drop.then_some(&mut *rng);
        self.buf.forward(
            &self.cell,
            &self.config,
            &self.params,
            x,
            rng,
            CacheFor::Backward,
        );
        self.buf.output(&self.config)
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output(&self.config)
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        self.check_batch(x.shape());
        let want = self.batch_output(x.shape()[0], x.shape()[1]);
        assert!(
            dy.shape() == want.as_slice() && self.buf.output(&self.config).shape() == want.as_slice(),
            "{}: backward needs the output gradient of the last forward_train, shape {want:?}, got {:?}",
            self.cell.name(),
            dy.shape()
        );
        let x = x.into_dimensionality::<Ix3>().expect("checked 3-D");
        self.buf.backward(
            &self.cell,
            &self.config,
            &self.params,
            x,
            dy,
            need_input_grad,
        )
    }

    /// Runs the static forward in inference buffers of its own, sized for
    /// inference ([`CacheFor::Inference`]) and kept for the next call (an
    /// evaluation's batches) while they hold at most 64 MiB: a one-off
    /// prediction on a large batch gives its memory back.
    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check_batch(x.shape());
        let x = x.into_dimensionality::<Ix3>().expect("checked 3-D");
        let mut buf = self.inference.borrow_mut();
        buf.forward(
            &self.cell,
            &self.config,
            &self.params,
            x,
            None,
            CacheFor::Inference,
        );
        let y = buf.output(&self.config).to_owned();
        if buf.bytes() > KEPT_FOR_PREDICT {
            *buf = Buffers::default();
        }
        y
    }

    fn reseed(&self, seed: u64) {
        Recurrent::reseed(self, seed)
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        for (params, names) in self.params.iter().zip(&self.names) {
            for (p, n) in params.iter().zip(names) {
                f(n, p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Lstm, LstmCell, RecurrentConfig};
    use ndarray::Array3;
    use rand::SeedableRng;

    /// An evaluation batch's buffers stay for the next call; a batch whose
    /// buffers pass the limit gives them back (2100 sequences of 28 steps
    /// of an `LSTM(28, 128)` returning sequences: per sequence 28 · 256
    /// states, 28 · 128 outputs and a 925-wide cache row of `f32`, 98 MB).
    #[test]
    fn predict_keeps_small_buffers_and_gives_large_ones_back() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let lstm: Lstm<f32> = Lstm::new(LstmCell, RecurrentConfig::new(28, 128), &mut rng);
        let small = Array3::<f32>::from_elem((8, 28, 28), 0.1).into_dyn();
        lstm.predict(small.view());
        let kept = lstm.inference.borrow().bytes();
        assert!(kept > 0 && kept <= KEPT_FOR_PREDICT, "{kept}");
        let large = Array3::<f32>::from_elem((2100, 28, 28), 0.1).into_dyn();
        let y = lstm.predict(large.view());
        assert_eq!(y.shape(), [2100, 28, 128]);
        assert_eq!(lstm.inference.borrow().bytes(), 0);
    }
}
