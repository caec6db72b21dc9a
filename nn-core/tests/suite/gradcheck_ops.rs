//! Every op's gradient agrees with central finite differences (f64) at random
//! inputs, through the public `gradcheck`.

use ndarray::{ArrayD, IxDyn};
use nn_core::loss::{self, Reduction};
use nn_core::{gradcheck, GradcheckOptions, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn uniform(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(lo..hi))
}

fn check(name: &str, inputs: &[ArrayD<f64>], f: impl Fn(&[Var<f64>]) -> Var<f64>) {
    let report = gradcheck(f, inputs, &GradcheckOptions::default());
    assert!(report.passed, "{name}: {report}");
    assert!(report.checked > 0, "{name}: nothing compared");
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(20261129)
}

#[test]
fn arithmetic_with_broadcasting() {
    let mut r = rng();
    let a = uniform(&mut r, &[3, 4], -2.0, 2.0);
    let row = uniform(&mut r, &[1, 4], 0.5, 2.0);
    let col = uniform(&mut r, &[3, 1], 0.5, 2.0);
    let vec = uniform(&mut r, &[4], 0.5, 2.0);
    check("add", &[a.clone(), row.clone()], |v| &v[0] + &v[1]);
    check("sub", &[a.clone(), col.clone()], |v| &v[0] - &v[1]);
    check("mul", &[a.clone(), vec.clone()], |v| &v[0] * &v[1]);
    check("div", &[a.clone(), row.clone()], |v| &v[0] / &v[1]);
    check("div_col", &[col.clone(), row.clone()], |v| &v[0] / &v[1]);
    check("neg", std::slice::from_ref(&a), |v| -&v[0]);
    check("scalar_ops", std::slice::from_ref(&a), |v| {
        (&v[0] + 1.5) * 2.0 - 0.25
    });
    check("scalar_div", std::slice::from_ref(&a), |v| &v[0] / 3.0);
    check("scalar_lhs", std::slice::from_ref(&row), |v| {
        2.0 / &v[0] + (1.0 - &v[0]) * 3.0
    });
}

#[test]
fn matrix_products() {
    let mut r = rng();
    let (a, b) = (
        uniform(&mut r, &[3, 4], -1.0, 1.0),
        uniform(&mut r, &[4, 2], -1.0, 1.0),
    );
    check("matmul_2d", &[a.clone(), b.clone()], |v| v[0].matmul(&v[1]));
    let (a3, b3) = (
        uniform(&mut r, &[2, 3, 4], -1.0, 1.0),
        uniform(&mut r, &[2, 4, 2], -1.0, 1.0),
    );
    check("matmul_3d", &[a3.clone(), b3], |v| v[0].matmul(&v[1]));
    check("matmul_3d_2d", &[a3, b.clone()], |v| v[0].matmul(&v[1]));
    let (w, bias) = (
        uniform(&mut r, &[5, 4], -1.0, 1.0),
        uniform(&mut r, &[5], -1.0, 1.0),
    );
    check("linear", &[a.clone(), w.clone(), bias], |v| {
        v[0].linear(&v[1], Some(&v[2]))
    });
    check("linear_no_bias", &[a, w], |v| v[0].linear(&v[1], None));
}

#[test]
fn elementwise_math() {
    let mut r = rng();
    let any = uniform(&mut r, &[3, 4], -2.0, 2.0);
    let pos = uniform(&mut r, &[3, 4], 0.2, 3.0);
    check("exp", std::slice::from_ref(&any), |v| v[0].exp());
    check("log", std::slice::from_ref(&pos), |v| v[0].log());
    check("sqrt", std::slice::from_ref(&pos), |v| v[0].sqrt());
    check("pow_2.5", std::slice::from_ref(&pos), |v| v[0].pow(2.5));
    check("pow_3", std::slice::from_ref(&any), |v| v[0].pow(3.0));
    check("pow_-1", std::slice::from_ref(&pos), |v| v[0].pow(-1.0));
    check("abs", std::slice::from_ref(&any), |v| v[0].abs());
    check("clamp", std::slice::from_ref(&any), |v| {
        v[0].clamp(Some(-1.0), Some(0.5))
    });
    check("clamp_min", std::slice::from_ref(&any), |v| {
        v[0].clamp(Some(0.0), None)
    });
}

#[test]
fn reductions() {
    let mut r = rng();
    let x = uniform(&mut r, &[3, 4, 2], -2.0, 2.0);
    check("sum", std::slice::from_ref(&x), |v| v[0].sum());
    check("mean", std::slice::from_ref(&x), |v| v[0].mean());
    check("max", std::slice::from_ref(&x), |v| v[0].max());
    check("min", std::slice::from_ref(&x), |v| v[0].min());
    for axis in 0..3 {
        for keepdim in [false, true] {
            check("sum_axis", std::slice::from_ref(&x), |v| {
                v[0].sum_axis(axis, keepdim)
            });
            check("mean_axis", std::slice::from_ref(&x), |v| {
                v[0].mean_axis(axis, keepdim)
            });
            check("max_axis", std::slice::from_ref(&x), |v| {
                v[0].max_axis(axis, keepdim)
            });
            check("min_axis", std::slice::from_ref(&x), |v| {
                v[0].min_axis(axis, keepdim)
            });
        }
    }
}

#[test]
fn shape_ops() {
    let mut r = rng();
    let x = uniform(&mut r, &[2, 3, 4], -2.0, 2.0);
    let y = uniform(&mut r, &[2, 1, 4], -2.0, 2.0);
    check("reshape", std::slice::from_ref(&x), |v| {
        v[0].reshape(&[4, 6]).exp()
    });
    check("transpose", std::slice::from_ref(&x), |v| {
        v[0].transpose(0, 2)
    });
    check("permute", std::slice::from_ref(&x), |v| {
        v[0].permute(&[1, 2, 0])
    });
    check("concat", &[x.clone(), y.clone(), x.clone()], |v| {
        Var::concat(&[&v[0], &v[1], &v[2]], 1)
    });
    for axis in 0..=3 {
        check(
            &format!("stack at {axis}"),
            &[x.clone(), x.mapv(|e| e * 0.5)],
            |v| Var::stack(&[&v[0], &v[1], &v[0]], axis),
        );
    }
    check("split", std::slice::from_ref(&x), |v| {
        let parts = v[0].split(&[1, 2], 1);
        &parts[0].exp() + &parts[1].sum_axis(1, true)
    });
    check("chunk", std::slice::from_ref(&x), |v| {
        let parts = v[0].chunk(3, 2);
        Var::concat(&[&parts[1].exp(), &parts[0]], 2)
    });
    check("unsqueeze, squeeze", std::slice::from_ref(&y), |v| {
        v[0].unsqueeze(3).squeeze(1).exp()
    });
    check("slice", std::slice::from_ref(&x), |v| v[0].slice(2, 1..3));
    check("index_select", std::slice::from_ref(&x), |v| {
        v[0].index_select(1, &[2, 0, 2])
    });
    let index = ArrayD::from_shape_vec(
        IxDyn(&[2, 2, 4]),
        vec![0, 1, 2, 0, 2, 2, 1, 0, 1, 1, 0, 2, 0, 0, 0, 1],
    )
    .unwrap();
    check("gather", std::slice::from_ref(&x), |v| {
        v[0].gather(1, index.clone())
    });
    let mask = x.mapv(|e| e > 0.0);
    check("where", &[x.clone(), y.clone()], |v| {
        Var::where_(&mask, &v[0], &v[1])
    });
}

#[test]
fn losses() {
    let mut r = rng();
    let logits = uniform(&mut r, &[4, 5], -3.0, 3.0);
    let labels = [4, 0, 2, 2];
    for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        check("cross_entropy", std::slice::from_ref(&logits), |v| {
            loss::cross_entropy(&v[0], &labels, red)
        });
    }
    // Rows 1 and 3 are padding (PyTorch's ignore_index).
    for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        check(
            "cross_entropy_ignoring",
            std::slice::from_ref(&logits),
            |v| loss::cross_entropy_ignoring(&v[0], &[4, 7, 2, 7], 7, red),
        );
    }
    let target_logits = uniform(&mut r, &[4, 5], -1.0, 1.0);
    // Probabilities via softmax so both arguments stay on the simplex.
    check(
        "categorical_cross_entropy",
        &[logits.clone(), target_logits.clone()],
        |v| loss::categorical_cross_entropy(&v[0].softmax(-1), &v[1].softmax(-1), Reduction::Mean),
    );
    check(
        "kl_divergence",
        &[logits.clone(), target_logits.clone()],
        |v| loss::kl_divergence(&v[0].softmax(-1), &v[1].softmax(-1), Reduction::Mean),
    );
    let p = uniform(&mut r, &[4, 3], 0.05, 0.95);
    let t = uniform(&mut r, &[4, 3], 0.0, 1.0);
    check("binary_cross_entropy", &[p.clone(), t.clone()], |v| {
        loss::binary_cross_entropy(&v[0], &v[1], Reduction::Mean)
    });
    let z = uniform(&mut r, &[4, 3], -4.0, 4.0);
    check(
        "binary_cross_entropy_with_logits",
        &[z.clone(), t.clone()],
        |v| loss::binary_cross_entropy_with_logits(&v[0], &v[1], Reduction::Sum),
    );
    check("mse", &[z.clone(), t.clone()], |v| {
        loss::mse(&v[0], &v[1], Reduction::Mean)
    });
    check("mae", &[z.clone(), t.clone()], |v| {
        loss::mae(&v[0], &v[1], Reduction::None)
    });
    check("huber", &[z, t], |v| {
        loss::huber(&v[0], &v[1], 0.5, Reduction::Mean)
    });
}

#[test]
fn convolution_pooling_with_other_strides_paddings_and_dilations() {
    use nn_core::kernels::conv::{Padding2d, Window2d};
    let mut r = rng();
    let x = uniform(&mut r, &[2, 2, 7, 6], -1.0, 1.0);
    let w = uniform(&mut r, &[3, 2, 3, 2], -1.0, 1.0);
    let b = uniform(&mut r, &[3], -1.0, 1.0);
    let same = Padding2d::same((7, 6), (3, 2), (2, 1), (2, 1));
    let strided = Window2d {
        kernel: (3, 2),
        stride: (2, 1),
        padding: same,
        dilation: (2, 1),
    };
    check(
        "conv2d_same_stride_dilation",
        &[x.clone(), w.clone(), b],
        |v| v[0].conv2d(&v[1], Some(&v[2]), strided),
    );
    let padded = Window2d {
        kernel: (3, 2),
        stride: (1, 2),
        padding: Padding2d::uniform(2),
        dilation: (2, 2),
    };
    check("conv2d_pad2_dilation2", &[x.clone(), w], |v| {
        v[0].conv2d(&v[1], None, padded)
    });
    let pool = Window2d {
        kernel: (3, 3),
        stride: (2, 2),
        padding: Padding2d::uniform(1),
        dilation: (1, 1),
    };
    check("max_pool2d_k3_s2_p1", std::slice::from_ref(&x), |v| {
        v[0].max_pool2d(pool)
    });
    let avg = Window2d {
        kernel: (2, 3),
        stride: (1, 2),
        padding: Padding2d::symmetric(1, 1),
        dilation: (1, 1),
    };
    check("avg_pool2d_k2x3_p1", std::slice::from_ref(&x), |v| {
        v[0].avg_pool2d(avg)
    });
    check("global_avg_pool", std::slice::from_ref(&x), |v| {
        v[0].global_avg_pool()
    });
}

#[test]
fn image_ops_made_of_others() {
    let mut r = rng();
    let x = uniform(&mut r, &[2, 4, 3, 5], -2.0, 2.0);
    let (g, b) = (
        uniform(&mut r, &[4], 0.5, 1.5),
        uniform(&mut r, &[4], -0.5, 0.5),
    );
    check("group_norm", &[x.clone(), g, b], |v| {
        v[0].group_norm(2, &v[1], &v[2], 1e-5)
    });
    check("upsample_nearest2d", std::slice::from_ref(&x), |v| {
        v[0].upsample_nearest2d((2, 3))
    });
    check("pad2d", std::slice::from_ref(&x), |v| {
        v[0].pad2d((1, 0, 2, 1)).exp()
    });
    check("adaptive_avg_pool2d", std::slice::from_ref(&x), |v| {
        v[0].adaptive_avg_pool2d((2, 4))
    });
    let seq = uniform(&mut r, &[2, 3, 8], -2.0, 2.0);
    let (w, b) = (
        uniform(&mut r, &[4, 3, 3], -1.0, 1.0),
        uniform(&mut r, &[4], -0.5, 0.5),
    );
    let window = nn_core::tape::ops::Window1d {
        kernel: 3,
        stride: 2,
        padding: 1,
        dilation: 2,
    };
    check("conv1d", &[seq.clone(), w, b], |v| {
        v[0].conv1d(&v[1], Some(&v[2]), window)
    });
    let window = nn_core::tape::ops::Window1d {
        kernel: 3,
        stride: 2,
        padding: 1,
        dilation: 1,
    };
    check("avg_pool1d", std::slice::from_ref(&seq), |v| {
        v[0].avg_pool1d(window)
    });
    check("max_pool1d", std::slice::from_ref(&seq), |v| {
        v[0].max_pool1d(window)
    });
}

#[test]
fn normalization_and_embedding() {
    let mut r = rng();
    let x2 = uniform(&mut r, &[5, 3], -2.0, 2.0);
    let x4 = uniform(&mut r, &[2, 3, 2, 2], -2.0, 2.0);
    let (g, b) = (
        uniform(&mut r, &[3], 0.5, 1.5),
        uniform(&mut r, &[3], -1.0, 1.0),
    );
    check(
        "batch_norm_train_2d",
        &[x2.clone(), g.clone(), b.clone()],
        |v| v[0].batch_norm_train(&v[1], &v[2], 1e-3).0,
    );
    check(
        "batch_norm_train_4d",
        &[x4.clone(), g.clone(), b.clone()],
        |v| v[0].batch_norm_train(&v[1], &v[2], 1e-5).0,
    );
    let (mean, var) = ([0.1, -0.2, 0.3], [1.5, 0.7, 2.0]);
    check("batch_norm_eval", &[x4.clone(), g, b], |v| {
        v[0].batch_norm_eval(&v[1], &v[2], &mean, &var, 1e-5)
    });
    let (g2, b2) = (
        uniform(&mut r, &[2, 2], 0.5, 1.5),
        uniform(&mut r, &[2, 2], -1.0, 1.0),
    );
    check("layer_norm_last_two_axes", &[x4, g2, b2], |v| {
        v[0].layer_norm(&v[1], &v[2], 2, 1e-5)
    });
    let table = uniform(&mut r, &[6, 4], -1.0, 1.0);
    let index = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![5, 0, 5, 2, 2, 1]).unwrap();
    check("embedding_repeated_indices", &[table], |v| {
        v[0].embedding(&index)
    });
}
