//! `Embedding`: a learned vector per token index.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rand::Rng;

use super::{grad_buffer, Layer};
use crate::init::Initializer;
use crate::kernels::embedding as emb;
use crate::tape::{Param, Var};
use crate::Float;

/// A `[V, D]` table of vectors looked up by index (PyTorch's `nn.Embedding`;
/// Keras's `Embedding`). Inputs carry the indices as numbers (`0.0`, `1.0`, …),
/// since models take arrays of their element type; each must be a whole number
/// below `V`.
pub struct Embedding<T: Float, const V: usize, const D: usize> {
    /// `[V, D]`.
    pub weight: Param<T>,
    index: ArrayD<usize>,
    y: ArrayD<T>,
}

impl<T: Float, const V: usize, const D: usize> Embedding<T, V, D> {
    /// A table drawn from `init` (PyTorch uses N(0, 1); Keras uniform(-0.05, 0.05)).
    pub fn new<R: Rng + ?Sized>(init: Initializer, rng: &mut R) -> Self {
        Embedding {
            weight: Param::new(init.init::<T, R>(&[V, D], rng)),
            index: ArrayD::zeros(IxDyn(&[0])),
            y: ArrayD::zeros(IxDyn(&[0])),
        }
    }

    fn indices(x: ArrayViewD<'_, T>) -> ArrayD<usize> {
        x.mapv(|v| {
            let f = v.as_f64();
            assert!(
                f >= 0.0 && f.fract() == 0.0 && (f as usize) < V,
                "Embedding: input {f} is not an index below {V}"
            );
            f as usize
        })
    }
}

impl<T: Float, const V: usize, const D: usize> Layer<T> for Embedding<T, V, D> {
    fn type_name(&self) -> &'static str {
        "Embedding"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let mut s = input.to_vec();
        s.push(D);
        Ok(s)
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        let index = x.with_value(|v| Self::indices(v.view()));
        x.tape().param(&self.weight).embedding(&index)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.index = Self::indices(x);
        self.y = emb::embedding(self.weight.value().view(), self.index.view());
        self.y.view()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.y.view()
    }

    fn backward(
        &mut self,
        _x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        _need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        *grad_buffer(&self.weight) += &emb::embedding_backward(dy, self.index.view(), &[V, D]);
        // Indices have no gradient (the macro keeps Embedding first).
        super::no_input_grad(&self.y)
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        emb::embedding(self.weight.value().view(), Self::indices(x).view())
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
    }
}
