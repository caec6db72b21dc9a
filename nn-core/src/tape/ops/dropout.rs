//! Dropout on the tape: inverted dropout in training, the identity otherwise.

use ndarray::ArrayD;

use crate::kernels::dropout as k;
use crate::tape::{Op, Var};
use crate::Float;

/// Keeps the mask (`0` or `1 / (1 - p)` per element): backward multiplies
/// `dy` by the same mask.
struct Dropout<T>(ArrayD<T>);

impl<T: Float> Op<T> for Dropout<T> {
    fn name(&self) -> &'static str {
        "dropout"
    }
    fn backward(
        &self,
        _x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        vec![Some(k::apply_mask(dy.view(), self.0.view()))]
    }
}

impl<T: Float> Var<T> {
    /// Dropout (PyTorch's `F.dropout(x, p, training)`): in training, each
    /// element is zeroed with probability `p` and the rest are scaled by
    /// `1 / (1 - p)`, so evaluation needs no rescaling; the gradient is `dy`
    /// times the same mask. With `training == false` or `p == 0` it is the
    /// identity and records nothing (the result is `self`).
    ///
    /// The mask is drawn from the tape's random source, so a tape made with
    /// [`Tape::with_seed`](crate::Tape::with_seed) draws the same masks on
    /// every run (see [`Tape::new`](crate::Tape::new) for its default seed).
    ///
    /// ```
    /// use nn_core::Tape;
    /// use ndarray::Array1;
    ///
    /// let tape = Tape::<f64>::with_seed(1);
    /// let x = tape.var(Array1::from_elem(1000, 2.0));
    /// let y = x.dropout(0.5, true);
    /// assert!(y.value().iter().all(|&v| v == 0.0 || v == 4.0));
    /// assert_eq!(x.dropout(0.5, false).value(), x.value()); // evaluation
    /// ```
    ///
    /// # Panics
    /// If `p` is not in `[0, 1)`, naming `dropout` (at the caller's line).
    #[track_caller]
    pub fn dropout(&self, p: f64, training: bool) -> Var<T> {
        k::check_probability("dropout", p);
        if !training || p == 0.0 {
            return self.clone();
        }
        let tape = self.tape();
        tape.record(&[self], |v| {
            let (y, mask) = tape.with_rng(|rng| k::dropout_from(v[0].view(), p, rng));
            (y, Dropout(mask))
        })
    }

    /// Channel dropout on an NCHW input (PyTorch's `Dropout2d`, Keras's
    /// `SpatialDropout2D`): in training each sample's channel is zeroed
    /// whole with probability `p`, the others scaled by `1 / (1 - p)`;
    /// neighbouring pixels are too alike for element-wise dropout to
    /// regularize a convolution. The identity otherwise.
    ///
    /// ```
    /// use nn_core::Tape;
    /// use ndarray::{Array4, Axis};
    ///
    /// let tape = Tape::<f64>::with_seed(3);
    /// let x = tape.var(Array4::from_elem((4, 8, 3, 3), 1.0).into_dyn());
    /// let y = x.dropout2d(0.5, true).value();
    /// // Every channel all zeros or all twos.
    /// for sample in y.axis_iter(Axis(0)) {
    ///     for channel in sample.axis_iter(Axis(0)) {
    ///         assert!(channel.iter().all(|&v| v == 0.0) || channel.iter().all(|&v| v == 2.0));
    ///     }
    /// }
    /// ```
    ///
    /// # Panics
    /// If the input is not NCHW or `p` is not in `[0, 1)` (at the caller's
    /// line).
    #[track_caller]
    pub fn dropout2d(&self, p: f64, training: bool) -> Var<T> {
        k::check_probability("dropout2d", p);
        let shape = self.shape();
        let &[n, c, _, _] = shape.as_slice() else {
            panic!(
                "dropout2d: expected an NCHW input [batch, channels, height, width], got {shape:?}"
            );
        };
        if !training || p == 0.0 {
            return self.clone();
        }
        // One draw per sample and channel, broadcast over the pixels.
        let ones = ArrayD::from_elem(ndarray::IxDyn(&[n, c, 1, 1]), T::one());
        let mask = self.tape().constant(ones).dropout(p, true);
        self * &mask
    }
}

crate::instances!(Var: dropout, dropout2d);
