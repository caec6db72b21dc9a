//! The table of built-in activations: every name of Keras 3's
//! `keras.activations`, with Keras's arguments and defaults.

/// Calls `$callback! { rows }` with every built-in activation.
///
/// A row reads
///
/// ```text
/// /// Documentation of the type.
/// name | alias => Type { arg: type = default, .. }, ShapeRule, method var_method(params);
/// ```
///
/// - `name` is the Keras name (and the name of a constant holding the
///   defaults); aliases resolve to the same type;
/// - the arguments are Keras's, with its defaults; an argument without a
///   default must be given (Keras's `threshold`);
/// - the shape rule is a [`ShapeRule`] variant;
/// - `method` names the tape method (`Var::relu()`; aliases get one each) and
///   the arguments it takes. The rule: a tape method applies Keras's defaults
///   (`x.relu()`, `x.elu()`), except that the axis-wise ones take their axis,
///   as PyTorch's do (`x.softmax(-1)`), and `threshold`, which has no
///   defaults, takes both; other values go through `Var::apply`
///   (`x.apply(Elu { alpha: 0.5 })`).
///
/// `nn-core` generates each type, its constant, the runtime lookup and the tape
/// methods from this; the formula of each type is implemented beside the other
/// kernels in `nn-core/src/kernels/`. To add an activation, add a row here and
/// its formula there: nothing compiles until both exist.
#[macro_export]
macro_rules! activation_table {
    ($callback:path) => {
        $callback! {
            /// `alpha * (exp(x / alpha) - 1)` below zero, `x` above (Keras and
            /// PyTorch `celu`, `alpha = 1`).
            celu => Celu { alpha: f64 = 1.0 }, Same, method celu();
            /// `x` above zero, `alpha * (exp(x) - 1)` below (`alpha = 1`).
            elu => Elu { alpha: f64 = 1.0 }, Same, method elu();
            /// `exp(x)`.
            exponential => Exponential {}, Same, method exponential();
            /// Gaussian error linear unit `x * Φ(x)`; with `approximate` the tanh
            /// form `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`. Keras's
            /// `keras.activations.gelu` defaults to the exact form, as
            /// PyTorch does.
            gelu => Gelu { approximate: bool = false }, Same, method gelu();
            /// Gated linear unit: the input is split in two halves `a, b` along
            /// `axis` (the last by default) and `a * sigmoid(b)` is returned, so
            /// that axis is halved.
            glu => Glu { axis: isize = -1 }, HalvesAxis, method glu(axis: isize);
            /// `x` where `|x| > threshold`, else 0 (`threshold = 0.5`).
            hard_shrink => HardShrink { threshold: f64 = 0.5 }, Same, method hard_shrink();
            /// `relu6(x + 3) / 6`, the Keras 3 and PyTorch definition.
            hard_sigmoid => HardSigmoid {}, Same, method hard_sigmoid();
            /// `x * hard_sigmoid(x)` (alias `hard_swish`).
            hard_silu | hard_swish => HardSilu {}, Same, method hard_silu();
            /// `x` clipped to `[-1, 1]`.
            hard_tanh => HardTanh {}, Same, method hard_tanh();
            /// `x` for `x >= 0`, `negative_slope * x` below. The default slope is
            /// Keras's 0.2 (PyTorch's `nn.LeakyReLU` defaults to 0.01).
            leaky_relu => LeakyRelu { negative_slope: f64 = 0.2 }, Same, method leaky_relu();
            /// The identity (`linear`, or no activation at all). Its tape method
            /// is `Var::identity`, since `Var::linear` is the affine map.
            linear => Linear {}, Same, method identity();
            /// `log(sigmoid(x)) = -softplus(-x)`, computed without overflow.
            log_sigmoid => LogSigmoid {}, Same, method log_sigmoid();
            /// Log-softmax along `axis` (the last by default), computed as
            /// `x - max - log Σ exp(x - max)`.
            log_softmax => LogSoftmax { axis: isize = -1 }, Same, method log_softmax(axis: isize);
            /// `x * tanh(softplus(x))`.
            mish => Mish {}, Same, method mish();
            /// Keras's `relu` with its three arguments: `x` above `threshold`
            /// (else 0), clipped to `max_value` when one is given, minus
            /// `negative_slope * max(threshold - x, 0)`. The defaults give
            /// `max(x, 0)`.
            relu => Relu {
                negative_slope: f64 = 0.0,
                max_value: Option<f64> = None,
                threshold: f64 = 0.0
            }, Same, method relu();
            /// `min(max(x, 0), 6)`.
            relu6 => Relu6 {}, Same, method relu6();
            /// `scale * elu(x, alpha)` with the self-normalizing constants of
            /// Klambauer et al. (alpha ≈ 1.6733, scale ≈ 1.0507).
            selu => Selu {}, Same, method selu();
            /// The logistic sigmoid `1 / (1 + exp(-x))`, computed without overflow.
            sigmoid => Sigmoid {}, Same, method sigmoid();
            /// `x * sigmoid(x)` (alias `swish`).
            silu | swish => Silu {}, Same, method silu();
            /// `x - threshold` above `threshold`, `x + threshold` below
            /// `-threshold`, else 0 (`threshold = 0.5`).
            soft_shrink => SoftShrink { threshold: f64 = 0.5 }, Same, method soft_shrink();
            /// Softmax along `axis` (the last by default), max-shifted so it
            /// never overflows.
            softmax => Softmax { axis: isize = -1 }, Same, method softmax(axis: isize);
            /// `log(1 + exp(x))`, computed without overflow.
            softplus => Softplus {}, Same, method softplus();
            /// `x / (1 + |x|)`.
            softsign => Softsign {}, Same, method softsign();
            /// 0 for `x <= -1`, `(x + 1)² / 4` between, `x` for `x >= 1`.
            sparse_plus => SparsePlus {}, Same, method sparse_plus();
            /// 0 for `x <= -1`, `(x + 1) / 2` between, 1 for `x >= 1`.
            sparse_sigmoid => SparseSigmoid {}, Same, method sparse_sigmoid();
            /// Sparsemax along `axis` (the last by default): `max(x - τ, 0)`,
            /// which, unlike softmax, gives exact zeros. Keras's threshold `τ`
            /// differs from Martins & Astudillo's (2016) when more than one
            /// entry survives (then Keras's output does not sum to 1); this is
            /// Keras's, as the name is Keras's.
            sparsemax => Sparsemax { axis: isize = -1 }, Same, method sparsemax(axis: isize);
            /// `(x + sqrt(x² + b)) / 2`, a smooth ReLU (`b = 4`).
            squareplus => Squareplus { b: f64 = 4.0 }, Same, method squareplus();
            /// Hyperbolic tangent.
            tanh => Tanh {}, Same, method tanh();
            /// `x - tanh(x)`.
            tanh_shrink => TanhShrink {}, Same, method tanh_shrink();
            /// `x` where `x > threshold`, else `default_value`. Keras gives
            /// neither a default, so both must be written:
            /// `threshold(threshold = 0.5, default_value = 0.0)`.
            threshold => Threshold { threshold: f64, default_value: f64 }, Same,
                method threshold(threshold: f64, default_value: f64);
        }
    };
}

/// How an activation maps its input shape to its output shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeRule {
    /// The output has the input's shape.
    Same,
    /// The axis named by the activation's `axis` argument is halved (`glu`);
    /// its length must be even.
    HalvesAxis,
}

impl ShapeRule {
    /// The output shape for `input` (one sample or a batch), with `axis` the
    /// activation's axis argument where it has one; `Err` says why the input
    /// does not fit.
    pub fn apply(self, input: &[usize], axis: isize) -> Result<Vec<usize>, String> {
        match self {
            ShapeRule::Same => Ok(input.to_vec()),
            ShapeRule::HalvesAxis => {
                let a = halved_axis(input, axis)?;
                let mut out = input.to_vec();
                out[a] /= 2;
                Ok(out)
            }
        }
    }
}

/// The index of the axis `axis` (negative counts from the end) of `shape`
/// that [`ShapeRule::HalvesAxis`] halves, or why it cannot be halved.
pub fn halved_axis(shape: &[usize], axis: isize) -> Result<usize, String> {
    let n = shape.len() as isize;
    let a = if axis < 0 { axis + n } else { axis };
    if !(0..n).contains(&a) {
        return Err(format!("axis {axis} is out of range for shape {shape:?}"));
    }
    let len = shape[a as usize];
    if !len.is_multiple_of(2) {
        return Err(format!(
            "axis {axis} of shape {shape:?} has odd length {len}; it must split into two halves"
        ));
    }
    Ok(a as usize)
}

/// One argument of an activation, as the table declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgSpec {
    /// Keras's argument name (`"negative_slope"`).
    pub name: &'static str,
    /// Its Rust type as written in the table (`"f64"`, `"bool"`, `"isize"`,
    /// `"Option < f64 >"`).
    pub ty: &'static str,
    /// The default as Rust source, or `None` when the argument must be given.
    pub default: Option<&'static str>,
}

impl ArgSpec {
    /// Whether the argument is optional in the Rust sense (`Option<f64>`),
    /// so a given value is wrapped in `Some`.
    pub fn is_option(&self) -> bool {
        self.ty.replace(' ', "").starts_with("Option<")
    }
}

/// One built-in activation, as the table declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivationSpec {
    /// The Keras name (`"relu"`), also the name of its constant.
    pub name: &'static str,
    /// Other names for the same function (`"swish"` for `silu`).
    pub aliases: &'static [&'static str],
    /// The type in `nn::activation` (`"Relu"`).
    pub type_name: &'static str,
    /// Keras's arguments, in Keras's order.
    pub args: &'static [ArgSpec],
    /// How the output shape follows from the input's.
    pub shape: ShapeRule,
    /// The tape method on `Var` (`"relu"`).
    pub method: &'static str,
    /// The documentation of the type.
    pub doc: &'static str,
}

impl ActivationSpec {
    /// Whether every argument has a default, so the bare name is a value.
    pub fn has_defaults(&self) -> bool {
        self.args.iter().all(|a| a.default.is_some())
    }

    /// The argument called `name`.
    pub fn arg(&self, name: &str) -> Option<&'static ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }

    /// The names this activation answers to: its own, then its aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

macro_rules! spec_rows {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $(| $alias:ident)* => $ty:ident {
            $($field:ident : $fty:ty $(= $default:expr)?),* $(,)?
        }, $shape:ident, method $method:ident ($($param:ident : $pty:ty),*);
    )*) => {
        /// Every built-in activation, in the order of [`activation_table!`].
        pub const ACTIVATIONS: &[ActivationSpec] = &[$(
            ActivationSpec {
                name: stringify!($name),
                aliases: &[$(stringify!($alias)),*],
                type_name: stringify!($ty),
                args: &[$(ArgSpec {
                    name: stringify!($field),
                    ty: stringify!($fty),
                    default: {
                        let given: &[&str] = &[$(stringify!($default))?];
                        if given.is_empty() { None } else { Some(given[0]) }
                    },
                }),*],
                shape: ShapeRule::$shape,
                method: stringify!($method),
                doc: concat!($($doc, "\n"),*),
            }
        ),*];
    };
}

activation_table!(spec_rows);

/// The activation called `name` (or one of its aliases).
pub fn find_activation(name: &str) -> Option<&'static ActivationSpec> {
    ACTIVATIONS.iter().find(|a| a.names().any(|n| n == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keras_name_is_in_the_table_once_and_no_name_twice() {
        // The table may hold more than Keras (CONTRIBUTING.md's recipe adds
        // rows), but every Keras name exactly once.
        // The 32 public names of `keras.activations` in Keras 3.15 (as listed by
        // `../shared/testdata/keras/make_keras_activation_vectors.py`).
        let keras = [
            "celu",
            "elu",
            "exponential",
            "gelu",
            "glu",
            "hard_shrink",
            "hard_sigmoid",
            "hard_silu",
            "hard_swish",
            "hard_tanh",
            "leaky_relu",
            "linear",
            "log_sigmoid",
            "log_softmax",
            "mish",
            "relu",
            "relu6",
            "selu",
            "sigmoid",
            "silu",
            "soft_shrink",
            "softmax",
            "softplus",
            "softsign",
            "sparse_plus",
            "sparse_sigmoid",
            "sparsemax",
            "squareplus",
            "swish",
            "tanh",
            "tanh_shrink",
            "threshold",
        ];
        let ours: Vec<&str> = ACTIVATIONS.iter().flat_map(|a| a.names()).collect();
        for name in keras {
            assert_eq!(
                ours.iter().filter(|n| **n == name).count(),
                1,
                "Keras's `{name}` must be in the table once"
            );
        }
        let mut unique = ours.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ours.len(),
            "a name appears twice in the table"
        );
    }

    #[test]
    fn arguments_read_back() {
        let relu = find_activation("relu").unwrap();
        assert_eq!(relu.type_name, "Relu");
        let max = relu.arg("max_value").unwrap();
        assert!(max.is_option());
        assert_eq!(max.default, Some("None"));
        assert!(relu.has_defaults());
        assert!(!find_activation("threshold").unwrap().has_defaults());
        assert_eq!(find_activation("swish").unwrap().name, "silu");
        assert!(relu.doc.contains("negative_slope"));
    }

    #[test]
    fn glu_halves_its_axis() {
        let glu = find_activation("glu").unwrap();
        assert_eq!(glu.shape.apply(&[3, 8], -1), Ok(vec![3, 4]));
        assert_eq!(glu.shape.apply(&[6, 8], 0), Ok(vec![3, 8]));
        assert!(glu.shape.apply(&[3, 7], -1).is_err());
        assert!(glu.shape.apply(&[3, 8], 2).is_err());
    }
}
