//! `BatchNorm` and `LayerNorm`.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

use super::{activated_shape, trainable_grad_buffer, GradBuffer, Layer, Share, Workspace};
use crate::activation::{ActivationFn, Linear};
use crate::kernels::norm::{self, NormGrads};
use crate::kernels::owned::owned;
use crate::tape::{Param, Var};
use crate::Float;

/// Runs a normalization's `_into` backward with the input's gradient in `buf`
/// (sized to `shape`, and returned) and the scale and shift gradients, which
/// it adds to. The input's gradient is always computed: the kernels write it
/// beside the parameters'.
fn backward_into<'a, T: Float>(
    buf: &'a mut Workspace<T>,
    shape: &[usize],
    weight: &Param<T>,
    bias: &Param<T>,
    backward: impl FnOnce(NormGrads<'_, T>),
) -> ArrayViewD<'a, T> {
    buf.input_grad(true, shape, |dx| norm_grads(dx, weight, bias, backward))
}

/// Calls `backward` with `dx` and the scale and shift gradients.
fn norm_grads<T: Float>(
    dx: ArrayViewMutD<'_, T>,
    weight: &Param<T>,
    bias: &Param<T>,
    backward: impl FnOnce(NormGrads<'_, T>),
) {
    let (mut dg, mut db) = (grad_or_scratch(weight), grad_or_scratch(bias));
    backward(NormGrads {
        dx,
        dgamma: view_of(&mut dg),
        dbeta: view_of(&mut db),
    });
}

/// `p`'s gradient buffer, or for a frozen `p` a zeroed throwaway of its shape:
/// the kernels compute the three gradients in one pass, and a frozen
/// parameter's is dropped rather than stored.
fn grad_or_scratch<T: Float>(p: &Param<T>) -> Result<GradBuffer<'_, T>, ArrayD<T>> {
    trainable_grad_buffer(p).ok_or_else(|| ArrayD::zeros(p.value().raw_dim()))
}

/// The array of a [`grad_or_scratch`].
fn view_of<'a, T: Float>(g: &'a mut Result<GradBuffer<'_, T>, ArrayD<T>>) -> ArrayViewMutD<'a, T> {
    match g {
        Ok(g) => g.view_mut(),
        Err(scratch) => scratch.view_mut(),
    }
}

/// Evaluation-mode backward (fixed running statistics) into `dx`, adding
/// the scale and shift gradients.
fn eval_backward_into<T: Float>(
    [weight, bias]: [&Param<T>; 2],
    x: ArrayViewD<'_, T>,
    dz: ArrayViewD<'_, T>,
    [mean, var]: [&[T]; 2],
    eps: f64,
    mut dx: ArrayViewMutD<'_, T>,
) {
    let (d, dg, db) = norm::batch_norm_eval_backward(x, weight.value().view(), dz, mean, var, eps);
    for (p, g) in [(weight, &dg), (bias, &db)] {
        if let Some(mut acc) = trainable_grad_buffer(p) {
            *acc += g;
        }
    }
    dx.assign(&d);
}

/// Batch normalization over the channel axis (axis 1 of the batch: the
/// features of a flat input, the channels of an image).
///
/// Training uses the batch's statistics and updates the running ones as
/// PyTorch does: `running = (1 - momentum)·running + momentum·batch` with
/// `momentum = 0.1` and the unbiased batch variance. (Keras writes the same rule
/// with `momentum = 0.99` meaning `1 - 0.01`: its 0.99 is PyTorch's 0.01.)
/// Evaluation uses the running statistics. Parameters: `weight` (γ) and `bias`
/// (β); `running_mean` and `running_var` are buffers: saved with them, never trained.
/// A training batch with one value per channel (PyTorch refuses it; `fit`'s
/// last batch of one sample after a `Dense`) normalizes to β and leaves the
/// running statistics alone: it carries no variance to average in.
///
/// An `activation` (`BatchNorm(activation = relu)` in `sequential!`) is
/// applied to the output; plain `relu` runs inside batch norm's own passes
/// over the data, forward and backward, instead of two passes of its own
/// (the same values as `BatchNorm, ReLU`, bit for bit).
pub struct BatchNorm<T: Float, const C: usize, A: ActivationFn = Linear> {
    /// γ, `[C]`.
    pub weight: Param<T>,
    /// β, `[C]`.
    pub bias: Param<T>,
    /// Running mean, `[C]` (not trained).
    pub running_mean: Param<T>,
    /// Running variance, `[C]` (not trained).
    pub running_var: Param<T>,
    /// PyTorch's momentum (default 0.1).
    pub momentum: f64,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Applied to the normalized output.
    pub activation: A,
    training: bool,
    /// The mean and biased variance the last forward normalized with.
    stats: ([T; C], [T; C]),
    buf: Workspace<T>,
}

impl<T: Float, const C: usize> BatchNorm<T, C> {
    /// γ = 1, β = 0, running mean 0 and variance 1.
    ///
    /// # Panics
    /// As [`BatchNorm::with_activation`].
    pub fn new(momentum: f64, eps: f64) -> Self {
        Self::with_activation(Linear, momentum, eps)
    }
}

impl<T: Float, const C: usize, A: ActivationFn> BatchNorm<T, C, A> {
    /// [`BatchNorm::new`] followed by `activation`.
    ///
    /// # Panics
    /// If `momentum` is outside `[0, 1]` or `eps` is negative or not finite.
    pub fn with_activation(activation: A, momentum: f64, eps: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&momentum),
            "BatchNorm: momentum {momentum} is outside [0, 1] (PyTorch's convention, the new batch's weight: Keras's 0.99 is 0.01 here)"
        );
        assert!(
            eps >= 0.0 && eps.is_finite(),
            "BatchNorm: eps {eps} must be a non-negative finite number"
        );
        let ones = || Param::new(ArrayD::ones(IxDyn(&[C])));
        let zeros = || Param::new(ArrayD::zeros(IxDyn(&[C])));
        BatchNorm {
            weight: ones(),
            bias: zeros(),
            running_mean: zeros(),
            running_var: ones(),
            momentum,
            eps,
            activation,
            training: true,
            stats: ([T::zero(); C], [T::one(); C]),
            buf: Workspace::new(),
        }
    }

    /// Whether the activation runs inside batch norm's training kernels
    /// (evaluation normalizes, then applies it).
    fn fused_relu(&self) -> bool {
        self.training && self.activation.is_plain_relu()
    }

    /// Averages a batch's statistics, from `count` values per channel, into
    /// the running ones (not from one value: it has no variance).
    fn update_running(&self, count: usize, mean: &[T], unbiased_var: &[T]) {
        if count < 2 {
            return;
        }
        let m = T::lit(self.momentum);
        let keep = T::one() - m;
        for (r, &b) in self.running_mean.value_mut().iter_mut().zip(mean) {
            *r = keep * *r + m * b;
        }
        for (r, &b) in self.running_var.value_mut().iter_mut().zip(unbiased_var) {
            *r = keep * *r + m * b;
        }
    }

    fn running(&self) -> ([T; C], [T; C]) {
        let (mut mean, mut var) = ([T::zero(); C], [T::zero(); C]);
        for (d, &v) in mean.iter_mut().zip(self.running_mean.value().iter()) {
            *d = v;
        }
        for (d, &v) in var.iter_mut().zip(self.running_var.value().iter()) {
            *d = v;
        }
        (mean, var)
    }

    fn check(&self, x: &[usize]) {
        assert!(
            x.len() >= 2 && x[1] == C,
            "BatchNorm: expected input [batch, {C}, …], got {x:?}"
        );
    }
}

impl<T: Float, const C: usize, A: ActivationFn> Share for BatchNorm<T, C, A> {
    /// Shares γ, β and the running statistics (each application updates
    /// them, as a shared Keras layer does); same momentum, eps, activation
    /// and mode.
    fn share(&self) -> Self {
        BatchNorm {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            running_mean: self.running_mean.clone(),
            running_var: self.running_var.clone(),
            momentum: self.momentum,
            eps: self.eps,
            activation: self.activation.clone(),
            training: self.training,
            stats: ([T::zero(); C], [T::one(); C]),
            buf: Workspace::new(),
        }
    }
}

impl<T: Float, const C: usize, A: ActivationFn> Layer<T> for BatchNorm<T, C, A> {
    fn type_name(&self) -> &'static str {
        "BatchNorm"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input.first() {
            Some(&c) if c == C => activated_shape(&self.activation, input),
            _ => Err(format!(
                "BatchNorm of {C} channels cannot take input {input:?}"
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.check(&x.shape());
        let tape = x.tape();
        let (g, b) = (tape.param(&self.weight), tape.param(&self.bias));
        let z = if self.training {
            let (y, mean, var) = x.batch_norm_train(&g, &b, self.eps);
            self.update_running(x.shape().iter().product::<usize>() / C, &mean, &var);
            y
        } else {
            let (mean, var) = self.running();
            x.batch_norm_eval(&g, &b, &mean, &var, self.eps)
        };
        super::activate_var(&self.activation, z)
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.check(x.shape());
        self.stats = if self.training {
            let (mut mean, mut var) = ([T::zero(); C], [T::zero(); C]);
            let count = norm::channel_stats_into(x.view(), &mut mean, &mut var);
            // The running variance is unbiased, as in PyTorch.
            let k = if count > 1 {
                T::lit(count as f64 / (count - 1) as f64)
            } else {
                T::one()
            };
            self.update_running(count, &mean, &var.map(|v| v * k));
            (mean, var)
        } else {
            self.running()
        };
        let (weight, bias) = (self.weight.value(), self.bias.value());
        let (stats, eps) = (&self.stats, self.eps);
        if self.fused_relu() {
            let y = self.buf.output_mut(x.shape());
            norm::batch_norm_relu_into(x, weight.view(), bias.view(), &stats.0, &stats.1, eps, y);
            return self.buf.output();
        }
        let z = self.buf.pre_activation_mut(&self.activation, x.shape());
        norm::batch_norm_into(x, weight.view(), bias.view(), &stats.0, &stats.1, eps, z);
        drop((weight, bias));
        self.buf.activate(&self.activation)
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        _need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        let (mean, var) = (&self.stats.0, &self.stats.1);
        let (weight, bias, eps, training) = (&self.weight, &self.bias, self.eps, self.training);
        let shape = x.shape();
        // Batch norm's own backward, from its output's gradient `dz`.
        let normalized = |dz: ArrayViewD<'_, T>, dx: ArrayViewMutD<'_, T>| {
            if training {
                norm_grads(dx, weight, bias, |g| {
                    let w = weight.value();
                    norm::batch_norm_backward_into(x.view(), w.view(), dz, mean, var, eps, g)
                })
            } else {
                eval_backward_into([weight, bias], x.view(), dz, [mean, var], eps, dx)
            }
        };
        if self.fused_relu() {
            return backward_into(&mut self.buf, shape, weight, bias, |g| {
                let (w, b) = (weight.value(), bias.value());
                let x = x.view();
                norm::batch_norm_relu_backward_into(x, w.view(), b.view(), dy, mean, var, eps, g)
            });
        }
        // Through the activation (none for the identity), then batch norm.
        self.buf
            .activated_input_grad(&self.activation, dy, true, shape, |dz, dx| {
                normalized(
                    dz,
                    dx.expect("batch norm always computes its input's gradient"),
                )
            })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check(x.shape());
        let (mean, var) = self.running();
        let (weight, bias) = (self.weight.value(), self.bias.value());
        let (w, b, eps) = (weight.view(), bias.view(), self.eps);
        if self.activation.is_plain_relu() {
            return owned(x.raw_dim(), |y| {
                norm::batch_norm_relu_into(x, w, b, &mean, &var, eps, y)
            });
        }
        super::activate(
            &self.activation,
            norm::batch_norm(x, w, b, &mean, &var, eps),
        )
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }

    /// The running statistics: saved and loaded with the parameters, never
    /// seen by optimizers or gradient clipping (PyTorch's buffers).
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("running_mean", &self.running_mean);
        f("running_var", &self.running_var);
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// PyTorch's defaults: momentum 0.1, eps 1e-5 (`nn.BatchNorm2d(C)`).
impl<T: Float, const C: usize> Default for BatchNorm<T, C> {
    fn default() -> Self {
        Self::new(0.1, 1e-5)
    }
}

/// Layer normalization over the last axis (of size `N`), Keras's default
/// `axis=-1` and PyTorch's `nn.LayerNorm(N)`. Parameters `weight` (γ) and `bias` (β).
pub struct LayerNorm<T: Float, const N: usize> {
    /// γ, `[N]`.
    pub weight: Param<T>,
    /// β, `[N]`.
    pub bias: Param<T>,
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    buf: Workspace<T>,
}

impl<T: Float, const N: usize> LayerNorm<T, N> {
    /// γ = 1, β = 0.
    pub fn new(eps: f64) -> Self {
        LayerNorm {
            weight: Param::new(ArrayD::ones(IxDyn(&[N]))),
            bias: Param::new(ArrayD::zeros(IxDyn(&[N]))),
            eps,
            buf: Workspace::new(),
        }
    }

    fn check(&self, x: &[usize]) {
        assert!(
            x.last() == Some(&N),
            "LayerNorm: expected the last axis of size {N}, got {x:?}"
        );
    }
}

impl<T: Float, const N: usize> Share for LayerNorm<T, N> {
    fn share(&self) -> Self {
        LayerNorm {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            eps: self.eps,
            buf: Workspace::new(),
        }
    }
}

impl<T: Float, const N: usize> Layer<T> for LayerNorm<T, N> {
    fn type_name(&self) -> &'static str {
        "LayerNorm"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input.last() {
            Some(&n) if n == N => Ok(input.to_vec()),
            _ => Err(format!(
                "LayerNorm over {N} features cannot take input {input:?}"
            )),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        self.check(&x.shape());
        let tape = x.tape();
        x.layer_norm(
            &tape.param(&self.weight),
            &tape.param(&self.bias),
            1,
            self.eps,
        )
    }

    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.check(x.shape());
        let y = self.buf.output_mut(x.shape());
        norm::layer_norm_into(
            x,
            self.weight.value().view(),
            self.bias.value().view(),
            1,
            self.eps,
            y,
        );
        self.buf.output()
    }

    fn output(&self) -> ArrayViewD<'_, T> {
        self.buf.output()
    }

    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        _need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        let (weight, eps) = (&self.weight, self.eps);
        backward_into(&mut self.buf, x.shape(), weight, &self.bias, |g| {
            norm::layer_norm_backward_into(x.view(), weight.value().view(), dy, 1, eps, g)
        })
    }

    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        self.check(x.shape());
        norm::layer_norm(
            x,
            self.weight.value().view(),
            self.bias.value().view(),
            1,
            self.eps,
        )
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("weight", &self.weight);
        f("bias", &self.bias);
    }
}

/// PyTorch's default eps 1e-5 (`nn.LayerNorm(N)`).
impl<T: Float, const N: usize> Default for LayerNorm<T, N> {
    fn default() -> Self {
        Self::new(1e-5)
    }
}
