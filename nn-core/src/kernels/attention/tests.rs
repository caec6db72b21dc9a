//! Unit tests of the attention kernels.

use super::*;
use ndarray::Array4;

fn ramp(shape: (usize, usize, usize, usize), k: f64) -> Array4<f64> {
    let mut i = 0.0;
    Array4::from_shape_simple_fn(shape, || {
        i += 1.0;
        (i * k).sin()
    })
}

#[test]
fn masked_positions_get_exactly_zero_and_rows_sum_to_one() {
    let (q, k, v) = (
        ramp((1, 2, 3, 4), 0.7),
        ramp((1, 2, 3, 4), 1.3),
        ramp((1, 2, 3, 2), 0.4),
    );
    let qkv = Qkv {
        q: q.view(),
        k: k.view(),
        v: v.view(),
    };
    let (_, p) = attention(&qkv, &AttentionMask::causal(true), None);
    for ((_, _, i, j), &x) in four(&p, "p").indexed_iter() {
        if j > i {
            assert_eq!(x, 0.0);
        }
    }
    for row in p.lanes(Axis(3)) {
        assert!((row.sum() - 1.0).abs() < 1e-15);
    }
}

/// The forward and backward of `qkv` under `mask` with dropout, the
/// heads shared out over `slots` parts: `(out, p, [dq, dk, dv])`.
#[allow(clippy::type_complexity)]
fn run_with_slots(
    qkv: &Qkv<'_, f32>,
    mask: &AttentionMask,
    drop: &Array4<f32>,
    dout: &Array4<f32>,
    dweights: &ndarray::Array3<f32>,
    slots: usize,
) -> (Array4<f32>, Array4<f32>, [Array4<f32>; 3]) {
    let (b, h, tq, _) = qkv.q.dim();
    let tk = qkv.k.dim().2;
    let mut p = Array4::zeros((b, h, tq, tk));
    let mut out = Array4::zeros((b, h, tq, qkv.v.dim().3));
    let mut scratch = ndarray::Array3::from_elem((slots, tq, tk), f32::NAN);
    attention_into(
        qkv,
        mask,
        Some(drop.view()),
        p.view_mut(),
        scratch.view_mut(),
        out.view_mut(),
    );
    let mut grads = [qkv.q.to_owned(), qkv.k.to_owned(), qkv.v.to_owned()];
    grads.iter_mut().for_each(|g| g.fill(f32::NAN));
    let [dq, dk, dv] = &mut grads;
    attention_backward_into(
        qkv,
        p.view(),
        Some(drop.view()),
        Some(dout.view()),
        Some(dweights.view()),
        scratch.view_mut(),
        QkvGrads {
            dq: Some(dq.view_mut()),
            dk: Some(dk.view_mut()),
            dv: Some(dv.view_mut()),
        },
    );
    (out, p, grads)
}

#[test]
fn heads_shared_out_among_threads_give_the_serial_result_exactly() {
    // 64 sequences of 2 heads: enough work to be split (when there are
    // several cores); each head is computed the same way in either case.
    let shape = (64, 2, 8, 8);
    let f32s = |a: Array4<f64>| a.mapv(|x| x as f32);
    let (q, k, v) = (
        f32s(ramp(shape, 0.7)),
        f32s(ramp(shape, 1.3)),
        f32s(ramp((64, 2, 8, 4), 0.4)),
    );
    let qkv = Qkv {
        q: q.view(),
        k: k.view(),
        v: v.view(),
    };
    let padding = ndarray::Array2::from_shape_fn((64, 8), |(b, j)| j > 3 + b % 5);
    let mask = AttentionMask {
        causal: true,
        key_padding_mask: Some(padding.into_dyn()),
        ..Default::default()
    };
    let drop = f32s(ramp((64, 2, 8, 8), 2.9)).mapv(|x| if x > -0.3 { 1.25 } else { 0.0 });
    let dout = f32s(ramp((64, 2, 8, 4), 0.9));
    let dweights = ndarray::Array3::from_shape_fn((64, 8, 8), |(b, i, j)| {
        ((b * 64 + i * 8 + j) as f32 * 0.37).cos()
    });
    let serial = run_with_slots(&qkv, &mask, &drop, &dout, &dweights, 1);
    let shared = run_with_slots(&qkv, &mask, &drop, &dout, &dweights, 8);
    assert_eq!(serial.0, shared.0);
    assert_eq!(serial.1, shared.1);
    assert_eq!(serial.2, shared.2);
    assert!(serial.2.iter().all(|g| g.iter().all(|x| x.is_finite())));
}

#[test]
fn a_fully_masked_row_attends_to_nothing() {
    let q = ramp((1, 1, 2, 2), 0.3);
    let qkv = Qkv {
        q: q.view(),
        k: q.view(),
        v: q.view(),
    };
    let mask = AttentionMask {
        attn_mask: Some(ndarray::arr2(&[[true, true], [false, true]]).into_dyn()),
        ..Default::default()
    };
    let (out, _) = attention(&qkv, &mask, None);
    assert!(out.slice(s![0, 0, 0, ..]).iter().all(|&x| x == 0.0));
    assert!(out.slice(s![0, 0, 1, ..]).iter().all(|x| x.is_finite()));
}

#[test]
fn a_mask_that_masks_nothing_gives_the_unmasked_bits() {
    // Rows of 37 keys: two whole chunks of lane sums and a rest. The masked
    // path sums its exponentials as the unmasked path sums them.
    let f32s = |a: Array4<f64>| a.mapv(|x| (x * 4.0) as f32);
    let (q, k, v) = (
        f32s(ramp((2, 3, 5, 8), 0.7)),
        f32s(ramp((2, 3, 37, 8), 1.3)),
        f32s(ramp((2, 3, 37, 4), 0.4)),
    );
    let qkv = Qkv {
        q: q.view(),
        k: k.view(),
        v: v.view(),
    };
    let nothing = AttentionMask {
        key_padding_mask: Some(ndarray::Array2::from_elem((2, 37), false).into_dyn()),
        ..Default::default()
    };
    let (out, p) = attention(&qkv, &AttentionMask::default(), None);
    let (out_masked, p_masked) = attention(&qkv, &nothing, None);
    assert_eq!(p_masked, p);
    assert_eq!(out_masked, out);
}
