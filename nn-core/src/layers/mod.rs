//! Typed layers, each with both execution paths:
//!
//! - the **tape path**, [`Layer::forward`], for research code and arbitrary graphs;
//! - the **static path**, [`Layer::forward_train`] and [`Layer::backward`], which
//!   caches what backward needs in buffers allocated once and reused (the
//!   output and input gradient in a [`Workspace`]), and accumulates parameter
//!   gradients without a tape.
//!
//! Both call the same functions in [`crate::kernels`]. The `sequential!` macro
//! chains these; any type implementing [`Layer`] can appear in it, and a
//! layer written for the tape alone ([`TapeLayer`]) through [`TapeOnly`].
//! Layers of several inputs (`Add`, `Concatenate`, …) implement [`Merge`];
//! a layer applied at several places of one graph is copied with [`Share`].

mod activation;
mod attention;
mod conv;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod merge;
mod norm;
mod patches;
mod pool;
mod positional;
mod recurrent;
mod residual;
mod sequence_pool;
mod share;
mod sinusoidal;
mod tape_only;
mod transformer;
mod workspace;

pub use activation::Activation;
pub use attention::{AttentionMask, MultiheadAttention};
pub use conv::{Conv2d, Padding};
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use merge::{Add, Average, Concatenate, Maximum, Merge, Minimum, Multiply, Subtract};
pub use norm::{BatchNorm, LayerNorm};
pub use patches::Patches;
pub use pool::{AvgPool2d, GlobalAvgPool, MaxPool2d, Pool2d, PoolKind};
pub use positional::PositionalEmbedding;
pub use recurrent::{
    Cell, Gru, GruCell, Lstm, LstmCell, Recurrent, RecurrentConfig, RecurrentOutput, RnnCell,
    SimpleRnn,
};
pub use residual::{
    check_nested, known_param_count, param_total, same_shape, Identity, Residual, Sublayer,
};
pub use sequence_pool::GlobalAvgPool1d;
pub use share::Share;
pub use sinusoidal::sinusoidal_positions;
pub use tape_only::{TapeLayer, TapeOnly};
pub use transformer::{
    FeedForwardActivation, TransformerConfig, TransformerEncoderLayer, WeightBias,
};
pub use workspace::Workspace;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::tape::{Param, Var};
use crate::Float;

/// The seed of part `index` of something reseeded with `seed` (SplitMix64 of
/// both): different parts draw independent streams.
pub fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A layer usable in a `sequential!` model and on the tape.
///
/// Shapes exclude the batch axis: a `Dense` mapping 784 features to 128 has
/// input shape `[784]` and output shape `[128]`; arrays passed in have the batch
/// axis first.
pub trait Layer<T: Float> {
    /// The layer's type as `summary()` shows it (`"Dense"`).
    fn type_name(&self) -> &'static str;

    /// The output shape for an input shape, or why the input does not fit.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String>;

    /// The tape path: records the layer's ops on `x`'s tape.
    fn forward(&self, x: &Var<T>) -> Var<T>;

    /// The static path's forward: computes the output into the layer's own
    /// buffer, caching what [`Layer::backward`] needs, and returns a view of it.
    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T>;

    /// The output of the last [`Layer::forward_train`].
    fn output(&self) -> ArrayViewD<'_, T>;

    /// The static path's backward. `x` is the input of the last
    /// `forward_train` and `dy` the gradient of its output. Adds parameter
    /// gradients into the parameters and, when `need_input_grad`, returns the
    /// input's gradient (otherwise an empty view). A model runs it only where
    /// gradients are needed ([`has_trainable`]): keep no other effect here.
    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, T>;

    /// Inference: no tape, no caches, dropout off.
    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T>;

    /// Calls `f` with each parameter and its local name (`"weight"`, `"bias"`).
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}

    /// Calls `f` with each buffer (state saved with the parameters but not
    /// trained, as BatchNorm's `running_mean`) and its local name.
    fn visit_buffers(&self, _f: &mut dyn FnMut(&str, &Param<T>)) {}

    /// Number of trainable scalars: those of the parameters not frozen (see
    /// [`Param::set_trainable`]), a weight shared by two parts counted once.
    fn param_count(&self) -> usize {
        crate::model::count_distinct(&mut |f| self.visit_params(f), true)
    }

    /// Number of non-trainable scalars: the buffers' (running statistics,
    /// say) and the frozen parameters'.
    fn non_trainable_count(&self) -> usize {
        let mut n = 0;
        self.visit_buffers(&mut |_, b| n += b.len());
        n + crate::model::count_distinct(&mut |f| self.visit_params(f), false)
    }

    /// Switches between training (dropout active) and evaluation.
    fn set_training(&mut self, _training: bool) {}

    /// Restarts the layer's random draws (dropout masks) from `seed`; a layer
    /// of parts passes each part its own [`mix_seed`]. `fit` calls it at the
    /// start of every epoch, so an epoch's randomness does not depend on
    /// earlier epochs and a resumed run draws what the uninterrupted one did.
    fn reseed(&self, _seed: u64) {}

    /// Whether the output is a softmax over the last axis of the layer's
    /// pre-activation, so a following categorical cross-entropy can skip the
    /// softmax Jacobian and use the fused gradient `p - y`.
    fn softmax_output(&self) -> bool {
        false
    }

    /// Like [`Layer::backward`], but given the gradient with respect to the
    /// pre-softmax logits. Only called when [`Layer::softmax_output`] is true.
    fn backward_from_logits(
        &mut self,
        _x: ArrayViewD<'_, T>,
        _dlogits: ArrayViewD<'_, T>,
        _need_input_grad: bool,
    ) -> ArrayViewD<'_, T> {
        panic!(
            "{}: backward_from_logits called on a layer without softmax output",
            self.type_name()
        )
    }
}

/// Makes `buf` an array of `shape`, reallocating only when the shape changed
/// (so steady-state training steps allocate nothing).
pub fn ensure_shape<T: Float>(buf: &mut ArrayD<T>, shape: &[usize]) {
    if buf.shape() != shape {
        *buf = ArrayD::zeros(IxDyn(shape));
    }
}

/// Whether `layer` holds a trainable parameter, from
/// [`Layer::visit_params`] (whatever [`Layer::param_count`] is made to say):
/// `sequential!` runs a layer's backward only where it, or a layer before
/// it, does (or the caller wants the model's input gradient).
pub fn has_trainable<T: Float, L: Layer<T> + ?Sized>(layer: &L) -> bool {
    let mut any = false;
    layer.visit_params(&mut |_, p| any |= p.is_trainable());
    any
}

/// What [`Layer::backward`] returns when the input's gradient was not asked
/// for: an empty view (of `buf`, so nothing is allocated).
pub fn no_input_grad<T: Float>(buf: &ArrayD<T>) -> ArrayViewD<'_, T> {
    buf.slice_axis(ndarray::Axis(0), (0..0).into())
}

/// The shape `[batch, rest…]` of a batch of `rest`-shaped samples.
/// Held inline (up to 6 axes), so building it allocates nothing.
pub fn batch_shape(batch: usize, rest: &[usize]) -> smallvec::SmallVec<[usize; 6]> {
    let mut s = smallvec::SmallVec::new();
    s.push(batch);
    s.extend_from_slice(rest);
    s
}

/// The shape `activation` gives a layer's `sample`-shaped output (batch axis
/// excluded), for [`Layer::output_shape`].
pub fn activated_shape<A: crate::activation::ActivationFn>(
    activation: &A,
    sample: &[usize],
) -> Result<Vec<usize>, String> {
    let out = activation
        .output_shape(&batch_shape(1, sample))
        .map_err(|e| format!("{}: {e}", activation.name()))?;
    Ok(out[1..].to_vec())
}

/// Sizes `y` for `activation` of the batch `z`, reallocating only when the
/// shape changed.
pub fn ensure_activated<T: Float, A: crate::activation::ActivationFn>(
    activation: &A,
    y: &mut ArrayD<T>,
    z: &[usize],
) {
    let shape = activation
        .output_shape(z)
        .unwrap_or_else(|e| panic!("{}: {e}", activation.name()));
    ensure_shape(y, &shape);
}

/// `activation(z)` for [`Layer::predict`], skipping the identity.
pub(crate) fn activate<T: Float, A: crate::activation::ActivationFn>(
    activation: &A,
    z: ArrayD<T>,
) -> ArrayD<T> {
    if activation.is_identity() {
        z
    } else {
        activation.forward(z.view())
    }
}

/// [`activate`] on the tape: `z` itself for the identity, else the
/// activation recorded on `z`'s tape.
#[track_caller]
pub(crate) fn activate_var<T: Float, A: crate::activation::ActivationFn>(
    activation: &A,
    z: Var<T>,
) -> Var<T> {
    if activation.is_identity() {
        z
    } else {
        activation.apply(&z)
    }
}

/// [`Layer::visit_params`] of a layer with a `weight` and an optional `bias`.
pub(crate) fn visit_weight_bias<T: Float>(
    weight: &Param<T>,
    bias: Option<&Param<T>>,
    f: &mut dyn FnMut(&str, &Param<T>),
) {
    f("weight", weight);
    if let Some(b) = bias {
        f("bias", b);
    }
}

/// [`Layer::output_shape`] of a model whose shapes are fixed when it is
/// declared (a `sequential!` model, a graph): `output` for `input`, else why
/// not, naming the model.
pub fn fixed_output_shape(
    model: &str,
    input: &[usize],
    expected: &[usize],
    output: &[usize],
) -> Result<Vec<usize>, String> {
    if input == expected {
        Ok(output.to_vec())
    } else {
        Err(format!("{model} takes input {expected:?}, not {input:?}"))
    }
}

/// Checks that `x` is a batch of `expected`-shaped samples, naming the layer.
pub fn check_input(layer: &str, x: &[usize], expected: &[usize]) {
    assert!(
        x.len() == expected.len() + 1 && &x[1..] == expected,
        "{layer}: expected input of shape [batch, {}], got {x:?}",
        expected
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// Checks that a model's backward pass gets a gradient of its last
/// `forward_train`'s output shape, naming the model: without a forward
/// pass first, or for another batch, the layers' own kernels would fail
/// with shapes that name none of them.
#[track_caller]
pub fn check_grad_output(model: &str, output: &[usize], grad: &[usize]) {
    if output == grad {
        return;
    }
    if output.iter().product::<usize>() == 0 {
        panic!(
            "{model}: backward with a gradient of shape {grad:?} before any forward_train: \
             run forward_train on the batch first"
        );
    }
    panic!(
        "{model}: backward: the gradient has shape {grad:?}, but the last forward_train \
         output {output:?}"
    );
}

/// `p`'s gradient buffer, allocated (zeroed) on first use, for a layer's
/// static backward to add into; holds `p`'s gradient lock until dropped.
///
/// It allocates even for a frozen parameter: layers call
/// [`trainable_grad_buffer`] to skip those.
pub fn grad_buffer<T: Float>(p: &Param<T>) -> GradBuffer<'_, T> {
    // After `zero_grad`, the kept buffer, zero-filled.
    let (mut slot, _) = p.grad_slot(false);
    allocate_grad(p, &mut slot);
    GradBuffer { slot }
}

/// Gives `slot` a zeroed gradient of `p`'s shape if it has none of that
/// shape; whether it did.
fn allocate_grad<T: Float>(p: &Param<T>, slot: &mut Option<ArrayD<T>>) -> bool {
    let fresh = slot.as_ref().is_none_or(|g| g.shape() != p.value().shape());
    if fresh {
        *slot = Some(ArrayD::zeros(p.value().raw_dim()));
    }
    fresh
}

/// [`grad_buffer`] of a trainable parameter, `None` for a frozen one (see
/// [`Param::set_trainable`]): a layer passes it to its kernel so that a
/// frozen parameter's gradient is neither computed nor stored.
pub fn trainable_grad_buffer<T: Float>(p: &Param<T>) -> Option<GradBuffer<'_, T>> {
    p.is_trainable().then(|| grad_buffer(p))
}

/// [`trainable_grad_buffer`] for a backward that writes every element of the
/// gradient, with the `beta` to write it with: `0` when there was no
/// gradient (the buffer [`Param::zero_grad`] kept is then not zero-filled
/// first: a product with `beta = 0` overwrites it), `1` when this gradient
/// adds to one already there (a parameter shared by two layers). The caller
/// must write every element: crate-private, for kernels that do (a weight
/// product).
pub(crate) fn trainable_grad_output<T: Float>(p: &Param<T>) -> Option<(GradBuffer<'_, T>, T)> {
    if !p.is_trainable() {
        return None;
    }
    let (mut slot, reused) = p.grad_slot(true);
    let fresh = allocate_grad(p, &mut slot);
    let beta = if reused || fresh { T::zero() } else { T::one() };
    Some((GradBuffer { slot }, beta))
}

/// A parameter's gradient, allocated, while its lock is held: what
/// [`grad_buffer`] returns. Derefs to the gradient array.
pub struct GradBuffer<'a, T: Float> {
    /// Always `Some`: [`grad_buffer`] allocates it.
    slot: std::sync::RwLockWriteGuard<'a, Option<ArrayD<T>>>,
}

impl<T: Float> std::ops::Deref for GradBuffer<'_, T> {
    type Target = ArrayD<T>;
    fn deref(&self) -> &ArrayD<T> {
        self.slot
            .as_ref()
            .expect("grad_buffer allocates the gradient")
    }
}

impl<T: Float> std::ops::DerefMut for GradBuffer<'_, T> {
    fn deref_mut(&mut self) -> &mut ArrayD<T> {
        self.slot
            .as_mut()
            .expect("grad_buffer allocates the gradient")
    }
}

/// Checks, when a model is built, that a layer maps `input` to the `output` the
/// model declared for it; panics naming the layer otherwise.
pub fn check_declared_shape<T: Float, L: Layer<T>>(
    layer: &L,
    label: &str,
    input: &[usize],
    output: &[usize],
) {
    match layer.output_shape(input) {
        Ok(s) if s == output => {}
        Ok(s) => panic!(
            "{label}: outputs {s:?} for input {input:?}, but the model declares {output:?} (write `-> ({})` after the layer)",
            s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
        Err(e) => panic!("{label}: {e}"),
    }
}
