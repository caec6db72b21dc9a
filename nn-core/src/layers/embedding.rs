//! `Embedding`: a learned vector per token index.

use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};
use rand::Rng;

use super::{trainable_grad_buffer, Layer, Share, Workspace};
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
    /// The padding token, whose row starts at zero and gets no gradient.
    padding_idx: Option<usize>,
    /// The indices of the last training batch.
    index: ArrayD<usize>,
    buf: Workspace<T>,
}

impl<T: Float, const V: usize, const D: usize> Embedding<T, V, D> {
    /// A table drawn from `init` (PyTorch uses N(0, 1); Keras uniform(-0.05, 0.05)).
    pub fn new<R: Rng + ?Sized>(init: Initializer, rng: &mut R) -> Self {
        Embedding {
            weight: Param::new(init.init::<T, R>(&[V, D], rng)),
            padding_idx: None,
            index: ArrayD::zeros(IxDyn(&[0])),
            buf: Workspace::new(),
        }
    }

    /// Makes index `padding` the padding token (PyTorch's `padding_idx`): its
    /// row is set to zeros and gets no gradient from this layer, so padded
    /// positions read zeros however long training runs.
    ///
    /// # Panics
    /// If `padding` is not below `V` (at the caller's line).
    #[track_caller]
    pub fn padding_idx(self, padding: usize) -> Self {
        assert!(
            padding < V,
            "Embedding: padding_idx {padding} is not an index below {V}"
        );
        self.weight
            .value_mut()
            .index_axis_mut(ndarray::Axis(0), padding)
            .fill(T::zero());
        Embedding {
            padding_idx: Some(padding),
            ..self
        }
    }

    fn index_of(v: T) -> usize {
        let f = v.as_f64();
        assert!(
            f >= 0.0 && f.fract() == 0.0 && (f as usize) < V,
            "Embedding: input {f} is not an index below {V}"
        );
        f as usize
    }

    fn indices(x: ArrayViewD<'_, T>) -> ArrayD<usize> {
        x.mapv(Self::index_of)
    }
}

impl<T: Float, const V: usize, const D: usize> Share for Embedding<T, V, D> {
    fn share(&self) -> Self {
        Embedding {
            weight: self.weight.clone(),
            padding_idx: self.padding_idx,
            index: ArrayD::zeros(IxDyn(&[0])),
            buf: Workspace::new(),
        }
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
        x.tape()
            .param(&self.weight)
            .embedding_padded(&index, self.padding_idx)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        if self.index.shape() != x.shape() {
            self.index = ArrayD::zeros(x.raw_dim());
        }
        Zip::from(&mut self.index)
            .and(&x)
            .for_each(|i, &v| *i = Self::index_of(v));
        let table = self.weight.value();
        let shape = emb::embedding_shape(table.shape(), x.shape());
        emb::embedding_into(table.view(), self.index.view(), self.buf.output_mut(&shape));
        self.buf.output()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        _x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        _need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        if let Some(mut dw) = trainable_grad_buffer(&self.weight) {
            emb::embedding_backward_into(dy, self.index.view(), dw.view_mut(), self.padding_idx);
        }
        // Indices have no gradient (the macro keeps Embedding first).
        self.buf.no_input_grad()
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        emb::embedding(self.weight.value().view(), Self::indices(x).view())
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
    }
}
