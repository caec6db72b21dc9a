//! [`Builtin`]: every table row as one enum, for choosing an activation at
//! run time by name.

/// Generates [`Builtin`], [`NAMES`] and the lookup from the activation table
/// (called by `declare_activations!` in the parent module).
macro_rules! declare_builtin {
    ($($name:ident $(| $alias:ident)* => $ty:ident { $($field:ident : $fty:ty $(= $default:expr)?),* };)*) => {
        /// Any built-in activation, chosen at run time by its Keras name
        /// (`"relu"`), optionally with Keras's arguments
        /// (`"leaky_relu(negative_slope = 0.1)"`).
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Builtin {
            $(
                #[doc = concat!("`", stringify!($name), "`", $(", `", stringify!($alias), "`",)* ".")]
                $ty($ty),
            )*
        }

        /// Every name [`Builtin`] accepts: Keras's names and aliases.
        pub const NAMES: &[&str] = &[$(stringify!($name), $(stringify!($alias),)*)*];

        impl Builtin {
            /// The built-in called `name` with Keras's defaults, if there is one
            /// and it needs no arguments (`threshold` does).
            pub fn from_name(name: &str) -> Option<Builtin> {
                Self::with_args(name, &[]).ok()
            }

            /// The built-in called `name` with the given `(argument, value)`
            /// pairs, the rest at Keras's defaults. Values are written as in
            /// Rust or Python (`0.1`, `6`, `true`, `None`).
            pub fn with_args(name: &str, args: &[(&str, &str)]) -> Result<Builtin, ParseActivationError> {
                #[allow(unused_imports)]
                use $crate::activation::parse::{argument, check_arguments};
                match name {
                    $(
                        stringify!($name) $(| stringify!($alias))* => {
                            check_arguments(name, args, &[$(stringify!($field)),*])?;
                            Ok(Builtin::$ty($ty {
                                $($field: argument::<$fty>(name, args, stringify!($field), {
                                    let default: &[$fty] = &[$($default)?];
                                    default.first().copied()
                                })?,)*
                            }))
                        }
                    )*
                    _ => Err(ParseActivationError::Unknown(name.to_string())),
                }
            }

            /// This activation's row of the table.
            pub fn spec(&self) -> &'static nn_spec::ActivationSpec {
                nn_spec::find_activation(self.name()).expect("every built-in comes from the table")
            }
        }

        impl ActivationFn for Builtin {
            fn name(&self) -> &'static str {
                match self { $(Builtin::$ty(a) => ActivationFn::name(a),)* }
            }
            fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
                match self { $(Builtin::$ty(a) => a.output_shape(input),)* }
            }
            fn is_identity(&self) -> bool {
                match self { $(Builtin::$ty(a) => ActivationFn::is_identity(a),)* }
            }
            fn is_softmax_last_axis(&self) -> bool {
                match self { $(Builtin::$ty(a) => a.is_softmax_last_axis(),)* }
            }
            fn is_plain_relu(&self) -> bool {
                match self { $(Builtin::$ty(a) => a.is_plain_relu(),)* }
            }
            fn forward_into<T: Float>(&self, x: ArrayViewD<'_, T>, y: ArrayViewMutD<'_, T>) {
                match self { $(Builtin::$ty(a) => a.forward_into(x, y),)* }
            }
            fn backward_into<T: Float>(
                &self,
                x: ArrayViewD<'_, T>,
                y: ArrayViewD<'_, T>,
                dy: ArrayViewD<'_, T>,
                dx: ArrayViewMutD<'_, T>,
            ) {
                match self { $(Builtin::$ty(a) => a.backward_into(x, y, dy, dx),)* }
            }
            // The allocating forms too: element-wise functions write fresh
            // arrays without filling them first.
            fn forward<T: Float>(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
                match self { $(Builtin::$ty(a) => a.forward(x),)* }
            }
            fn backward<T: Float>(
                &self,
                x: ArrayViewD<'_, T>,
                y: ArrayViewD<'_, T>,
                dy: ArrayViewD<'_, T>,
            ) -> ArrayD<T> {
                match self { $(Builtin::$ty(a) => a.backward(x, y, dy),)* }
            }
        }

        $(
            impl From<$ty> for Builtin {
                fn from(a: $ty) -> Builtin {
                    Builtin::$ty(a)
                }
            }
        )*

        impl std::str::FromStr for Builtin {
            type Err = ParseActivationError;
            /// `"relu"`, or with arguments `"relu(max_value = 6.0)"`.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let (name, args) = $crate::activation::parse::split_call(s)?;
                Builtin::with_args(name, &args)
            }
        }
    };
}

pub(crate) use declare_builtin;
