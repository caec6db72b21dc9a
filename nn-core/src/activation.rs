//! Every Keras 3 activation, by its Keras name, with Keras's arguments and
//! defaults.
//!
//! The list is [`nn_spec::activation_table!`]: each row there becomes, here,
//! a small `Copy` type implementing [`ActivationFn`] (its fields are Keras's
//! arguments), a lowercase constant of the same name holding the defaults
//! (`relu`, `softmax`, …), a [`Builtin`] variant for the run-time lookup, and
//! a tape method (`Var::relu()`). The `sequential!` macro reads the same
//! table, so the two always agree. The formulas are in
//! [`crate::kernels::activation`] (element-wise) and beside the other
//! axis-wise kernels.
//!
//! ```
//! use nn_core::activation::{relu, ActivationFn, Builtin, Relu};
//! use ndarray::array;
//!
//! let x = array![-1.0f32, 2.0, 9.0].into_dyn();
//! assert_eq!(relu.forward(x.view()), array![0.0f32, 2.0, 9.0].into_dyn());
//! // Keras's arguments are the fields; the constant holds the defaults.
//! let capped = Relu { max_value: Some(6.0), ..relu };
//! assert_eq!(capped.forward(x.view()), array![0.0f32, 2.0, 6.0].into_dyn());
//! // By name at run time, with or without arguments.
//! let a: Builtin = "relu(max_value = 6)".parse().unwrap();
//! assert_eq!(a.forward(x.view()), capped.forward(x.view()));
//! ```
//!
//! Your own activation: implement [`Pointwise`] (a scalar `f` and its
//! derivative) and it is an `ActivationFn` everywhere; implement
//! `ActivationFn` directly for anything that is not element-wise.

#![allow(non_upper_case_globals)]

mod builtin;
mod parse;

use std::fmt::Debug;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn};
use smallvec::SmallVec;

pub use parse::ParseActivationError;

pub use crate::kernels::pointwise::Pointwise;
use crate::kernels::{glu, pointwise, softmax as sm, sparsemax};
use crate::tape::{ActivationOp, Var};
use crate::Float;

/// A shape held inline (up to 6 axes), so computing one allocates nothing.
pub type Shape = SmallVec<[usize; 6]>;

/// An activation function: forward and backward on arrays (the models' static
/// path), and on the tape.
pub trait ActivationFn: Clone + Debug + Send + Sync + 'static {
    /// The Keras name (`"relu"`), shown by summaries and messages.
    fn name(&self) -> &'static str;

    /// The output's shape for an input of `input` (batch axis included);
    /// the input's own unless the function changes it (`glu` halves an axis).
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        Ok(input.into())
    }

    /// `y = f(x)` into a buffer of [`ActivationFn::output_shape`].
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>);

    /// `dx` (shaped like `x`) from the input `x`, the output `y` and the
    /// output gradient `dy`.
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    );

    /// `f(x)` into a new array.
    fn forward<T: Float>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        let shape = self
            .output_shape(x.shape())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name()));
        let mut y = crate::kernels::owned::zeros(IxDyn(&shape));
        self.forward_into(x, y.view_mut());
        y
    }

    /// `dx` into a new array: by default [`ActivationFn::backward_into`] on
    /// zeros. Element-wise functions override it to write a new array
    /// without filling it first; a function whose `backward_into` writes
    /// every element may do the same.
    fn backward<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
    ) -> ArrayD<T> {
        let mut dx = crate::kernels::owned::zeros(x.raw_dim());
        self.backward_into(x, y, dy, dx.view_mut());
        dx
    }

    /// Whether this is the identity (`linear`), which layers skip.
    fn is_identity(&self) -> bool {
        false
    }

    /// Whether this is softmax over the last axis, whose gradient fuses with a
    /// following cross-entropy into `p - y`.
    fn is_softmax_last_axis(&self) -> bool {
        false
    }

    /// Whether this is plain `relu` (`max(x, 0)`, no slope, cap or
    /// threshold), which batch norm applies in its own passes.
    fn is_plain_relu(&self) -> bool {
        false
    }

    /// Records `f(x)` on `x`'s tape. A shape the function cannot take (an
    /// axis out of range, an odd length under `glu`) panics naming the
    /// function and the caller's line.
    #[track_caller]
    fn apply<T: Float>(&self, x: &Var<T>) -> Var<T> {
        if let Err(e) = self.output_shape(&x.shape()) {
            panic!("{}: {e}", self.name());
        }
        let a = self.clone();
        x.tape()
            .record(&[x], |v| (a.forward(v[0].view()), ActivationOp(a.clone())))
    }
}

impl<P: Pointwise> ActivationFn for P {
    fn name(&self) -> &'static str {
        Pointwise::name(self)
    }
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
        pointwise::forward_into(self, x, y);
    }
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    ) {
        pointwise::backward_into(self, x, y, dy, dx);
    }
    fn forward<T: Float>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        pointwise::forward(self, x)
    }
    fn backward<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
    ) -> ArrayD<T> {
        pointwise::backward(self, x, y, dy)
    }
    fn is_identity(&self) -> bool {
        Pointwise::is_identity(self)
    }
}

/// The index of `axis` (negative counts from the end) in `shape`, or why
/// there is none.
fn axis_index(axis: isize, shape: &[usize]) -> Result<usize, String> {
    let n = shape.len() as isize;
    let a = if axis < 0 { axis + n } else { axis };
    if (0..n).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for shape {shape:?}"))
    }
}

/// Whether `axis` names an axis of `shape`, for `output_shape`.
fn check_axis(axis: isize, shape: &[usize]) -> Result<(), String> {
    axis_index(axis, shape).map(|_| ())
}

/// Resolves a possibly negative axis (`-1` = last) against a rank.
pub(crate) fn resolve_axis(op: &str, axis: isize, shape: &[usize]) -> Axis {
    Axis(axis_index(axis, shape).unwrap_or_else(|e| panic!("{op}: {e}")))
}

/// The type of one table row: a unit struct, or a struct whose fields are
/// Keras's arguments.
macro_rules! activation_type {
    ($(#[$doc:meta])* $name:ident, $ty:ident {}) => {
        $(#[$doc])*
        #[doc = concat!("\n\nKeras name: `", stringify!($name), "`.")]
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $ty;
    };
    ($(#[$doc:meta])* $name:ident, $ty:ident { $($field:ident : $fty:ty $(= $default:expr)?),+ }) => {
        $(#[$doc])*
        #[doc = concat!("\n\nKeras name: `", stringify!($name), "`.")]
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $ty {
            $(
                #[doc = concat!("Keras's `", stringify!($field), "`", $(" (default `", stringify!($default), "`)",)? ".")]
                pub $field: $fty,
            )+
        }
    };
}

/// The constants (name and aliases) and `Default` of a row whose arguments
/// all have defaults; nothing for a row with required arguments.
macro_rules! activation_defaults {
    ($name:ident $(| $alias:ident)*, $ty:ident {}) => {
        #[doc = concat!("`", stringify!($name), "`: [`", stringify!($ty), "`].")]
        pub const $name: $ty = $ty;
        $(
            #[doc = concat!("Alias of [`", stringify!($name), "`].")]
            pub const $alias: $ty = $ty;
        )*
    };
    ($name:ident $(| $alias:ident)*, $ty:ident { $($field:ident : $fty:ty = $default:expr),+ }) => {
        #[doc = concat!("`", stringify!($name), "` with Keras's defaults: [`", stringify!($ty), "`].")]
        pub const $name: $ty = $ty { $($field: $default),+ };
        $(
            #[doc = concat!("Alias of [`", stringify!($name), "`].")]
            pub const $alias: $ty = $name;
        )*
        impl Default for $ty {
            fn default() -> Self {
                $name
            }
        }
    };
    ($name:ident $(| $alias:ident)*, $ty:ident { $($rest:tt)* }) => {};
}

/// The `Var` method of a row: its listed arguments positional, the rest at
/// their defaults.
macro_rules! activation_method {
    ($name:ident, $ty:ident {}, $method:ident ()) => {
        #[doc = concat!("[`", stringify!($name), "`](crate::activation::", stringify!($ty), ") on the tape.")]
        #[track_caller]
        pub fn $method(&self) -> Var<T> {
            self.apply($ty)
        }
    };
    ($name:ident, $ty:ident { $($field:ident : $fty:ty = $default:expr),+ }, $method:ident ($($param:ident : $pty:ty),*)) => {
        #[doc = concat!("[`", stringify!($name), "`](crate::activation::", stringify!($ty), ") on the tape", $(", with `", stringify!($param), "`",)* ".")]
        #[allow(clippy::needless_update)]
        #[track_caller]
        pub fn $method(&self, $($param: $pty),*) -> Var<T> {
            self.apply($ty { $($param,)* ..$name })
        }
    };
    ($name:ident, $ty:ident { $($rest:tt)* }, $method:ident ($($param:ident : $pty:ty),*)) => {
        #[doc = concat!("[`", stringify!($name), "`](crate::activation::", stringify!($ty), ") on the tape", $(", with `", stringify!($param), "`",)* ".")]
        #[track_caller]
        pub fn $method(&self, $($param: $pty),*) -> Var<T> {
            self.apply($ty { $($param),* })
        }
    };
}

/// One tape method per alias (`Var::swish` for `silu`), calling the row's.
macro_rules! alias_methods {
    ([] $method:ident $params:tt) => {};
    ([$alias:ident $($more:ident)*] $method:ident ($($param:ident : $pty:ty),*)) => {
        #[doc = concat!("Alias of [`Var::", stringify!($method), "`].")]
        #[track_caller]
        pub fn $alias(&self, $($param: $pty),*) -> Var<T> {
            self.$method($($param),*)
        }
        alias_methods!([$($more)*] $method ($($param : $pty),*));
    };
}

/// Generates everything of the activation table but the formulas.
macro_rules! declare_activations {
    ($(
        $(#[$doc:meta])*
        $name:ident $(| $alias:ident)* => $ty:ident {
            $($field:ident : $fty:ty $(= $default:expr)?),* $(,)?
        }, $shape:ident, method $method:ident ($($param:ident : $pty:ty),*);
    )*) => {
        $(
            activation_type!($(#[$doc])* $name, $ty { $($field : $fty $(= $default)?),* });
            activation_defaults!($name $(| $alias)*, $ty { $($field : $fty $(= $default)?),* });

            impl $ty {
                /// The Keras name.
                pub const NAME: &'static str = stringify!($name);
            }
        )*

        impl<T: Float> Var<T> {
            $(
                activation_method!($name, $ty { $($field : $fty $(= $default)?),* }, $method ($($param : $pty),*));
                alias_methods!([$($alias)*] $method ($($param : $pty),*));
            )*
        }

        $crate::instances!(Var: $($method),*);

        builtin::declare_builtin! {
            $($name $(| $alias)* => $ty { $($field : $fty $(= $default)?),* };)*
        }
    };
}

nn_spec::activation_table!(declare_activations);

/// Implements [`ActivationFn`] for a type normalizing along its `axis`
/// field, over the axis-wise kernels.
macro_rules! along_axis {
    ($ty:ident, $forward:path, $backward:path, softmax = $is_softmax:literal) => {
        impl ActivationFn for $ty {
            fn name(&self) -> &'static str {
                Self::NAME
            }
            fn is_softmax_last_axis(&self) -> bool {
                $is_softmax && self.axis == -1
            }
            fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
                check_axis(self.axis, input).map(|()| input.into())
            }
            fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
                let ax = resolve_axis(Self::NAME, self.axis, x.shape());
                $forward(x, ax, y);
            }
            fn backward_into<T: Float>(
                &self,
                _x: ArrayViewD<'_, T>,
                y: ArrayViewD<'_, T>,
                dy: ArrayViewD<'_, T>,
                dx: ArrayViewMutD<'_, T>,
            ) {
                let ax = resolve_axis(Self::NAME, self.axis, y.shape());
                $backward(y, dy, ax, dx);
            }
        }
    };
}

along_axis!(
    Softmax,
    sm::softmax_into,
    sm::softmax_backward_into,
    softmax = true
);
along_axis!(
    LogSoftmax,
    sm::log_softmax_into,
    sm::log_softmax_backward_into,
    softmax = false
);
impl ActivationFn for Sparsemax {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        check_axis(self.axis, input).map(|()| input.into())
    }
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
        let ax = resolve_axis(Self::NAME, self.axis, x.shape());
        sparsemax::sparsemax_into(x, ax, y);
    }
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    ) {
        let ax = resolve_axis(Self::NAME, self.axis, x.shape());
        sparsemax::sparsemax_backward_into(x, y, dy, ax, dx);
    }
}

impl ActivationFn for Glu {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        glu::output_shape(input, self.axis)
    }
    fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
        let ax = resolve_axis(Self::NAME, self.axis, x.shape());
        glu::glu_into(x, ax, y);
    }
    fn backward_into<T: Float>(
        &self,
        x: ArrayViewD<'_, T>,
        _y: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        dx: ArrayViewMutD<'_, T>,
    ) {
        let ax = resolve_axis(Self::NAME, self.axis, x.shape());
        glu::glu_backward_into(x, dy, ax, dx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A built-in for every row, with `threshold`'s required arguments.
    fn each_builtin() -> impl Iterator<Item = (&'static nn_spec::ActivationSpec, Builtin)> {
        nn_spec::ACTIVATIONS.iter().map(|spec| {
            let b = if spec.has_defaults() {
                Builtin::from_name(spec.name).expect("a row with defaults builds by name")
            } else {
                let args: Vec<(&str, &str)> = spec.args.iter().map(|a| (a.name, "0.5")).collect();
                Builtin::with_args(spec.name, &args).expect("a row builds with its arguments")
            };
            (spec, b)
        })
    }

    #[test]
    fn runtime_and_table_agree() {
        let mut seen = 0;
        for (spec, b) in each_builtin() {
            assert_eq!(b.name(), spec.name, "name of {spec:?}");
            assert_eq!(b.spec(), spec);
            let variant = format!("{b:?}");
            assert!(
                variant.starts_with(&format!("{}(", spec.type_name)),
                "{variant} is not the table's {}",
                spec.type_name
            );
            for alias in spec.aliases {
                assert_eq!(Builtin::from_name(alias).map(|a| a.name()), Some(spec.name));
            }
            // The macro infers shapes from the table's rule; the layers from
            // `output_shape`. They must agree (axis -1 by default).
            for shape in [&[2usize, 8][..], &[3, 4, 6]] {
                assert_eq!(
                    b.output_shape(shape).map(|s| s.to_vec()),
                    spec.shape.apply(shape, -1),
                    "{} on {shape:?}",
                    spec.name
                );
            }
            seen += 1;
        }
        assert_eq!(seen, nn_spec::ACTIVATIONS.len());
        assert_eq!(
            NAMES.len(),
            nn_spec::ACTIVATIONS
                .iter()
                .map(|s| s.names().count())
                .sum::<usize>()
        );
    }

    #[test]
    fn nan_stays_nan_through_every_activation() {
        // A diverged model must show it: PyTorch and Keras keep NaN too.
        let x = ndarray::Array::from_shape_vec(IxDyn(&[1, 2]), vec![f64::NAN, 0.25]).unwrap();
        for (spec, b) in each_builtin() {
            let y = b.forward(x.view());
            assert!(
                y[[0, 0]].is_nan(),
                "{}: NaN became {}",
                spec.name,
                y[[0, 0]]
            );
        }
    }

    #[test]
    fn allocating_forms_match_the_into_forms_bit_for_bit() {
        // `forward` and `backward` write fresh arrays (element-wise functions
        // without filling them first); each must give what `_into` gives
        // into zeros, for every built-in (through `Builtin`'s dispatch).
        let (n, c) = (3, 8);
        let wave = |k: usize| {
            ndarray::Array::from_shape_fn(IxDyn(&[n, c]), |ix| {
                ((ix[0] * c + ix[1] + k) as f64 * 0.37).sin() * 2.0
            })
        };
        let (x, dy) = (wave(0), wave(5));
        for (spec, b) in each_builtin() {
            let shape = b.output_shape(x.shape()).expect("a shape every row takes");
            let mut y = ndarray::ArrayD::zeros(IxDyn(&shape));
            b.forward_into(x.view(), y.view_mut());
            let dy = dy.slice_each_axis(|ax| ndarray::Slice::from(0..shape[ax.axis.index()]));
            let mut dx = ndarray::ArrayD::zeros(x.raw_dim());
            b.backward_into(x.view(), y.view(), dy.view(), dx.view_mut());
            let bits = |a: &ndarray::ArrayD<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&b.forward(x.view())),
                bits(&y),
                "{} forward",
                spec.name
            );
            let back = b.backward(x.view(), y.view(), dy.view());
            assert_eq!(bits(&back), bits(&dx), "{} backward", spec.name);
        }
    }

    #[test]
    fn aliases_have_tape_methods() {
        let tape = crate::Tape::<f64>::new();
        let x = tape.constant(ndarray::array![-1.0, 0.5, 2.0]);
        assert_eq!(x.swish().value(), x.silu().value());
        assert_eq!(x.hard_swish().value(), x.hard_silu().value());
    }

    #[test]
    fn names_read_with_arguments() {
        let a: Builtin = " leaky_relu( negative_slope = 0.1 ) ".parse().unwrap();
        assert_eq!(
            a,
            Builtin::LeakyRelu(LeakyRelu {
                negative_slope: 0.1
            })
        );
        let r: Builtin = "relu(max_value=None, threshold=1)".parse().unwrap();
        assert_eq!(
            r,
            Builtin::Relu(Relu {
                threshold: 1.0,
                ..relu
            })
        );
        let g: Builtin = "gelu(approximate=True)".parse().unwrap();
        assert_eq!(g, Builtin::Gelu(Gelu { approximate: true }));
        assert_eq!(Builtin::from_name("swish"), Some(Builtin::Silu(Silu)));
    }

    #[test]
    fn bad_names_and_arguments_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Builtin>().unwrap_err().to_string();
        assert!(err("rleu").starts_with("unknown activation \"rleu\"; did you mean \"relu\"?"));
        assert!(
            err("rleu").contains("relu, "),
            "lists the names: {}",
            err("rleu")
        );
        assert_eq!(
            err("relu(slope = 0.1)"),
            "relu has no argument `slope`; its arguments are negative_slope, max_value, threshold"
        );
        assert_eq!(err("tanh(x = 1)"), "tanh takes no arguments, got `x`");
        assert_eq!(
            err("threshold(threshold = 0.5)"),
            "threshold needs `default_value`: Keras gives it no default"
        );
        assert_eq!(
            err("elu(alpha = fast)"),
            "elu: `alpha = fast` is not a number"
        );
        assert!(err("elu(0.5)").contains("written by name"));
        assert!(err("elu(alpha = 1").contains("closing"));
        assert!(err("elu(alpha = 1, alpha = 2)").contains("given twice"));
        assert_eq!(Builtin::from_name("threshold"), None);
    }

    #[test]
    fn glu_halves_an_axis_and_rejects_odd_lengths() {
        let x =
            ndarray::Array::from_shape_vec(IxDyn(&[1, 4]), vec![1.0f64, 2.0, 0.0, 100.0]).unwrap();
        let y = glu.forward(x.view());
        assert_eq!(y.shape(), &[1, 2]);
        // a * sigmoid(b): sigmoid(0) = 1/2, sigmoid(100) = 1 to f64 precision.
        assert_eq!(y.as_slice().unwrap(), &[0.5, 2.0]);
        let err = glu.output_shape(&[2, 3]).unwrap_err();
        assert!(err.contains("odd length 3"), "{err}");
    }
}
