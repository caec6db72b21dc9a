//! Running averages of gradients that stopped are flushed to zero rather
//! than decaying through the subnormal range (slow on x86), and a parameter
//! of ordinary size still follows PyTorch's update rules: the expected
//! values are those rules (as `torch.optim` writes them) computed here in
//! `f32` without any flushing.

use ndarray::{ArrayD, IxDyn};
use nn_core::Param;
use nn_optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};

/// One parameter of value `p0`, a gradient `g0` at the first step and 0
/// after: its state decays geometrically towards zero.
fn run(opt: &mut dyn Optimizer<f32>, p0: f32, g0: f32, steps: usize) -> (f32, Vec<f32>) {
    let model = vec![("w", Param::new(ArrayD::from_elem(IxDyn(&[1]), p0)))];
    let mut moments = Vec::new();
    for t in 0..steps {
        let g = if t == 0 { g0 } else { 0.0 };
        model[0].1.zero_grad();
        model[0]
            .1
            .accumulate_grad(ArrayD::from_elem(IxDyn(&[1]), g));
        opt.step(&model);
        let state = opt.state();
        let buffers = &state.params["w"].buffers;
        let first = buffers.get("exp_avg").or(buffers.get("momentum_buffer"));
        moments.push(first.expect("a first moment")[[0]]);
    }
    let p = model[0].1.value()[[0]];
    (p, moments)
}

fn assert_never_subnormal(what: &str, moments: &[f32]) {
    assert!(moments.contains(&0.0), "{what}: decays to 0");
    for (t, m) in moments.iter().enumerate() {
        assert!(
            !m.is_subnormal(),
            "{what}: subnormal {m:e} after step {}",
            t + 1
        );
    }
}

#[test]
fn adam_flushes_its_first_moment_and_updates_as_pytorch() {
    let (lr, (b1, b2), eps) = (1e-3f64, (0.9f64, 0.999f64), 1e-8f64);
    let steps = 1000;
    let mut adam = Adam::new(AdamConfig::default()).unwrap();
    let (p, moments) = run(&mut adam, 0.5, 1e-3, steps);
    assert_never_subnormal("Adam", &moments);
    // torch.optim.Adam's update, in f32 as it runs it.
    let (mut pw, mut m, mut v) = (0.5f32, 0.0f32, 0.0f32);
    let mut went_subnormal = false;
    for t in 1..=steps {
        let g = if t == 1 { 1e-3f32 } else { 0.0 };
        // The weights are Python floats, rounded to f32 once.
        m += (1.0 - b1) as f32 * (g - m);
        v = v * b2 as f32 + (1.0 - b2) as f32 * g * g;
        let step_size = (lr / (1.0 - b1.powi(t as i32))) as f32;
        let bc2_sqrt = (1.0 - b2.powi(t as i32)).sqrt() as f32;
        pw += -step_size * m / (v.sqrt() / bc2_sqrt + eps as f32);
        went_subnormal |= m.is_subnormal();
    }
    assert!(
        went_subnormal,
        "unflushed, the moment passes through the subnormals"
    );
    assert_eq!(p, pw, "the flushed moments change no update");
}

#[test]
fn sgd_flushes_its_momentum_and_updates_as_pytorch() {
    let (lr, mu) = (0.1f32, 0.9f32);
    let steps = 1000;
    let mut sgd = Sgd::new(SgdConfig {
        lr: lr as f64,
        momentum: mu as f64,
        ..Default::default()
    })
    .unwrap();
    let (p, moments) = run(&mut sgd, 0.5, 1e-3, steps);
    assert_never_subnormal("SGD", &moments);
    // torch.optim.SGD with momentum: buf = μ buf + g, p -= lr buf.
    let (mut pw, mut buf) = (0.5f32, 0.0f32);
    let mut went_subnormal = false;
    for t in 1..=steps {
        let g = if t == 1 { 1e-3f32 } else { 0.0 };
        buf = if t == 1 { g } else { buf * mu + g };
        pw += -lr * buf;
        went_subnormal |= buf.is_subnormal();
    }
    assert!(
        went_subnormal,
        "unflushed, the momentum passes through the subnormals"
    );
    assert_eq!(p, pw, "the flushed momentum changes no update");
}
