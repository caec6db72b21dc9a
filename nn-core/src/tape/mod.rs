//! The reverse-mode autograd tape (a Wengert list).
//!
//! Every differentiable op appends a node holding its output and an [`Op`] that
//! knows its local gradients; [`Var::backward`] walks the list once in reverse,
//! sums broadcast gradients back to each input's shape, and accumulates the
//! results into the leaves (and into [`Param`]s) until they are zeroed.
//!
//! ```
//! use nn_core::tape::Tape;
//! use ndarray::array;
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.var(array![1.0, 2.0, 3.0]);
//! let y = (&x * &x).sum();           // y = Σ x²
//! y.backward();
//! assert_eq!(x.grad().unwrap(), array![2.0, 4.0, 6.0].into_dyn());
//! ```

mod anomaly;
mod backward;
mod dim;
mod display;
pub mod ops;
mod param;
mod var;

use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

use ndarray::{ArrayD, Dimension};
use rand::SeedableRng;
use smallvec::SmallVec;

use crate::kernels::dropout::MaskRng;
use crate::Float;
pub use anomaly::{anomaly_mode, detect_anomaly, AnomalyGuard};
pub use dim::Dim;
pub use ops::ActivationOp;
pub use param::Param;
pub use var::Var;

/// A differentiable operation's backward rule.
///
/// `backward` gets the op's input values, its output and the gradient of the
/// output, and returns one local gradient per input (`None` where `need` is
/// false). A local gradient may have the broadcast shape of the output: the tape
/// sums it back to the input's shape. Implement this to add your own op to the
/// tape with [`Tape::record`].
pub trait Op<T: Float>: 'static {
    /// The op's name, for panics and debugging.
    fn name(&self) -> &'static str;

    /// Local gradients of each input.
    fn backward(
        &self,
        inputs: &[&ArrayD<T>],
        output: &ArrayD<T>,
        grad: &ArrayD<T>,
        need: &[bool],
    ) -> Vec<Option<ArrayD<T>>>;
}

/// Where a node's value lives: on the tape, or in a model's [`Param`].
enum Value<T: Float> {
    Owned(Rc<ArrayD<T>>),
    Param(Param<T>),
}

/// A borrowed node value.
enum ValueRef<'a, T: Float> {
    Owned(&'a ArrayD<T>),
    Param(std::sync::RwLockReadGuard<'a, ArrayD<T>>),
}

impl<T: Float> Deref for ValueRef<'_, T> {
    type Target = ArrayD<T>;
    fn deref(&self) -> &ArrayD<T> {
        match self {
            ValueRef::Owned(a) => a,
            ValueRef::Param(r) => r,
        }
    }
}

impl<T: Float> Value<T> {
    fn get(&self) -> ValueRef<'_, T> {
        match self {
            Value::Owned(a) => ValueRef::Owned(a),
            Value::Param(p) => ValueRef::Param(p.value()),
        }
    }
}

/// Most ops have one to three inputs: keep them inline.
type Inputs = SmallVec<[usize; 3]>;

struct Node<T: Float> {
    value: Value<T>,
    inputs: Inputs,
    /// `None` for leaves, and for results that need no gradient.
    op: Option<Box<dyn Op<T>>>,
    requires_grad: bool,
    /// The line that recorded the node, for anomaly reports.
    at: &'static std::panic::Location<'static>,
}

struct TapeInner<T: Float> {
    nodes: RefCell<Vec<Node<T>>>,
    grad_enabled: Cell<bool>,
    /// Accumulated gradients of leaves by node index (parameters keep theirs in
    /// the [`Param`]); kept apart so nodes stay small.
    leaf_grads: RefCell<HashMap<usize, ArrayD<T>>>,
    /// The random source of ops that draw (dropout's masks), made from `seed`
    /// on first use (and boxed) so that a tape that never draws costs nothing
    /// more.
    rng: RefCell<Option<Box<MaskRng>>>,
    seed: u64,
    /// The ops a backward pass has gone through, and whether another pass
    /// may go through them again (PyTorch's `retain_graph`): it would add
    /// the same gradients again, so by default it is refused.
    consumed: RefCell<Vec<bool>>,
    retain_graph: Cell<bool>,
}

thread_local! {
    /// The seed of the next tape [`Tape::new`] makes on this thread: how many
    /// it has made, or counted on from what [`reseed_new_tapes`] set.
    static TAPES_MADE: Cell<u64> = const { Cell::new(0) };
}

/// Restarts the seeds [`Tape::new`] hands out on this thread: the next tape
/// is seeded with `seed`, the one after with `seed + 1`, and so on. `fit`
/// calls it at the start of every epoch, so the dropout masks a tape model
/// draws depend on the run's seed and the epoch alone, and a run resumed
/// from a checkpoint draws the masks the uninterrupted run drew.
///
/// ```
/// use nn_core::{tape, Tape};
/// use ndarray::Array1;
///
/// let mask = || Tape::<f32>::new().constant(Array1::ones(64)).dropout(0.5, true).value();
/// tape::reseed_new_tapes(42);
/// let first = mask();
/// tape::reseed_new_tapes(42);
/// assert_eq!(mask(), first);
/// ```
pub fn reseed_new_tapes(seed: u64) {
    TAPES_MADE.with(|n| n.set(seed));
}

/// A recording of operations, for one forward and backward pass.
///
/// Cheap to create (create one per training step) and cheap to clone (clones
/// share the recording). Variables are created with [`Tape::var`],
/// [`Tape::constant`] and [`Tape::param`]; ops on them record onto the tape.
pub struct Tape<T: Float = f32> {
    inner: Rc<TapeInner<T>>,
}

impl<T: Float> Clone for Tape<T> {
    fn clone(&self) -> Self {
        Tape {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tape")
            .field("nodes", &self.len())
            .field("grad_enabled", &self.is_grad_enabled())
            .finish()
    }
}

impl<T: Float> Tape<T> {
    /// An empty tape with gradient recording on.
    ///
    /// Its random source (for [`Var::dropout`]) is seeded with the number of
    /// tapes `Tape::new` made on this thread before it (0, 1, 2, …): a
    /// program that makes one tape per training step draws different masks
    /// at each step, and the same ones when it is run again. Use
    /// [`Tape::with_seed`] to choose the seed, [`reseed_new_tapes`] to restart
    /// the count.
    ///
    /// The first tape of the process keeps freed memory for the next step's
    /// tensors ([`crate::memory`]).
    ///
    /// # Panics
    /// If `NN_KEEP_FREED_MEMORY` is set to anything but 0 or 1.
    pub fn new() -> Self {
        let seed = TAPES_MADE.with(|n| n.replace(n.get().wrapping_add(1)));
        Self::with_seed(seed)
    }

    /// An empty tape whose random source (for [`Var::dropout`] and
    /// [`Tape::with_rng`]) is seeded with `seed`: the same seed and the same
    /// ops draw the same values.
    ///
    /// ```
    /// use nn_core::Tape;
    /// use ndarray::Array1;
    ///
    /// let mask = |seed| {
    ///     let tape = Tape::<f32>::with_seed(seed);
    ///     tape.constant(Array1::ones(64)).dropout(0.5, true).value()
    /// };
    /// assert_eq!(mask(7), mask(7));
    /// assert_ne!(mask(7), mask(8));
    /// ```
    ///
    /// # Panics
    /// As [`Tape::new`].
    pub fn with_seed(seed: u64) -> Self {
        crate::memory::keep_freed_memory();
        Tape {
            inner: Rc::new(TapeInner {
                nodes: RefCell::new(Vec::with_capacity(32)),
                grad_enabled: Cell::new(true),
                leaf_grads: RefCell::new(HashMap::new()),
                rng: RefCell::new(None),
                seed,
                consumed: RefCell::new(Vec::new()),
                retain_graph: Cell::new(false),
            }),
        }
    }

    /// Calls `f` with the tape's random source, for ops of your own that draw
    /// (noise, masks), so they are reproducible with [`Tape::with_seed`].
    ///
    /// The source is a [`MaskRng`], ChaCha12, the generator behind rand
    /// 0.9's `StdRng`, which gives the same numbers from the same seed; this
    /// one can also seek, so a large dropout mask is drawn on every core.
    ///
    /// ```
    /// use nn_core::rand::rngs::StdRng;
    /// use nn_core::rand::{Rng, SeedableRng};
    /// use nn_core::Tape;
    ///
    /// let tape = Tape::<f32>::with_seed(5);
    /// let draws: [u32; 3] = tape.with_rng(|rng| rng.random());
    /// assert_eq!(draws, StdRng::seed_from_u64(5).random::<[u32; 3]>());
    /// ```
    ///
    /// # Panics
    /// If called again from inside `f`.
    pub fn with_rng<R>(&self, f: impl FnOnce(&mut MaskRng) -> R) -> R {
        let mut rng = self.inner.rng.borrow_mut();
        f(rng.get_or_insert_with(|| Box::new(MaskRng::seed_from_u64(self.inner.seed))))
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.inner.nodes.borrow().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[track_caller]
    fn push_leaf(&self, value: Value<T>, requires_grad: bool) -> Var<T> {
        let mut nodes = self.inner.nodes.borrow_mut();
        nodes.push(Node {
            value,
            inputs: Inputs::new(),
            op: None,
            requires_grad: requires_grad && self.is_grad_enabled(),
            at: std::panic::Location::caller(),
        });
        Var::new(self.clone(), nodes.len() - 1)
    }

    /// A leaf variable that requires a gradient (read it with [`Var::grad`]).
    pub fn var<D: Dimension>(&self, value: ndarray::Array<T, D>) -> Var<T> {
        self.push_leaf(Value::Owned(Rc::new(value.into_dyn())), true)
    }

    /// A leaf that needs no gradient (inputs, targets, masks): backward skips it.
    pub fn constant<D: Dimension>(&self, value: ndarray::Array<T, D>) -> Var<T> {
        self.push_leaf(Value::Owned(Rc::new(value.into_dyn())), false)
    }

    /// A 0-d constant.
    pub fn scalar(&self, value: T) -> Var<T> {
        self.constant(ndarray::arr0(value))
    }

    /// A model parameter on this tape: no copy is made, and backward adds its
    /// gradient into the parameter's [`Param::grad`]. A frozen parameter
    /// ([`Param::set_trainable`]`(false)`) is recorded as a leaf that requires
    /// no gradient, so backward computes nothing for it.
    pub fn param(&self, p: &Param<T>) -> Var<T> {
        self.push_leaf(Value::Param(p.clone()), p.is_trainable())
    }

    /// Whether new ops record gradients (false inside [`Tape::no_grad`]).
    pub fn is_grad_enabled(&self) -> bool {
        self.inner.grad_enabled.get()
    }

    /// Turns gradient recording off until the returned guard is dropped: ops then
    /// compute values only, like `torch.no_grad()`.
    ///
    /// ```
    /// # use nn_core::tape::Tape;
    /// # use ndarray::array;
    /// let tape = Tape::<f32>::new();
    /// let w = tape.var(array![1.0f32, 2.0]);
    /// let y = {
    ///     let _guard = tape.no_grad();
    ///     &w * 3.0
    /// };
    /// assert!(!y.requires_grad());
    /// ```
    #[must_use = "gradients are off only while the guard lives"]
    pub fn no_grad(&self) -> NoGradGuard<T> {
        let previous = self.inner.grad_enabled.replace(false);
        NoGradGuard {
            tape: self.clone(),
            previous,
        }
    }

    /// Allows more than one backward pass through the same ops of this
    /// tape's graph (PyTorch's `retain_graph=True`): each adds its gradients
    /// to the last's.
    pub fn retain_graph(&self) {
        self.inner.retain_graph.set(true);
    }

    /// Clears the accumulated gradients of this tape's leaves (parameters keep
    /// theirs: see [`Param::zero_grad`]).
    pub fn zero_grad(&self) {
        self.inner.leaf_grads.borrow_mut().clear();
    }

    /// Records an op: `forward` gets the inputs' values and returns the output and
    /// the [`Op`] that will differentiate it. Every built-in op goes through here;
    /// so can yours.
    ///
    /// ```
    /// use nn_core::tape::{Op, Tape};
    /// use ndarray::{array, ArrayD};
    ///
    /// /// y = x³, with its own backward.
    /// struct Cube;
    /// impl Op<f64> for Cube {
    ///     fn name(&self) -> &'static str { "cube" }
    ///     fn backward(&self, x: &[&ArrayD<f64>], _y: &ArrayD<f64>, dy: &ArrayD<f64>, _need: &[bool])
    ///         -> Vec<Option<ArrayD<f64>>> {
    ///         vec![Some(x[0].mapv(|v| 3.0 * v * v) * dy)]
    ///     }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(array![2.0]);
    /// let y = tape.record(&[&x], |v| (v[0].mapv(|a| a * a * a), Cube));
    /// y.sum().backward();
    /// assert_eq!(x.grad().unwrap()[[0]], 12.0);
    /// ```
    ///
    /// # Panics
    /// If an input lives on another tape (reported at the caller's line when
    /// the caller is `#[track_caller]` too).
    #[track_caller]
    pub fn record<O: Op<T>>(
        &self,
        inputs: &[&Var<T>],
        forward: impl FnOnce(&[&ArrayD<T>]) -> (ArrayD<T>, O),
    ) -> Var<T> {
        for v in inputs {
            assert!(
                Rc::ptr_eq(&v.tape().inner, &self.inner),
                "cannot combine variables from different tapes"
            );
        }
        let (output, op, requires_grad) = {
            let nodes = self.inner.nodes.borrow();
            let vals: SmallVec<[ValueRef<'_, T>; 3]> =
                inputs.iter().map(|v| nodes[v.id()].value.get()).collect();
            let refs: SmallVec<[&ArrayD<T>; 3]> = vals.iter().map(|v| &**v).collect();
            let (output, op) = forward(&refs);
            if anomaly::anomaly_mode() {
                anomaly::check_forward(op.name(), &refs, &output, std::panic::Location::caller());
            }
            let requires_grad =
                self.is_grad_enabled() && inputs.iter().any(|v| nodes[v.id()].requires_grad);
            (output, op, requires_grad)
        };
        let mut nodes = self.inner.nodes.borrow_mut();
        nodes.push(Node {
            value: Value::Owned(Rc::new(output)),
            inputs: if requires_grad {
                inputs.iter().map(|v| v.id()).collect()
            } else {
                Inputs::new()
            },
            op: if requires_grad {
                Some(Box::new(op))
            } else {
                None
            },
            requires_grad,
            at: std::panic::Location::caller(),
        });
        Var::new(self.clone(), nodes.len() - 1)
    }

    fn nodes(&self) -> Ref<'_, Vec<Node<T>>> {
        self.inner.nodes.borrow()
    }
}

/// Restores gradient recording when dropped; see [`Tape::no_grad`].
pub struct NoGradGuard<T: Float> {
    tape: Tape<T>,
    previous: bool,
}

impl<T: Float> Drop for NoGradGuard<T> {
    fn drop(&mut self) {
        self.tape.inner.grad_enabled.set(self.previous);
    }
}

/// `slot += g`, allocating the slot on first use.
pub(crate) fn accumulate<T: Float>(slot: &mut Option<ArrayD<T>>, g: ArrayD<T>, what: &str) {
    match slot {
        Some(acc) => {
            assert!(
                acc.shape() == g.shape(),
                "{what}: gradient of shape {:?} cannot accumulate into shape {:?}",
                g.shape(),
                acc.shape()
            );
            // Split over the cores only where the tape's binary ops split
            // (see `ALONE_SPLIT_ELEMENTS`), where it was measured: a scratch
            // probe's `(x * m) + x` forward and backward at 1.6 million
            // values, 2.63 → 2.45 ms (benches/HISTORY.md).
            if g.len() >= crate::parallel::ALONE_SPLIT_ELEMENTS {
                crate::kernels::binary::add_assign_into(acc.view_mut(), g.view());
            } else {
                *acc += &g;
            }
        }
        None => *slot = Some(g),
    }
}

crate::instances!(Tape: new, with_seed, len, is_empty, scalar, param, is_grad_enabled, no_grad, retain_graph, zero_grad);
