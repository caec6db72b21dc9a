//! A step split over ranks (`step_share`), each rank updating its share of
//! every parameter, gives the bits of the whole step: the expected values
//! are the whole steps of the same optimizer, and each rank's shares of
//! parameters and state are put together as a sharded data-parallel run
//! puts them together.

use ndarray::{ArrayD, IxDyn};
use nn_core::distributed::Share;
use nn_core::Param;
use nn_optim::{Adam, AdamConfig, OptimizerState, Sgd, SgdConfig};

use crate::common::{optimizers, Make};

/// Parameters of 7, 12 and 1 elements (shares of uneven size, and empty
/// ones), valued `seed`-dependently.
fn params(seed: f32) -> Vec<(String, Param<f32>)> {
    [vec![7], vec![3, 4], vec![1]]
        .into_iter()
        .enumerate()
        .map(|(k, shape)| {
            let n: usize = shape.iter().product();
            let v = (0..n)
                .map(|i| ((i + 3 * k) as f32 * 0.37 + seed).sin())
                .collect();
            let p = Param::new(ArrayD::from_shape_vec(IxDyn(&shape), v).unwrap());
            (format!("p{k}"), p)
        })
        .collect()
}

/// The gradient of step `t`: changes from step to step, and is 0 at some
/// elements, as real gradients are.
fn set_grads(model: &[(String, Param<f32>)], t: usize) {
    for (k, (_, p)) in model.iter().enumerate() {
        let g = p.value().mapv(|v| {
            if (v * 10.0) as i64 % 3 == 0 {
                0.0
            } else {
                (v * (t + k + 1) as f32).cos()
            }
        });
        p.zero_grad();
        p.accumulate_grad(g);
    }
}

/// `dst`'s elements in `range` from `src` (both of one shape, row-major).
fn copy_share(dst: &mut ArrayD<f32>, src: &ArrayD<f32>, range: std::ops::Range<usize>) {
    dst.as_slice_mut().unwrap()[range.clone()].copy_from_slice(&src.as_slice().unwrap()[range]);
}

/// Runs five whole steps with one optimizer and split steps with one
/// optimizer per rank, and checks that parameters and state agree bit for bit.
fn check(make: Make, ranks: usize) {
    let whole = params(0.1);
    let mut whole_opt = make();
    let copies: Vec<_> = (0..ranks).map(|_| params(0.1)).collect();
    let mut opts: Vec<_> = (0..ranks).map(|_| make()).collect();
    assert!(opts[0].is_elementwise());
    for t in 0..5 {
        set_grads(&whole, t);
        whole_opt.step(&whole);
        for (r, (copy, opt)) in copies.iter().zip(&mut opts).enumerate() {
            set_grads(copy, t);
            let before: Vec<ArrayD<f32>> = copy.iter().map(|(_, p)| p.value().clone()).collect();
            let share = Share::new(r, ranks);
            opt.step_share(copy, share);
            // The work is split: nothing outside the share was updated.
            for ((_, p), old) in copy.iter().zip(&before) {
                let own = share.range(p.len());
                let (new, old) = (p.value(), old.as_slice().unwrap());
                for (i, (a, b)) in new.as_slice().unwrap().iter().zip(old).enumerate() {
                    assert!(own.contains(&i) || a == b, "rank {r} updated element {i}");
                }
            }
        }
        // The exchange after a sharded step: every rank takes each share
        // from its owner.
        for (k, (_, p)) in whole.iter().enumerate() {
            let mut merged = p.value().clone();
            for (r, copy) in copies.iter().enumerate() {
                copy_share(
                    &mut merged,
                    &copy[k].1.value(),
                    Share::new(r, ranks).range(p.len()),
                );
            }
            assert_eq!(merged, *p.value(), "step {t}, parameter {k}, {ranks} ranks");
            for copy in &copies {
                *copy[k].1.value_mut() = merged.clone();
            }
        }
    }
    let want = whole_opt.state();
    let states: Vec<OptimizerState<f32>> = opts.iter().map(|o| o.state()).collect();
    let mut merged = states[0].clone();
    for (name, param) in &mut merged.params {
        for (buffer, values) in &mut param.buffers {
            for (r, st) in states.iter().enumerate() {
                let range = Share::new(r, ranks).range(values.len());
                copy_share(values, &st.params[name].buffers[buffer], range);
            }
        }
        assert_eq!(param.step, want.params[name].step);
    }
    assert_eq!(merged, want, "{ranks} ranks");
}

/// Settings `common::optimizers` leaves out: Adam's vectorized path (no
/// amsgrad) with and without its L2 penalty, SGD without momentum and with
/// dampening.
fn more_optimizers() -> Vec<(&'static str, Make)> {
    vec![
        ("Adam, vectorized", || {
            Box::new(Adam::new(AdamConfig::default()).unwrap())
        }),
        ("Adam, L2", || {
            Box::new(
                Adam::new(AdamConfig {
                    weight_decay: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
        ("SGD, plain", || {
            Box::new(
                Sgd::new(SgdConfig {
                    lr: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
        ("SGD, dampened", || {
            Box::new(
                Sgd::new(SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    dampening: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            )
        }),
    ]
}

#[test]
fn every_optimizer_split_over_ranks_takes_the_whole_steps_bits() {
    for (name, make) in optimizers().into_iter().chain(more_optimizers()) {
        for ranks in [2, 3] {
            eprintln!("{name}, {ranks} ranks");
            check(make, ranks);
        }
    }
}
