//! The kernels' instruction set follows `NN_CPU_CAPABILITY` (CI runs the
//! suite a second time with `NN_CPU_CAPABILITY=avx2`), and never exceeds the
//! CPU's.

use nn_core::kernels::cpu::{capability, Capability};

#[test]
fn the_capability_is_the_detected_one_limited_by_the_environment() {
    let detected = Capability::detected();
    let limit = match std::env::var("NN_CPU_CAPABILITY") {
        Ok(name) => Capability::from_name(name.trim())
            .unwrap_or_else(|| panic!("NN_CPU_CAPABILITY={name:?} names no capability")),
        Err(_) => Capability::Avx512,
    };
    assert_eq!(capability(), detected.min(limit));
    eprintln!(
        "kernels use {} (CPU: {})",
        capability().name(),
        detected.name()
    );
}
