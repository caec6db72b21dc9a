//! The element types a tensor can hold: `f32` (the default) and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use ndarray::{LinalgScalar, ScalarOperand};

/// A floating-point element type: `f32` for training, `f64` for gradient checks
/// and scientific work.
///
/// Everything in this crate is generic over it; the type parameter defaults to `f32`.
pub trait Float:
    num_traits::Float
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The dtype's name as safetensors and PyTorch spell it (`"F32"`, `"F64"`).
    const DTYPE: &'static str;

    /// Converts an `f64` constant, rounding to the nearest representable value.
    fn lit(v: f64) -> Self;

    /// Widens to `f64` (exact for both element types).
    fn as_f64(self) -> f64;

    /// The error function, for the exact GELU (`f32`: the branch-free
    /// [`crate::kernels::erf::erf_f32`], within one ulp, so loops vectorize
    /// in the kernels' wide copies; `f64`: libm's `erf`).
    fn erf(self) -> Self;

    /// Appends the little-endian bytes (the safetensors encoding).
    fn extend_le(self, out: &mut Vec<u8>);

    /// Reads one value from little-endian bytes of length `size_of::<Self>()`.
    fn from_le(bytes: &[u8]) -> Self;

    /// The hyperbolic tangent in a branch-free form that loops vectorize
    /// in the kernels' wide copies (`f32`: [`crate::kernels::tanh::tanh_f32`], within one ulp; `f64`: `f64::tanh`).
    fn tanh_fast(self) -> Self;

    /// The logistic function `1 / (1 + e^{-x})` in a branch-free form that
    /// loops vectorize in the kernels' wide copies (`f32`: [`crate::kernels::tanh::sigmoid_f32`], within
    /// two ulps; `f64`: the overflow-free two-sided formula).
    fn sigmoid_fast(self) -> Self;

    /// `e^x` in a branch-free form that loops vectorize in the kernels' wide
    /// copies (`f32`:
    /// [`crate::kernels::tanh::exp_f32`], within one ulp; `f64`: `f64::exp`).
    fn exp_fast(self) -> Self;

    /// The matrix-product micro-kernels for this type on this CPU.
    #[doc(hidden)]
    fn gemm_kernels() -> &'static crate::kernels::gemm::Kernels<Self>;
}

impl Float for f32 {
    const DTYPE: &'static str = "F32";

    #[inline]
    fn lit(v: f64) -> Self {
        v as f32
    }

    #[inline]
    fn as_f64(self) -> f64 {
        self as f64
    }

    #[inline(always)]
    fn erf(self) -> Self {
        crate::kernels::erf::erf_f32(self)
    }

    #[inline(always)]
    fn tanh_fast(self) -> Self {
        crate::kernels::tanh::tanh_f32(self)
    }

    #[inline(always)]
    fn sigmoid_fast(self) -> Self {
        crate::kernels::tanh::sigmoid_f32(self)
    }

    #[inline(always)]
    fn exp_fast(self) -> Self {
        crate::kernels::tanh::exp_f32(self)
    }

    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }

    fn from_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("element width"))
    }

    fn gemm_kernels() -> &'static crate::kernels::gemm::Kernels<Self> {
        static KERNELS: std::sync::OnceLock<&'static crate::kernels::gemm::Kernels<f32>> =
            std::sync::OnceLock::new();
        KERNELS.get_or_init(crate::kernels::gemm::select_f32)
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "F64";

    #[inline]
    fn lit(v: f64) -> Self {
        v
    }

    #[inline]
    fn as_f64(self) -> f64 {
        self
    }

    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }

    #[inline]
    fn tanh_fast(self) -> Self {
        self.tanh()
    }

    #[inline]
    fn sigmoid_fast(self) -> Self {
        crate::kernels::activation::sigmoid(self)
    }

    #[inline]
    fn exp_fast(self) -> Self {
        self.exp()
    }

    fn extend_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }

    fn from_le(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("element width"))
    }

    fn gemm_kernels() -> &'static crate::kernels::gemm::Kernels<Self> {
        static KERNELS: std::sync::OnceLock<&'static crate::kernels::gemm::Kernels<f64>> =
            std::sync::OnceLock::new();
        KERNELS.get_or_init(crate::kernels::gemm::select_f64)
    }
}
