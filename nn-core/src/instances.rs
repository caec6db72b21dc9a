//! Float-generic functions compiled once, in the crate defining them, for
//! `f32` and `f64`.
//!
//! Debug and test builds share generic instances across crates (rustc's
//! share-generics, on below opt-level 2): an instance compiled in `nn-core`
//! is linked by every example and test binary that calls it instead of being
//! compiled again in each, and with it everything it calls (the kernels,
//! `ndarray`'s loops). The workspace's crates list their float-generic entry
//! points beside their definitions with [`instances!`](crate::instances!); a
//! function left out only costs build time.

/// Addresses of functions, kept so that the compiler instantiates them.
#[allow(dead_code)] // kept, never read
pub struct Table(pub &'static [*const ()]);

// SAFETY: the addresses are never read through or called.
unsafe impl Sync for Table {}

/// Compiles float-generic functions for `f32` and `f64` in the calling crate,
/// in builds with debug assertions (the dev and test profiles; release builds
/// do not share generic instances) and not in a unit-test binary (which
/// nothing links):
/// `instances!(Var: exp, log)` for inherent methods,
/// `instances!(impl Optimizer for Adam: step)` for trait methods and
/// `instances!(fn encode, decode)` for free functions.
#[doc(hidden)]
#[macro_export]
macro_rules! instances {
    (impl $trait:ident for $ty:ident : $($method:ident),* $(,)?) => {
        $crate::instances!(@table $(<$ty<f32> as $trait<f32>>::$method, <$ty<f64> as $trait<f64>>::$method,)*);
    };
    (fn $($f:ident),* $(,)?) => {
        $crate::instances!(@table $($f::<f32>, $f::<f64>,)*);
    };
    ($ty:ident : $($method:ident),* $(,)?) => {
        $crate::instances!(@table $(<$ty<f32>>::$method, <$ty<f64>>::$method,)*);
    };
    (@table $($f:expr,)*) => {
        #[cfg(all(debug_assertions, not(test)))]
        const _: () = {
            #[used]
            static INSTANCES: $crate::instances::Table =
                $crate::instances::Table(&[$($f as *const (),)*]);
        };
    };
}
