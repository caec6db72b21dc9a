//! The kernels' instruction set follows `NN_CPU_CAPABILITY` (CI runs the
//! suite a second time with `NN_CPU_CAPABILITY=avx2`), and never exceeds the
//! CPU's.

use nn_core::kernels::cpu::{capability, Capability};

#[test]
fn the_capability_is_the_detected_one_limited_by_the_environment() {
    let detected = Capability::detected();
    let limit = match std::env::var("NN_CPU_CAPABILITY").as_deref().map(str::trim) {
        Ok("default") => Capability::Baseline,
        Ok("avx2") => Capability::Avx2,
        Ok("avx512") | Ok("") | Err(_) => Capability::Avx512,
        Ok(other) => panic!("this test knows no NN_CPU_CAPABILITY={other:?}"),
    };
    assert_eq!(capability(), detected.min(limit));
    eprintln!(
        "kernels use {} (CPU: {})",
        capability().name(),
        detected.name()
    );
}
