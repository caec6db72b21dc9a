//! The static path's buffers, and the forward and backward through every
//! layer and direction that write into them. Every buffer is resized only
//! when the batch or sequence shape changes, so warm training steps allocate
//! nothing.

use ndarray::{s, Array, Array2, Array3, ArrayView2, ArrayView3, ArrayViewD};
use ndarray::{ArrayD, Dimension, Ix1, Ix2, Ix3, IxDyn};

use super::{Cell, RecurrentConfig};
use crate::kernels::dropout::fill_mask;
use crate::kernels::recurrent::{
    recurrent_backward_into, recurrent_forward_into, BackwardScratch, CacheFor, Dims,
    ForwardScratch, Grads, Run, StateGrads,
};
use crate::layers::{no_input_grad, trainable_grad_buffer};
use crate::tape::Param;
use crate::Float;

/// What one run (a layer's direction) keeps for backward, or for inference
/// only the states.
struct RunBuffers<T> {
    /// [`Dims::cache_shape`]: `[T, B, cache_row_width]` for backward, one
    /// step's rows for inference where the kernel allows it.
    cache: Array3<T>,
    /// Every step's state: `[B, T, S]`.
    states: Array3<T>,
}

/// Every buffer of the static path.
pub(super) struct Buffers<T> {
    /// Per run, index `layer · dirs + direction`.
    runs: Vec<RunBuffers<T>>,
    /// Per layer, its output `[B, T, dirs·H]`: the next layer's input
    /// (after dropout, when it drops). The last layer's only with
    /// `return_sequences`: otherwise `last` is the output, and
    /// gathering every step's state was a copy of the whole sequence.
    outputs: Vec<Array3<T>>,
    /// Per layer but the last, the dropout mask applied to its output, when
    /// the last forward dropped (PyTorch's `dropout` between layers).
    masks: Vec<Array3<T>>,
    /// Whether the last forward applied `masks`.
    dropped: bool,
    /// Per layer, the gradient of its input `[B, T, in]`.
    input_grads: Vec<Array3<T>>,
    /// The output without `return_sequences`: `[B, dirs·H]`.
    last: Array2<T>,
    /// Forward scratch: a step's hidden projection `[B, G·H]` and the initial state `[B, S]`.
    hidden: Array2<T>,
    state: Array2<T>,
    /// Forward scratch: the joined weights, flat (the layers' shapes differ;
    /// grown to the largest).
    weights: Vec<T>,
    /// Backward scratch: every step's gate gradients, the running state
    /// gradient and the initial state.
    dgates: Array3<T>,
    carry: Array2<T>,
    initial: Array2<T>,
    /// Backward scratch: the per-block parameter gradients, flat, grown to
    /// the largest layer's.
    block_grads: Vec<T>,
    /// What `backward` returns when the input's gradient is not needed.
    empty: ArrayD<T>,
}

impl<T: Float> Default for Buffers<T> {
    fn default() -> Self {
        Buffers {
            runs: Vec::new(),
            outputs: Vec::new(),
            masks: Vec::new(),
            dropped: false,
            input_grads: Vec::new(),
            last: Array2::zeros((0, 0)),
            hidden: Array2::zeros((0, 0)),
            state: Array2::zeros((0, 0)),
            weights: Vec::new(),
            dgates: Array3::zeros((0, 0, 0)),
            carry: Array2::zeros((0, 0)),
            initial: Array2::zeros((0, 0)),
            block_grads: Vec::new(),
            empty: ArrayD::zeros(IxDyn(&[0])),
        }
    }
}

/// Makes `buf` a `dim` array, reallocating only when the shape changed.
fn ensure<T: Float, D: Dimension>(buf: &mut Array<T, D>, dim: D) {
    if buf.raw_dim() != dim {
        *buf = Array::zeros(dim);
    }
}

/// The first elements of `buf` as a standard-layout array of `shape`,
/// growing `buf` when it is shorter. It never shrinks, so the layers of a
/// stack share it and only the first step allocates.
fn shaped<T: Float, const N: usize>(
    buf: &mut Vec<T>,
    shape: [usize; N],
) -> ndarray::ArrayViewMut<'_, T, ndarray::Dim<[usize; N]>>
where
    ndarray::Dim<[usize; N]>: Dimension,
    [usize; N]: ndarray::IntoDimension<Dim = ndarray::Dim<[usize; N]>>,
{
    let len = shape.iter().product();
    if buf.len() < len {
        buf.resize(len, T::zero());
    }
    ndarray::ArrayViewMut::from_shape(shape, &mut buf[..len]).expect("sized above")
}

/// The sizes of layer `l`'s runs.
fn layer_dims(cfg: &RecurrentConfig, l: usize, b: usize, t: usize) -> Dims {
    Dims {
        batch: b,
        steps: t,
        input: cfg.layer_input(l),
        hidden: cfg.hidden_size,
    }
}

/// A parameter's value as an `N`-d view.
fn view<'a, T: Float, D: Dimension>(a: &'a ArrayD<T>) -> ndarray::ArrayView<'a, T, D> {
    a.view()
        .into_dimensionality::<D>()
        .expect("parameter shape")
}

/// The kernel run of `params` (values locked by the caller) on `x`.
fn run<'a, T: Float>(
    x: ArrayView3<'a, T>,
    p: &'a [impl std::ops::Deref<Target = ArrayD<T>>; 4],
    reverse: bool,
) -> Run<'a, T> {
    Run {
        x,
        w_ih: view::<T, Ix2>(&p[0]),
        w_hh: view::<T, Ix2>(&p[1]),
        b_ih: view::<T, Ix1>(&p[2]),
        b_hh: view::<T, Ix1>(&p[3]),
        h0: None,
        c0: None,
        reverse,
    }
}

impl<T: Float> Buffers<T> {
    /// Sizes the forward's buffers for a batch of `b` sequences of `t` steps,
    /// the caches for `cache_for`.
    fn size_forward<C: Cell>(
        &mut self,
        cfg: &RecurrentConfig,
        (b, t): (usize, usize),
        cache_for: CacheFor,
    ) {
        let (h, dirs) = (cfg.hidden_size, cfg.directions());
        let runs = cfg.num_layers * dirs;
        self.runs.resize_with(runs, || RunBuffers {
            cache: Array3::zeros((0, 0, 0)),
            states: Array3::zeros((0, 0, 0)),
        });
        for (k, r) in self.runs.iter_mut().enumerate() {
            let d = layer_dims(cfg, k / dirs, b, t);
            ensure(&mut r.cache, ndarray::Dim(d.cache_shape::<C>(cache_for)));
            ensure(&mut r.states, Ix3(b, t, C::state_width(h)));
        }
        let kept = cfg.num_layers - usize::from(!cfg.return_sequences);
        self.outputs.truncate(kept);
        self.outputs.resize_with(kept, || Array3::zeros((0, 0, 0)));
        for o in &mut self.outputs {
            ensure(o, Ix3(b, t, cfg.output_size()));
        }
        ensure(&mut self.hidden, Ix2(b, C::GATES * h));
        ensure(&mut self.state, Ix2(b, C::state_width(h)));
        if !cfg.return_sequences {
            ensure(&mut self.last, Ix2(b, cfg.output_size()));
        }
    }

    /// Runs every layer and direction on `x: [B, T, input_size]` (checked
    /// by the caller), keeping what backward needs unless `cache_for` is
    /// inference; with `rng`, drops the outputs of every layer but the last
    /// (`cfg.dropout`), masks drawn from it.
    pub(super) fn forward<C: Cell>(
        &mut self,
        cell: &C,
        cfg: &RecurrentConfig,
        params: &[[Param<T>; 4]],
        x: ArrayView3<'_, T>,
        mut rng: Option<&mut dyn rand::RngCore>,
        cache_for: CacheFor,
    ) {
        let (b, t, _) = x.dim();
        let (h, dirs) = (cfg.hidden_size, cfg.directions());
        self.size_forward::<C>(cfg, (b, t), cache_for);
        self.dropped = rng.is_some() && cfg.num_layers > 1;
        if self.dropped {
            self.masks
                .resize_with(cfg.num_layers - 1, || Array3::zeros((0, 0, 0)));
            for m in &mut self.masks {
                ensure(m, Ix3(b, t, cfg.output_size()));
            }
        }
        for l in 0..cfg.num_layers {
            let (done, rest) = self.outputs.split_at_mut(l);
            let input = if l == 0 { x } else { done[l - 1].view() };
            for d in 0..dirs {
                let k = l * dirs + d;
                let values = params[k].each_ref().map(|p| p.value());
                let r = &mut self.runs[k];
                recurrent_forward_into(
                    cell,
                    &run(input, &values, d == 1),
                    r.cache.view_mut(),
                    r.states.view_mut(),
                    ForwardScratch {
                        hidden: self.hidden.view_mut(),
                        state: self.state.view_mut(),
                        weights: shaped(
                            &mut self.weights,
                            layer_dims(cfg, l, b, t).joined_weights::<C>(),
                        ),
                    },
                );
                if let Some(out) = rest.first_mut() {
                    out.slice_mut(s![.., .., d * h..(d + 1) * h])
                        .assign(&r.states.slice(s![.., .., ..h]));
                }
            }
            if let (true, Some(rng)) = (self.dropped && l + 1 < cfg.num_layers, rng.as_mut()) {
                let mask = &mut self.masks[l];
                fill_mask(mask.view_mut().into_dyn(), cfg.dropout, rng);
                self.outputs[l].zip_mut_with(mask, |o, &m| *o *= m);
            }
        }
        if !cfg.return_sequences {
            let top = (cfg.num_layers - 1) * dirs;
            for d in 0..dirs {
                // The final state: at the last step forward, the first reversed.
                let at = if d == 1 { 0 } else { t - 1 };
                self.last
                    .slice_mut(s![.., d * h..(d + 1) * h])
                    .assign(&self.runs[top + d].states.slice(s![.., at, ..h]));
            }
        }
    }

    /// The bytes the buffers hold.
    pub(super) fn bytes(&self) -> usize {
        let arrays = self.runs.iter().map(|r| r.cache.len() + r.states.len());
        let lists = [&self.outputs, &self.masks, &self.input_grads];
        let elements = arrays.sum::<usize>()
            + lists
                .iter()
                .flat_map(|l| l.iter())
                .map(|a| a.len())
                .sum::<usize>()
            + self.last.len()
            + self.hidden.len()
            + self.state.len()
            + self.weights.len()
            + self.dgates.len()
            + self.carry.len()
            + self.initial.len()
            + self.block_grads.len();
        elements * size_of::<T>()
    }

    /// The output of the last [`Buffers::forward`].
    pub(super) fn output(&self, cfg: &RecurrentConfig) -> ArrayViewD<'_, T> {
        if cfg.return_sequences {
            match self.outputs.last() {
                Some(o) => o.view().into_dyn(),
                None => self.empty.view(),
            }
        } else {
            self.last.view().into_dyn()
        }
    }

    /// Back-propagates `dy` (the output's gradient, checked by the caller)
    /// through every layer and direction of the last forward on `x`: adds
    /// the trainable parameters' gradients and returns the input's, when
    /// `need_input_grad`.
    pub(super) fn backward<C: Cell>(
        &mut self,
        cell: &C,
        cfg: &RecurrentConfig,
        params: &[[Param<T>; 4]],
        x: ArrayView3<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        let (b, t, _) = x.dim();
        let (h, dirs, layers) = (cfg.hidden_size, cfg.directions(), cfg.num_layers);
        self.input_grads
            .resize_with(layers, || Array3::zeros((0, 0, 0)));
        for (l, g) in self.input_grads.iter_mut().enumerate() {
            if l > 0 || need_input_grad {
                ensure(g, Ix3(b, t, cfg.layer_input(l)));
            }
        }
        ensure(&mut self.dgates, Ix3(t, b, C::grad_width(h)));
        ensure(&mut self.carry, Ix2(b, C::state_width(h)));
        ensure(&mut self.initial, Ix2(b, C::state_width(h)));
        for l in (0..layers).rev() {
            let (lower, upper) = self.input_grads.split_at_mut(l + 1);
            if self.dropped && l + 1 < layers {
                // Through the dropout between this layer and the next.
                upper[0].zip_mut_with(&self.masks[l], |g, &m| *g *= m);
            }
            let need_dx = l > 0 || need_input_grad;
            let dx = &mut lower[l];
            if need_dx {
                dx.fill(T::zero());
            }
            let input = if l == 0 {
                x
            } else {
                self.outputs[l - 1].view()
            };
            for d in 0..dirs {
                let k = l * dirs + d;
                let cols = d * h..(d + 1) * h;
                let dout = if l + 1 < layers {
                    StateGrads {
                        h: Some(upper[0].slice(s![.., .., cols])),
                        ..StateGrads::default()
                    }
                } else if cfg.return_sequences {
                    let dy: ArrayView3<'_, T> = dy.view().into_dimensionality().expect("3-D");
                    StateGrads {
                        h: Some(dy.slice_move(s![.., .., cols])),
                        ..StateGrads::default()
                    }
                } else {
                    let dy: ArrayView2<'_, T> = dy.view().into_dimensionality().expect("2-D");
                    StateGrads {
                        h_n: Some(dy.slice_move(s![.., cols])),
                        ..StateGrads::default()
                    }
                };
                // Gradients before values: the order optimizers and the other
                // layers lock in, so threads sharing a parameter cannot deadlock.
                let mut grads = params[k].each_ref().map(trainable_grad_buffer);
                let values = params[k].each_ref().map(|p| p.value());
                let [dw_ih, dw_hh, db_ih, db_hh] =
                    grads.each_mut().map(|g| g.as_mut().map(|g| g.view_mut()));
                let r = &self.runs[k];
                recurrent_backward_into(
                    cell,
                    &run(input, &values, d == 1),
                    r.cache.view(),
                    r.states.view(),
                    dout,
                    Grads {
                        x: need_dx.then(|| dx.view_mut()),
                        h0: None,
                        c0: None,
                        w_ih: dw_ih.map(|g| g.into_dimensionality::<Ix2>().expect("2-D")),
                        w_hh: dw_hh.map(|g| g.into_dimensionality::<Ix2>().expect("2-D")),
                        b_ih: db_ih.map(|g| g.into_dimensionality::<Ix1>().expect("1-D")),
                        b_hh: db_hh.map(|g| g.into_dimensionality::<Ix1>().expect("1-D")),
                    },
                    BackwardScratch {
                        dgates: self.dgates.view_mut(),
                        carry: self.carry.view_mut(),
                        initial: self.initial.view_mut(),
                        block_grads: shaped(
                            &mut self.block_grads,
                            layer_dims(cfg, l, b, t).block_grads::<C>(),
                        ),
                    },
                );
            }
        }
        if need_input_grad {
            self.input_grads[0].view().into_dyn()
        } else {
            no_input_grad(&self.empty)
        }
    }
}
