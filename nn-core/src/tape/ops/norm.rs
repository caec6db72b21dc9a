//! Batch norm, layer norm and embedding lookup on the tape.

use ndarray::ArrayD;

use crate::kernels::{embedding as emb, norm};
use crate::tape::var::checked;
use crate::tape::{Op, Var};
use crate::Float;

/// Batch norm with statistics that are either the batch's own (training: the
/// gradient flows through them) or fixed running statistics (evaluation).
struct BatchNorm<T> {
    mean: Vec<T>,
    var: Vec<T>,
    eps: f64,
    training: bool,
}

impl<T: Float> Op<T> for BatchNorm<T> {
    fn name(&self) -> &'static str {
        "batch_norm"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let f = if self.training {
            norm::batch_norm_backward
        } else {
            norm::batch_norm_eval_backward
        };
        let (dx, dg, db) = f(
            x[0].view(),
            x[1].view(),
            dy.view(),
            &self.mean,
            &self.var,
            self.eps,
        );
        vec![Some(dx), Some(dg), Some(db)]
    }
}

struct LayerNorm {
    normalized: usize,
    eps: f64,
}

impl<T: Float> Op<T> for LayerNorm {
    fn name(&self) -> &'static str {
        "layer_norm"
    }
    fn backward(
        &self,
        x: &[&ArrayD<T>],
        _y: &ArrayD<T>,
        dy: &ArrayD<T>,
        _need: &[bool],
    ) -> Vec<Option<ArrayD<T>>> {
        let (dx, dg, db) = norm::layer_norm_backward(
            x[0].view(),
            x[1].view(),
            dy.view(),
            self.normalized,
            self.eps,
        );
        vec![Some(dx), Some(dg), Some(db)]
    }
}

/// The indices looked up, and the padding index whose row gets no gradient.
struct Embedding(ArrayD<usize>, Option<usize>);

unary_op!(Embedding, |op| "embedding", |x, _y, dy| {
    emb::embedding_backward(dy.view(), op.0.view(), x.shape(), op.1)
});

impl<T: Float> Var<T> {
    /// Batch norm in training mode: normalizes each channel (axis 1) by the
    /// batch's mean and biased variance, then `γ x̂ + β`. Returns the output and
    /// the batch statistics (mean, unbiased variance) for updating running averages.
    ///
    /// # Panics
    /// If the input is not `[batch, channels, …]` with one `γ` and `β` per
    /// channel (at the caller's line).
    #[track_caller]
    pub fn batch_norm_train(
        &self,
        gamma: &Var<T>,
        beta: &Var<T>,
        eps: f64,
    ) -> (Var<T>, Vec<T>, Vec<T>) {
        checked(batch_norm_fits(self, gamma, beta, None));
        let mut stats = (Vec::new(), Vec::new());
        let y = self.tape().record(&[self, gamma, beta], |v| {
            let (mean, var, m) = norm::channel_stats(v[0].view());
            let y = norm::batch_norm(v[0].view(), v[1].view(), v[2].view(), &mean, &var, eps);
            let unbiased = if m > 1 {
                T::lit(m as f64 / (m - 1) as f64)
            } else {
                T::one()
            };
            stats = (mean.clone(), var.iter().map(|&s| s * unbiased).collect());
            (
                y,
                BatchNorm {
                    mean,
                    var,
                    eps,
                    training: true,
                },
            )
        });
        (y, stats.0, stats.1)
    }

    /// Batch norm in evaluation mode, with fixed (running) statistics.
    ///
    /// # Panics
    /// If the input is not `[batch, channels, …]` with one `γ`, `β`, mean and
    /// variance per channel (at the caller's line).
    #[track_caller]
    pub fn batch_norm_eval(
        &self,
        gamma: &Var<T>,
        beta: &Var<T>,
        mean: &[T],
        var: &[T],
        eps: f64,
    ) -> Var<T> {
        checked(batch_norm_fits(
            self,
            gamma,
            beta,
            Some((mean.len(), var.len())),
        ));
        let (mean, var) = (mean.to_vec(), var.to_vec());
        self.tape().record(&[self, gamma, beta], |v| {
            let y = norm::batch_norm(v[0].view(), v[1].view(), v[2].view(), &mean, &var, eps);
            (
                y,
                BatchNorm {
                    mean,
                    var,
                    eps,
                    training: false,
                },
            )
        })
    }

    /// Layer norm over the last `normalized` axes, with `γ`, `β` of their shape.
    ///
    /// # Panics
    /// If the input has fewer than `normalized` axes (or `normalized` is 0),
    /// or `γ`, `β` do not match them (at the caller's line).
    #[track_caller]
    pub fn layer_norm(&self, gamma: &Var<T>, beta: &Var<T>, normalized: usize, eps: f64) -> Var<T> {
        let x = self.shape();
        let fits = (1..=x.len()).contains(&normalized);
        if !fits {
            panic!("layer_norm: cannot normalize the last {normalized} axes of shape {x:?}");
        }
        let m: usize = x[x.len() - normalized..].iter().product();
        if gamma.with_value(|g| g.len()) != m || beta.with_value(|b| b.len()) != m {
            panic!(
                "layer_norm: weight {:?} does not match the last {normalized} axes of {x:?}",
                gamma.shape()
            );
        }
        self.tape().record(&[self, gamma, beta], |v| {
            (
                norm::layer_norm(v[0].view(), v[1].view(), v[2].view(), normalized, eps),
                LayerNorm { normalized, eps },
            )
        })
    }

    /// Rows of this `[vocabulary, dim]` table at `index` (output `index.shape + [dim]`);
    /// the gradient is scattered back into the table.
    ///
    /// # Panics
    /// If the table is not 2-D or an index is past its end (at the caller's line).
    #[track_caller]
    pub fn embedding(&self, index: &ArrayD<usize>) -> Var<T> {
        self.embedding_padded(index, None)
    }

    /// [`Var::embedding`] whose row `padding` (PyTorch's `padding_idx`, the
    /// padding token) gets no gradient from this lookup.
    ///
    /// # Panics
    /// As [`Var::embedding`].
    #[track_caller]
    pub fn embedding_padded(&self, index: &ArrayD<usize>, padding: Option<usize>) -> Var<T> {
        checked(self.with_value(|table| match table.shape() {
            &[vocab, _] => match index.iter().find(|&&i| i >= vocab) {
                Some(bad) => Err(format!(
                    "embedding: index {bad} is out of range for a vocabulary of {vocab}"
                )),
                None => Ok(()),
            },
            s => Err(format!(
                "embedding: table must be [vocabulary, dim], got {s:?}"
            )),
        }));
        self.tape().record(&[self], |v| {
            (
                emb::embedding(v[0].view(), index.view()),
                Embedding(index.clone(), padding),
            )
        })
    }
}

/// Whether `x` is `[batch, channels, …]` with one `γ`, `β` (and running mean
/// and variance, when given) per channel.
fn batch_norm_fits<T: Float>(
    x: &Var<T>,
    gamma: &Var<T>,
    beta: &Var<T>,
    stats: Option<(usize, usize)>,
) -> Result<(), String> {
    let (x, g, b) = (x.shape(), gamma.shape(), beta.shape());
    let c = g.iter().product::<usize>();
    if x.len() < 2 || x[1] != c {
        return Err(format!(
            "batch_norm: expected input [batch, {c}, …], got {x:?}"
        ));
    }
    let stats_fit = stats.is_none_or(|(m, v)| m == c && v == c);
    if b.iter().product::<usize>() != c || !stats_fit {
        return Err(format!(
            "batch_norm: {c} channels but weight {g:?}, bias {b:?}{}",
            stats.map_or(String::new(), |(m, v)| format!(
                ", {m} means, {v} variances"
            ))
        ));
    }
    Ok(())
}

crate::instances!(Var: batch_norm_train, batch_norm_eval, layer_norm, embedding, embedding_padded);
