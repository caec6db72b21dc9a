//! The kernels that dominate training time: f32 GEMM and 2-D convolution
//! (LeNet-5's first layer at batch 128), forward and backward.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::{Array2, ArrayD, IxDyn};
use nn_core::kernels::conv::{conv2d, conv2d_backward, ConvScratch, Padding2d, Window2d};
use nn_core::kernels::gemm::gemm;

fn gemm_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_f32");
    for n in [128usize, 512, 1024] {
        let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 31 + j * 17) % 13) as f32 / 13.0);
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0);
        let mut out = Array2::<f32>::zeros((n, n));
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_function(format!("{n}x{n}x{n}"), |bench| {
            bench.iter(|| gemm(1.0, &a, &b, 0.0, &mut out))
        });
    }
    g.finish();
}

fn conv_bench(c: &mut Criterion) {
    let x = ArrayD::from_shape_fn(IxDyn(&[128, 1, 28, 28]), |i| {
        (i[2] * 28 + i[3]) as f32 / 784.0
    });
    let w = ArrayD::from_shape_fn(IxDyn(&[6, 1, 5, 5]), |i| {
        (i[0] * 25 + i[2] * 5 + i[3]) as f32 / 150.0 - 0.5
    });
    let window = Window2d {
        kernel: (5, 5),
        stride: (1, 1),
        padding: Padding2d::uniform(2),
        dilation: (1, 1),
    };
    let mut g = c.benchmark_group("conv2d_lenet1_b128");
    g.bench_function("forward", |b| {
        b.iter(|| {
            black_box(conv2d(
                x.view(),
                w.view(),
                None,
                &window,
                &mut ConvScratch::default(),
            ))
        })
    });
    // Backward with the forward's scratch, as the tape and the layers run it.
    let mut scratch = ConvScratch::default();
    let y = conv2d(x.view(), w.view(), None, &window, &mut scratch);
    g.bench_function("backward", |b| {
        b.iter(|| {
            black_box(conv2d_backward(
                x.view(),
                w.view(),
                y.view(),
                &window,
                &mut scratch,
                [true, true, false],
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, gemm_bench, conv_bench);
criterion_main!(benches);
