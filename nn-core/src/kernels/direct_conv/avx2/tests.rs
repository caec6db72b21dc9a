use super::super::test_support::{assert_within_rounding, padded};
use super::*;

/// The AVX2 kernels (the forward, both weight gradients) on every row width a direct geometry takes (1 to 32:
/// every tail mask, one to four vectors), odd row counts (a forward block
/// of two rows cut short), channel and tap counts that fill no block, a
/// 3 × 3 kernel (its own unrolled copy) and 5 × 5, 1 × 3 and 2 × 2 ones,
/// `relu` on and off, with the staging buffer starting full of NaN (every
/// value it is read for must be written) and NaN just past the output and
/// the output gradient (nothing may be stored past the one or read past
/// the other): the forward gives the AVX-512 row kernel's bits and the
/// channels-in-lanes weight gradient the AVX-512 one's (where the CPU has
/// AVX-512 and it takes that layout), and every kernel gives the
/// definition summed in `f64` within `f32` rounding (1e-5 of the largest
/// value), the weight gradient added to one already holding values. A
/// 16-channel 14 × 14 case, a stem and LeNet-5's second layer beside them.
#[test]
fn the_avx2_kernels_give_the_definition_at_every_width() {
    // The kernels' own choice, not the CPU's: under `NN_CPU_CAPABILITY=default`
    // no direct geometry exists.
    if !crate::kernels::cpu::avx2() {
        eprintln!("skipped: the kernels use neither AVX-512 nor AVX2 here");
        return;
    }
    // convnet's 16-channel layer, a 16-channel stem, LeNet-5's second layer.
    let mut cases = vec![
        (16, 16, 14, 14, (3, 3), 1),
        (1, 16, 28, 28, (3, 3), 1),
        (6, 16, 10, 10, (5, 5), 0),
    ];
    for ow in 1..=32 {
        // c, oc, oh, kernel, padding
        for (c, oc, oh, kernel, pad) in [
            (2, 1, 3, (3, 3), 1),
            (2, 5, 5, (3, 3), 1),
            (3, 7, 3, (1, 3), 1),
            (1, 3, 1, (2, 2), 0),
            (2, 9, 3, (5, 5), 2),
            // A whole vector of channels, then part of one.
            (1, 12, 3, (3, 3), 1),
            (2, 20, 3, (3, 3), 1),
            // 36 and 50 taps: the forward puts these channels in the lanes
            // (three blocks of two vectors, the last with one empty; one
            // of two; one of one, 3 × 3 and 5 × 5) where the rows fill
            // their vectors less.
            (4, 40, 3, (3, 3), 1),
            (4, 12, 3, (3, 3), 1),
            (4, 6, 3, (3, 3), 1),
            (2, 4, 3, (5, 5), 2),
            // 5 × 5 in the lanes at every width that holds a block (16
            // channels: 5 positions, 8: 8; a row's last block moved back
            // where the blocks do not divide it), the rows below that.
            (2, 16, 3, (5, 5), 2),
            (2, 8, 3, (5, 5), 2),
        ] {
            cases.push((c, oc, oh, ow, kernel, pad));
        }
    }
    for (c, oc, oh, ow, (kh, kw), pad) in cases {
        check(2, c, oc, (oh, ow), (kh, kw), pad);
    }
}

/// One case of [`the_avx2_kernels_give_the_definition_at_every_width`]: `n`
/// samples, `c` to `oc` channels, `oh × ow` outputs.
fn check(
    n: usize,
    c: usize,
    oc: usize,
    (oh, ow): (usize, usize),
    (kh, kw): (usize, usize),
    pad: usize,
) {
    let (h, w) = (oh + kh - 1 - 2 * pad, ow + kw - 1 - 2 * pad);
    let case = format!("{n}x{c}x{h}x{w} to {oc}x{oh}x{ow} by {kh}x{kw}, padding {pad}");
    let window = padded((kh, kw), pad);
    let Some(g) = Geometry::direct(true, &window, (c, h, w), (oc, oh, ow)) else {
        panic!("{case}: no direct geometry where the kernels use AVX2 or AVX-512");
    };
    let avx2 = Geometry { avx512: false, ..g };
    if (kh, kw) == (5, 5) && matches!(oc, 8 | 16) && c * kh * kw >= 32 {
        // Channels that fill their block: the lanes wherever a row holds
        // one (so the cases above reach both 5 × 5 lane kernels).
        let holds = ow >= super::super::forward::positions_5x5_avx2(oc);
        assert_eq!(
            avx2.forward_lane_width(),
            holds.then_some(oc),
            "{case}: the layout"
        );
    }
    let value = |i: usize| ((i * 7919) % 97) as f64 / 97.0 - 0.5;
    let taps = c * kh * kw;
    let x: Vec<f64> = (0..n * c * h * w).map(value).collect();
    let wt: Vec<f64> = (0..oc * taps).map(|i| value(i + 5)).collect();
    let bias: Vec<f64> = (0..oc).map(|i| value(i + 11)).collect();
    let dy: Vec<f64> = (0..n * oc * oh * ow).map(|i| value(i + 3)).collect();
    let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let (x32, w32, b32) = (f32s(&x), f32s(&wt), f32s(&bias));
    let mut buf = vec![f32::NAN; (n + 1) * g.staged_len()];
    let staged = avx2.staged_in(&mut buf, n);
    for (s, out) in staged.chunks_exact_mut(g.staged_len()).enumerate() {
        avx2.stage(&x32[s * c * h * w..][..c * h * w], out);
    }
    let at = |o: usize, ci: usize, ky: usize, kx: usize| ((o * c + ci) * kh + ky) * kw + kx;
    // The input under tap (ky, kx) of output (oy, ox), or 0 in the padding.
    let input = |s: usize, ci: usize, (oy, ox): (usize, usize), (ky, kx): (usize, usize)| {
        let (iy, ix) = ((oy + ky).wrapping_sub(pad), (ox + kx).wrapping_sub(pad));
        if iy < h && ix < w {
            x[((s * c + ci) * h + iy) * w + ix]
        } else {
            0.0
        }
    };
    let every_tap =
        || (0..c).flat_map(|ci| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (ci, ky, kx))));
    let outputs = oc * oh * ow;
    let mut prepared = Vec::new();
    let weights = avx2.forward_weights(&w32, &mut prepared);
    for s in 0..n {
        let sample = &staged[s * g.staged_len()..];
        for (relu, with_bias) in [(false, true), (true, true), (false, false)] {
            let b = with_bias.then_some(&b32[..]);
            let mut guarded = vec![f32::NAN; outputs + 16];
            avx2.forward(sample, weights, b, relu, &mut guarded[..outputs]);
            let (y, past) = guarded.split_at(outputs);
            let what = format!("{case}, sample {s}, relu {relu}, bias {with_bias}");
            assert!(
                past.iter().all(|v| v.is_nan()),
                "{what}: stored past the output"
            );
            if g.avx512 {
                let mut rows = vec![0f32; outputs];
                // SAFETY: the CPU has AVX-512 (`g` was made for it); the
                // buffers fit the geometry (a width over 32 is no direct
                // geometry, and two vectors hold 32).
                unsafe {
                    g.forward_rows::<4, 2, 2, 0>(
                        sample.as_ptr(),
                        w32.as_ptr(),
                        b.map_or(std::ptr::null(), |b| b.as_ptr()),
                        relu,
                        rows.as_mut_ptr(),
                    )
                };
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(y), bits(&rows), "{what}: the AVX-512 kernel's bits");
            }
            let scale = y.iter().fold(1.0f64, |m, &v| m.max(v.abs() as f64));
            for (o, oy, ox) in
                (0..oc).flat_map(|o| (0..oh).flat_map(move |oy| (0..ow).map(move |ox| (o, oy, ox))))
            {
                let mut want = if with_bias { bias[o] } else { 0.0 };
                for (ci, ky, kx) in every_tap() {
                    want += wt[at(o, ci, ky, kx)] * input(s, ci, (oy, ox), (ky, kx));
                }
                if relu {
                    want = want.max(0.0);
                }
                let got = y[(o * oh + oy) * ow + ox] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * scale,
                    "{what}: channel {o} at ({oy}, {ox}): {got} against {want}"
                );
            }
        }
    }
    let before: Vec<f64> = (0..oc * taps).map(|i| value(i + 7)).collect();
    let mut want = before.clone();
    for o in 0..oc {
        for (ci, ky, kx) in every_tap() {
            for (s, oy, ox) in
                (0..n).flat_map(|s| (0..oh).flat_map(move |oy| (0..ow).map(move |ox| (s, oy, ox))))
            {
                want[at(o, ci, ky, kx)] +=
                    dy[((s * oc + o) * oh + oy) * ow + ox] * input(s, ci, (oy, ox), (ky, kx));
            }
        }
    }
    let mut dy_guarded = f32s(&dy);
    dy_guarded.extend([f32::NAN; 16]);
    let dy32 = &dy_guarded[..dy.len()];
    let (sp, gp) = (staged.as_ptr(), dy32.as_ptr());
    let mut kernels = Vec::new();
    let mut rows = f32s(&before);
    // SAFETY: the CPU has AVX2 and FMA (checked by the caller); the buffers
    // fit the geometry.
    unsafe { avx2.weight_grad_rows_by_width(n, sp, gp, rows.as_mut_ptr()) };
    kernels.push(("rows", rows));
    if kh == kw && matches!(kh, 3 | 5) {
        let mut lanes = f32s(&before);
        // SAFETY: as above; the kernel is 3 × 3 or 5 × 5.
        unsafe { avx2.weight_grad_lanes_avx2(n, sp, gp, lanes.as_mut_ptr(), &mut Vec::new()) };
        if g.channel_lanes() == Some(kh) {
            // AVX-512 puts the channels in the lanes too: the same chains.
            let mut wide = f32s(&before);
            g.weight_grad(n, staged, dy32, &mut wide, &mut Vec::new());
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&lanes),
                bits(&wide),
                "{case}: the AVX-512 channel kernel's bits"
            );
        }
        kernels.push(("channel lanes", lanes));
    }
    for (name, got) in kernels {
        assert_within_rounding(&want, &got, &format!("{case}: the {name} weight gradient"));
    }
}
