//! Which vector instructions the kernels use: the widest this CPU has, or
//! narrower ones where the `NN_CPU_CAPABILITY` environment variable limits
//! them (`avx2`, `default`), as PyTorch's `ATEN_CPU_CAPABILITY` does. That
//! lets a wider machine time and check the paths a narrower one takes.

use std::sync::OnceLock;

/// A set of vector instructions the kernels have code for, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// The build's baseline (SSE2 on x86-64; every CPU of other
    /// architectures): loops as the compiler vectorizes them.
    Baseline,
    /// AVX2 with fused multiply-adds.
    Avx2,
    /// AVX-512F.
    Avx512,
}

impl Capability {
    /// Every capability, narrowest first.
    pub const ALL: [Capability; 3] = [Capability::Baseline, Capability::Avx2, Capability::Avx512];

    /// The name `NN_CPU_CAPABILITY` takes for it: `default`, `avx2`, `avx512`
    /// (PyTorch's names).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Baseline => "default",
            Capability::Avx2 => "avx2",
            Capability::Avx512 => "avx512",
        }
    }

    /// The capability `name` names (any case), if any.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The widest capability this CPU has.
    pub fn detected() -> Capability {
        #[cfg(target_arch = "x86_64")]
        return Capability::of_features(
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            is_x86_feature_detected!("avx512f"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        Capability::Baseline
    }

    /// The capability of a CPU with (or without) AVX2 and FMA, and
    /// AVX-512F. AVX-512 kernels run beside AVX2 ones (the element-wise
    /// loops' dispatch takes either), so they need both: a virtual machine
    /// may show AVX-512F and hide FMA.
    fn of_features(avx2_fma: bool, avx512f: bool) -> Capability {
        match (avx2_fma, avx512f) {
            (false, _) => Capability::Baseline,
            (true, false) => Capability::Avx2,
            (true, true) => Capability::Avx512,
        }
    }
}

/// The capability the kernels use, decided at the first call: the detected
/// one, or the one `NN_CPU_CAPABILITY` names where that is narrower (it
/// names the widest the kernels may use, so `avx512` on an AVX2 CPU means
/// AVX2; the kernels never use instructions the CPU lacks).
///
/// # Panics
/// If `NN_CPU_CAPABILITY` is set to anything but `default`, `avx2` or
/// `avx512` (blank included, as for `NN_NUM_THREADS`): a setting that was
/// asked for and cannot be honoured is not ignored.
///
/// ```
/// use nn_core::kernels::cpu::{capability, Capability};
/// assert!(capability() <= Capability::detected());
/// ```
pub fn capability() -> Capability {
    static CHOSEN: OnceLock<Capability> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let requested = std::env::var("NN_CPU_CAPABILITY").ok();
        choose(Capability::detected(), requested.as_deref()).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Whether the kernels use AVX-512F (never where the CPU lacks it).
#[inline]
pub(crate) fn avx512() -> bool {
    capability() >= Capability::Avx512
}

/// Whether the kernels use AVX2 and FMA (never where the CPU lacks them).
#[inline]
pub(crate) fn avx2() -> bool {
    capability() >= Capability::Avx2
}

/// The capability for a `requested` name (unset: no limit) on a CPU with
/// `detected`, or why the name is not one.
fn choose(detected: Capability, requested: Option<&str>) -> Result<Capability, String> {
    let Some(requested) = requested else {
        return Ok(detected);
    };
    Capability::from_name(requested.trim())
        .map(|c| c.min(detected))
        .ok_or_else(|| {
            let names: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
            format!(
                "NN_CPU_CAPABILITY={requested:?} is not one of {}; unset it or set e.g. NN_CPU_CAPABILITY=avx2",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    #[test]
    fn a_request_lowers_the_capability_and_never_raises_it() {
        assert_eq!(choose(Avx512, None), Ok(Avx512));
        assert_eq!(choose(Avx512, Some("avx2")), Ok(Avx2));
        assert_eq!(choose(Avx512, Some("AVX2")), Ok(Avx2));
        assert_eq!(choose(Avx2, Some("default")), Ok(Baseline));
        assert_eq!(choose(Avx2, Some("avx512")), Ok(Avx2));
        assert_eq!(choose(Baseline, Some("avx2")), Ok(Baseline));
        assert_eq!(choose(Avx512, Some(" avx2 ")), Ok(Avx2));
        for bad in ["sse9", "", "avx"] {
            assert_eq!(
                choose(Avx512, Some(bad)),
                Err(format!("NN_CPU_CAPABILITY={bad:?} is not one of default, avx2, avx512; unset it or set e.g. NN_CPU_CAPABILITY=avx2"))
            );
        }
    }

    #[test]
    fn avx512_kernels_need_avx2_and_fma_too() {
        assert_eq!(Capability::of_features(false, false), Baseline);
        assert_eq!(Capability::of_features(false, true), Baseline);
        assert_eq!(Capability::of_features(true, false), Avx2);
        assert_eq!(Capability::of_features(true, true), Avx512);
    }

    #[test]
    fn every_name_names_its_capability() {
        for c in Capability::ALL {
            assert_eq!(Capability::from_name(c.name()), Some(c));
            assert_eq!(Capability::from_name(&c.name().to_uppercase()), Some(c));
        }
        assert_eq!(Capability::from_name("avx"), None);
    }

    #[test]
    fn the_capability_in_use_is_one_the_cpu_has() {
        assert!(capability() <= Capability::detected());
    }
}
