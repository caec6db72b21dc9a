//! Pooling against its definitions and the general loops.

use ndarray::Array4;

use super::*;

/// The mean over time of `[2, 3, 4]` (the formula, summed in step
/// order), through the row slices and through a transposed view (the
/// per-row fallback), and its gradient spread evenly back.
#[test]
fn sequence_means_over_slices_and_strided_views_agree() {
    let x = ndarray::Array3::from_shape_fn((2, 3, 4), |(n, t, d)| {
        (n * 12 + t * 4 + d) as f32 * 0.7 - 3.0
    });
    let want = ndarray::Array2::from_shape_fn((2, 4), |(n, d)| {
        (0..3).fold(0.0, |s, t| s + x[[n, t, d]]) * (1.0 / 3.0)
    });
    let xt = x
        .view()
        .permuted_axes([2, 1, 0])
        .as_standard_layout()
        .into_owned();
    let strided = xt.view().permuted_axes([2, 1, 0]);
    assert!(!strided.is_standard_layout());
    for input in [x.view(), strided] {
        let mut y = ndarray::Array2::from_elem((2, 4), f32::NAN);
        global_avg_pool1d_into(input.into_dyn(), y.view_mut().into_dyn());
        assert_eq!(y, want);
    }
    let dy = ndarray::Array2::from_shape_fn((2, 4), |(n, d)| (n * 4 + d) as f32);
    let mut dx = ndarray::Array3::from_elem((2, 3, 4), f32::NAN);
    global_avg_pool1d_backward_into(dy.view().into_dyn(), dx.view_mut().into_dyn());
    assert_eq!(
        dx,
        ndarray::Array3::from_shape_fn((2, 3, 4), |(n, _, d)| dy[[n, d]] * (1.0 / 3.0))
    );
}

#[test]
#[should_panic(expected = "global_avg_pool1d backward: gradient [2, 5] for input [2, 3, 4]")]
fn a_sequence_mean_gradient_of_another_shape_is_refused() {
    let mut dx = ndarray::Array3::<f32>::zeros((2, 3, 4));
    let dy = ndarray::Array2::<f32>::zeros((2, 5));
    global_avg_pool1d_backward_into(dy.view().into_dyn(), dx.view_mut().into_dyn());
}
/// The 2 × 2 window's vector kernel gives the scalar loop's maxima and
/// indices bit for bit, over planes of every width from 2 to 41 (odd
/// ones leave a column out) with ties, signed zeros, infinities and
/// NaN, whichever path this CPU takes.
#[test]
fn two_by_two_pooling_is_the_scalar_loop() {
    let window = Window2d {
        stride: (2, 2),
        ..Window2d::new((2, 2))
    };
    let values = [
        1.0f32,
        -1.0,
        0.0,
        -0.0,
        2.5,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    for w in 2..42 {
        let h = 2 + w % 5;
        let (oh, ow) = (h / 2, w / 2);
        let plane: Vec<f32> = (0..h * w)
            .map(|i| values[(i * 7 + i / 3 + w) % 8])
            .collect();
        let (mut y, mut i) = (vec![0.0f32; oh * ow], vec![0usize; oh * ow]);
        let (mut y_ref, mut i_ref) = (vec![0.0f32; oh * ow], vec![0usize; oh * ow]);
        max_pool_plane_dispatch(&plane, (h, w), (oh, ow), &window, &mut y, &mut i);
        max_pool_plane(&plane, (h, w), (oh, ow), &window, &mut y_ref, &mut i_ref);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&y_ref), "width {w}");
        assert_eq!(i, i_ref, "width {w}");
    }
}

/// The general loop's gradient: zeros, then each output's gradient
/// added at its index.
fn scattered(h: usize, w: usize, gs: &[f32], is: &[usize]) -> Vec<u32> {
    let mut dx = vec![0.0f32; h * w];
    for (&g, &i) in gs.iter().zip(is) {
        if i != usize::MAX {
            dx[i] += g;
        }
    }
    dx.iter().map(|v| v.to_bits()).collect()
}

/// The 2 × 2 window's backward gives the general loop's bits (signed
/// zeros and NaN among the gradients) over planes of every width from 2
/// to 41 and odd heights, whichever path this CPU takes; an index outside
/// its window (not one the forward gives) takes the general loop.
#[test]
fn two_by_two_pooling_backward_is_the_general_loop() {
    let window = Window2d {
        stride: (2, 2),
        ..Window2d::new((2, 2))
    };
    let grads = [1.5f32, -0.0, 0.0, -2.0, f32::NAN, 3.25, f32::INFINITY];
    for w in 2..42 {
        let h = 2 + w % 5;
        let (oh, ow) = (h / 2, w / 2);
        let plane: Vec<f32> = (0..h * w).map(|i| ((i * 37 + w) % 11) as f32).collect();
        let (mut y, mut is) = (vec![0.0f32; oh * ow], vec![0usize; oh * ow]);
        max_pool_plane(&plane, (h, w), (oh, ow), &window, &mut y, &mut is);
        let gs: Vec<f32> = (0..oh * ow).map(|k| grads[(k * 5 + w) % 7]).collect();
        let x = Array4::from_shape_vec((1, 1, h, w), plane).unwrap();
        let dy = Array4::from_shape_vec((1, 1, oh, ow), gs.clone()).unwrap();
        let idx = Array4::from_shape_vec((1, 1, oh, ow), is.clone()).unwrap();
        let mut dx = Array4::from_elem((1, 1, h, w), f32::NAN);
        let run = |idx: &Array4<usize>, dx: &mut Array4<f32>| {
            max_pool2d_backward_into(
                dy.view().into_dyn(),
                idx.view().into_dyn(),
                &window,
                dx.view_mut().into_dyn(),
            );
            dx.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(run(&idx, &mut dx), scattered(h, w, &gs, &is), "width {w}");
        assert_eq!(x.shape(), dx.shape());
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::cpu::avx512() {
            // Here the vector kernel is what ran.
            let mut plane = vec![f32::NAN; h * w];
            assert!(two_by_two::backward(
                &window,
                (h, w),
                (oh, ow),
                &gs,
                &is,
                &mut plane
            ));
            let bits: Vec<u32> = plane.iter().map(|v| v.to_bits()).collect();
            assert_eq!(bits, scattered(h, w, &gs, &is), "kernel, width {w}");
        }
        // Indices the forward never gives take the general loop: the last
        // output's gradient sent to the first input, or dropped (`MAX`,
        // padding's index).
        for replaced in [0, usize::MAX] {
            let mut moved = is.clone();
            *moved.last_mut().unwrap() = replaced;
            let idx = Array4::from_shape_vec((1, 1, oh, ow), moved.clone()).unwrap();
            let mut dx = Array4::from_elem((1, 1, h, w), f32::NAN);
            assert_eq!(
                run(&idx, &mut dx),
                scattered(h, w, &gs, &moved),
                "index {replaced}, width {w}"
            );
        }
    }
}

#[test]
#[should_panic(
    expected = "max_pool2d backward: gradient [2, 1, 4, 4] and indices [2, 1, 4, 4] for input [1, 1, 8, 8], whose output is [1, 1, 4, 4]"
)]
fn a_pooling_gradient_of_another_shape_is_refused() {
    let window = Window2d {
        stride: (2, 2),
        ..Window2d::new((2, 2))
    };
    let dy = Array4::<f32>::zeros((2, 1, 4, 4));
    let idx = Array4::<usize>::zeros((2, 1, 4, 4));
    let mut dx = Array4::<f32>::zeros((1, 1, 8, 8));
    max_pool2d_backward_into(
        dy.view().into_dyn(),
        idx.view().into_dyn(),
        &window,
        dx.view_mut().into_dyn(),
    );
}

/// Global average pooling split over planes and summed in lanes: each
/// output is its plane's mean (the formula in `f64`, to `f32` rounding),
/// and the gradient spreads evenly back.
#[test]
fn global_average_pooling_over_many_planes_is_the_mean() {
    let x = Array4::from_shape_fn((16, 16, 17, 19), |(n, c, h, w)| {
        ((n * 31 + c * 17 + h * 7 + w * 3) % 101) as f32 * 0.37 - 9.0
    });
    let y = global_avg_pool(x.view().into_dyn());
    for ((n, c), &got) in y
        .clone()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .indexed_iter()
    {
        let mean = x
            .slice(ndarray::s![n, c, .., ..])
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>()
            / (17.0 * 19.0);
        assert!(
            (got as f64 - mean).abs() <= 1e-5 * mean.abs().max(1.0),
            "{n}, {c}: {got} vs {mean}"
        );
    }
    let dy = y.mapv(|v| v * 2.0);
    let dx = global_avg_pool_backward(dy.view(), x.shape());
    for ((n, c, _, _), &got) in dx
        .into_dimensionality::<ndarray::Ix4>()
        .unwrap()
        .indexed_iter()
    {
        assert_eq!(got, dy[[n, c]] / (17.0 * 19.0));
    }
}

#[test]
fn max_pool_on_many_planes_matches_the_definition() {
    // 1,024 planes, checked against the definition at a few windows.
    let x = Array4::from_shape_fn((128, 8, 32, 32), |(n, c, h, w)| {
        ((n * 31 + c * 17 + h * 7 + w * 3) % 101) as f32
    });
    let window = Window2d::new((2, 2));
    let window = Window2d {
        stride: (2, 2),
        ..window
    };
    let (y, idx) = max_pool2d(x.view().into_dyn(), &window);
    for &(n, c, oy, ox) in &[(0, 0, 0, 0), (127, 7, 15, 15), (63, 3, 8, 2)] {
        let window_max = (0..2)
            .flat_map(|ky| (0..2).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| x[[n, c, 2 * oy + ky, 2 * ox + kx]])
            .fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(y[[n, c, oy, ox]], window_max);
        let i = idx[[n, c, oy, ox]];
        assert_eq!(x[[n, c, i / 32, i % 32]], window_max);
    }
    // The backward over the planes split between the threads: each
    // plane's gradient is the scatter of its outputs'.
    let dy = y.mapv(|v| v * 0.5 - 3.0);
    let dx = max_pool2d_backward(dy.view(), idx.view(), x.shape(), &window);
    let (dy, idx) = (dy.as_slice().unwrap(), idx.as_slice().unwrap());
    for (p, plane) in dx.as_slice().unwrap().chunks(32 * 32).enumerate() {
        let outputs = p * 256..(p + 1) * 256;
        let want = scattered(32, 32, &dy[outputs.clone()], &idx[outputs]);
        let got: Vec<u32> = plane.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want, "plane {p}");
    }
}
