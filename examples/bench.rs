//! The reference workloads of `../shared/bench/torch_anchor.py`, same data,
//! models, initialization (PyTorch's defaults: `torch_default`) and
//! hyperparameters, one JSON line each, for side-by-side ratios.
//!
//! Run: `cargo run --release --example bench -- [mlp] [mlp_big] [cnn] [small_batch] [gemm] [convnet] [resnet] [residual_tape] [lstm] [vit]`
//! (no argument: the first five, torch_anchor's defaults). `NN_NUM_THREADS` sets the thread count (default: all cores).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use nn::activation::{linear, relu, Relu};
use nn::distributed::Collective;
use nn::init::Initializer::TorchDefault;
use nn::layers::Dense;
use nn::ndarray::{Array2, ArrayD, IxDyn};
use nn::prelude::*;
use nn::train::{Callback, Context, Control, EpochLogs, Fit, TrainError};

sequential! {
    /// torch_anchor's `mlp`: Flatten, Linear(784, 128), ReLU, Linear(128, 10).
    pub struct Mlp: input(784) {
        Dense(128, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `mlp_big`.
    pub struct MlpBig: input(784) {
        Dense(512, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        Dropout(0.2),
        Dense(512, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        Dropout(0.2),
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `cnn` (LeNet-5).
    pub struct Cnn: input(1, 28, 28) {
        Conv2d(6, kernel = 5, padding = 2, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        MaxPool2d(2),
        Conv2d(16, kernel = 5, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        MaxPool2d(2),
        Flatten,
        Dense(120, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        Dense(84, activation = relu, kernel_init = torch_default, bias_init = torch_default),
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `small_batch` model: 64-64-64-10 with tanh.
    pub struct Small: input(64) {
        Dense(64, activation = tanh, kernel_init = torch_default, bias_init = torch_default),
        Dense(64, activation = tanh, kernel_init = torch_default, bias_init = torch_default),
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `resnet`: a 16-channel stem, two conv-BN residual
    /// blocks, global average pooling.
    pub struct ResNet: input(1, 28, 28) {
        Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu), MaxPool2d(2),
        Residual(activation = relu) {
            Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu),
            Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm,
        },
        Residual(activation = relu) {
            Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu),
            Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm,
        },
        GlobalAvgPool,
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `convnet`: a plain chain of 16-channel 3×3 convolutions
    /// with batch norm, as research CNNs are.
    pub struct ConvNet: input(1, 28, 28) {
        Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu), MaxPool2d(2),
        Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu),
        Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu),
        Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu),
        Conv2d(16, kernel = 3, padding = 1, kernel_init = torch_default, bias_init = torch_default), BatchNorm(activation = relu),
        GlobalAvgPool,
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `lstm`: each image as 28 steps of 28 pixels, an LSTM of
    /// 128 units whose last output classifies.
    pub struct RowLstm: input(28, 28) {
        LSTM(128),
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

sequential! {
    /// torch_anchor's `vit`: 16 patches of 7×7 embedded to 64, a learned
    /// position embedding, two pre-norm encoder layers (4 heads, feed-forward
    /// 128, gelu, no dropout), mean-pooled, normalized, classified.
    pub struct TinyVit: input(28, 28) {
        Patches(7),
        Dense(64, kernel_init = torch_default, bias_init = torch_default),
        PositionalEmbedding,
        TransformerEncoder(heads = 4, dim_feedforward = 128, dropout = 0.0, activation = gelu, norm_first = true),
        TransformerEncoder(heads = 4, dim_feedforward = 128, dropout = 0.0, activation = gelu, norm_first = true),
        GlobalAvgPool1d,
        LayerNorm,
        Dense(10, kernel_init = torch_default, bias_init = torch_default),
    }
}

/// torch_anchor's `residual_tape`: research code in eager style on the tape,
/// `h + relu(W h + b)` twice, as a derived module.
#[derive(Module)]
pub struct ResidualMlp {
    stem: Dense<f32, 784, 128, Relu>,
    block1: Dense<f32, 128, 128, Relu>,
    block2: Dense<f32, 128, 128, Relu>,
    head: Dense<f32, 128, 10>,
}

impl ResidualMlp {
    fn new(seed: u64) -> Self {
        let mut rng = <nn::rand::rngs::StdRng as nn::rand::SeedableRng>::seed_from_u64(seed);
        ResidualMlp {
            stem: Dense::new(relu, true, TorchDefault, TorchDefault, &mut rng),
            block1: Dense::new(relu, true, TorchDefault, TorchDefault, &mut rng),
            block2: Dense::new(relu, true, TorchDefault, TorchDefault, &mut rng),
            head: Dense::new(linear, true, TorchDefault, TorchDefault, &mut rng),
        }
    }

    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        let h = self.stem.forward(x);
        let h = &h + &self.block1.forward(&h);
        let h = &h + &self.block2.forward(&h);
        self.head.forward(&h)
    }
}

/// The machine's limit: the best `f32` GEMM rate in FLOP/s over square
/// products of 512 and 1024, measured once per run.
fn machine_rate() -> f64 {
    static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *RATE.get_or_init(|| gemm_gflops(512).max(gemm_gflops(1024)) * 1e9)
}

/// Minor page faults of this process so far (Linux's `/proc/self/stat`;
/// `None` elsewhere).
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name: state, ppid, pgrp, session, tty,
    // tpgid, flags, minflt.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(7)?
        .parse()
        .ok()
}

/// GEMM FLOPs and minor page faults read at the start of training and after
/// each epoch, so the last epoch's can be reported (warm when there were
/// several; a one-epoch workload's include the first step's allocations).
#[derive(Clone, Default)]
struct Marks(Rc<RefCell<Vec<Mark>>>);

/// GEMM FLOPs and minor page faults so far.
type Mark = (u64, Option<u64>);

impl Marks {
    fn mark(&self) {
        let flops = nn::kernels::gemm::flops_so_far();
        self.0.borrow_mut().push((flops, minor_faults()));
    }

    /// The last epoch's GEMM FLOPs and minor page faults.
    fn last_epoch(&self) -> Mark {
        let marks = self.0.borrow();
        let [.., (f0, p0), (f1, p1)] = marks[..] else {
            return (0, None);
        };
        (f1 - f0, p0.zip(p1).map(|(a, b)| b - a))
    }
}

impl Callback<f32> for Marks {
    fn on_train_begin(&mut self, _ctx: &mut Context<'_, f32>) -> Result<(), TrainError> {
        self.mark();
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _logs: &EpochLogs,
        _ctx: &mut Context<'_, f32>,
    ) -> Result<Control, TrainError> {
        self.mark();
        Ok(Control::Continue)
    }
}

/// `, "gflop": …, "limit_fraction": …, "minflt_per_step": …` for work of
/// `flops` FLOPs that took `seconds` in `steps` steps: the fraction is the
/// least time at [`machine_rate`] over the time taken.
fn limits(flops: u64, faults: Option<u64>, seconds: f64, steps: usize) -> String {
    let limit = flops as f64 / machine_rate();
    let faults = faults.map_or("null".into(), |f| format!("{:.1}", f as f64 / steps as f64));
    format!(
        ", \"gflop\": {:.3}, \"limit_fraction\": {:.3}, \"minflt_per_step\": {faults}",
        flops as f64 / 1e9,
        limit / seconds
    )
}

fn threads() -> usize {
    nn::threads()
}

fn framework() -> String {
    format!("nn {}", env!("CARGO_PKG_VERSION"))
}

/// Trains `epochs` epochs like torch_anchor's `run`: Adam lr 1e-3, batch 128,
/// per-epoch shuffle, cross-entropy on logits; times each epoch's training pass.
fn run<M: Fit<f32>>(name: &str, model: M, shape: &[usize], epochs: usize, ranks: Option<&Timed>) {
    run_batch(name, model, shape, epochs, 128, ranks)
}

/// The seed of the models' weights and of the data order: `--seed N`, 0 by
/// default as in torch_anchor (a spread of seeds shows how far one epoch's
/// accuracy moves by chance).
fn seed() -> u64 {
    flag("--seed", 0, "a whole number")
}

/// The value after `name` on the command line, or `default`; exits with
/// `error: {name} takes {what}` when it does not parse.
fn flag<T: std::str::FromStr>(name: &str, default: T, what: &str) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("error: {name} takes {what}");
                std::process::exit(2)
            }),
    }
}

/// [`run`] with another batch size; with `ranks`, as one rank of a
/// data-parallel run sharing each batch (the JSON line adds the ranks, the
/// samples per second over all of them, and the seconds spent in the
/// gradient all-reduce).
fn run_batch<M: Fit<f32>>(
    name: &str,
    mut model: M,
    shape: &[usize],
    epochs: usize,
    batch: usize,
    ranks: Option<&Timed>,
) {
    // The GEMM rate first: its 1024² matrices are freed before the data
    // arrives, so they do not count in the run's peak memory.
    machine_rate();
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let (train, test) = (mnist.train.reshaped(shape), mnist.test.reshaped(shape));
    let mut opt = Adam::new(AdamConfig::default()).expect("valid settings");
    let size = ranks.map_or(1, |r| r.size());
    let marks = Marks::default();
    let history = fit(
        &mut model,
        &mut opt,
        &train,
        FitOptions {
            epochs,
            batch_size: if whole_batch_per_rank() {
                batch
            } else {
                batch / size
            },
            loss: Loss::CrossEntropy.into(),
            verbosity: Verbosity::Silent,
            distributed: ranks.map(|r| r as &dyn Collective),
            bucket_mb: flag(
                "--bucket-mb",
                FitOptions::<f32>::default().bucket_mb,
                "megabytes",
            ),
            shard_optimizer: std::env::args().any(|a| a == "--shard-optimizer"),
            callbacks: vec![Box::new(marks.clone())],
            shuffle_seed: Some(seed()),
            ..Default::default()
        },
    )
    .expect("no files involved");
    let (_, acc) = evaluate(&mut model, &test, 1000, Loss::CrossEntropy);
    let epoch_s: Vec<String> = history
        .epochs
        .iter()
        .map(|e| format!("{:.3}", e.seconds))
        .collect();
    let last = history.epochs.last().expect("an epoch ran");
    let (flops, faults) = marks.last_epoch();
    let limit = limits(flops, faults, last.seconds, train.len().div_ceil(batch));
    let parallel = match ranks {
        None => String::new(),
        Some(r) => {
            format!(
                ", \"ranks\": {size}, \"global_batch\": {}, \"samples_per_s\": {:.0}, \"allreduce_s\": {:.3}",
                if whole_batch_per_rank() { batch * size } else { batch },
                last.samples_per_sec,
                r.seconds() / epochs as f64
            )
        }
    };
    if ranks.is_none_or(|r| r.is_root()) {
        println!(
            "{{\"framework\": \"{}\", \"workload\": \"{name}\", \"batch\": {batch}, \"epochs\": {epochs}, \"epoch_s\": [{}], \"test_acc\": {acc:.4}, \"threads\": {}{limit}{parallel}}}",
            framework(),
            epoch_s.join(", "),
            threads()
        );
    }
}

/// `--whole-batch-per-rank`: each rank of a distributed run takes the
/// workload's whole batch (the global batch grows with the ranks, as DDP's
/// scaling runs have it) rather than its share of one batch.
fn whole_batch_per_rank() -> bool {
    std::env::args().any(|a| a == "--whole-batch-per-rank")
}

/// A [`Collective`] that times its sums (the gradient all-reduce).
struct Timed {
    inner: Box<dyn Collective>,
    spent: std::cell::Cell<f64>,
}

impl Timed {
    fn seconds(&self) -> f64 {
        self.spent.get()
    }

    fn timed<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.spent.set(self.spent.get() + t.elapsed().as_secs_f64());
        r
    }
}

impl Collective for Timed {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn sum_f32(&self, buf: &mut [f32]) {
        self.timed(|| self.inner.sum_f32(buf))
    }
    fn sum_f64(&self, buf: &mut [f64]) {
        self.timed(|| self.inner.sum_f64(buf))
    }
    unsafe fn start_sum_f32(&self, send: *const f32, recv: *mut f32, len: usize) {
        // SAFETY: the caller's promise, passed on.
        self.timed(|| unsafe { self.inner.start_sum_f32(send, recv, len) })
    }
    unsafe fn start_sum_f64(&self, send: *const f64, recv: *mut f64, len: usize) {
        // SAFETY: the caller's promise, passed on.
        self.timed(|| unsafe { self.inner.start_sum_f64(send, recv, len) })
    }
    unsafe fn start_reduce_scatter_f32(&self, send: *const f32, recv: *mut f32, counts: &[usize]) {
        // SAFETY: the caller's promise, passed on.
        self.timed(|| unsafe { self.inner.start_reduce_scatter_f32(send, recv, counts) })
    }
    unsafe fn start_reduce_scatter_f64(&self, send: *const f64, recv: *mut f64, counts: &[usize]) {
        // SAFETY: the caller's promise, passed on.
        self.timed(|| unsafe { self.inner.start_reduce_scatter_f64(send, recv, counts) })
    }
    fn exchange_shares_f32(&self, pieces: &mut [&mut [f32]]) {
        self.timed(|| self.inner.exchange_shares_f32(pieces))
    }
    fn exchange_shares_f64(&self, pieces: &mut [&mut [f64]]) {
        self.timed(|| self.inner.exchange_shares_f64(pieces))
    }
    fn progress_sums(&self) {
        self.timed(|| self.inner.progress_sums())
    }
    fn wait_sums(&self) {
        self.timed(|| self.inner.wait_sums())
    }
    fn broadcast_f32(&self, buf: &mut [f32]) {
        self.inner.broadcast_f32(buf)
    }
    fn broadcast_f64(&self, buf: &mut [f64]) {
        self.inner.broadcast_f64(buf)
    }
}

/// This process as a rank of its `mpirun` launch (`--distributed`).
fn join() -> Timed {
    Timed {
        inner: mpi_rank(),
        spent: std::cell::Cell::new(0.0),
    }
}

#[cfg(feature = "mpi")]
fn mpi_rank() -> Box<dyn Collective> {
    Box::new(nn::distributed::Mpi::init().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    }))
}

#[cfg(not(feature = "mpi"))]
fn mpi_rank() -> Box<dyn Collective> {
    eprintln!("error: --distributed needs the mpi feature (cargo build --release --features mpi --example bench)");
    std::process::exit(2)
}

/// torch_anchor's `small_batch`: SGD lr 0.01 momentum 0.9, batch 16, 100 warm-up
/// steps then 3000 timed, each step exactly what `fit` does per batch.
fn small_batch() {
    let (steps, bs) = (3000, 16);
    let mut model = Small::with_seed(seed());
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        ..Default::default()
    })
    .expect("valid settings");
    let x = ArrayD::from_shape_fn(IxDyn(&[bs, 64]), |i| {
        ((i[0] * 64 + i[1]) % 17) as f32 / 8.0 - 1.0
    });
    let y: Vec<usize> = (0..bs).map(|i| (i * 7) % 10).collect();
    let loss = Loss::CrossEntropy.into();
    let mut step = |model: &mut Small| {
        model.train_batch(x.view(), &Target::Labels(&y), &loss, &mut |_| {});
        opt.step(&*model);
        opt.zero_grad(&*model);
    };
    machine_rate();
    for _ in 0..100 {
        step(&mut model);
    }
    let (flops, faults) = (nn::kernels::gemm::flops_so_far(), minor_faults());
    let t = Instant::now();
    for _ in 0..steps {
        step(&mut model);
    }
    let seconds = t.elapsed().as_secs_f64();
    let flops = (nn::kernels::gemm::flops_so_far() - flops) / steps as u64;
    let faults = faults.zip(minor_faults()).map(|(a, b)| b - a);
    let limit = limits(flops, faults, seconds / steps as f64, steps);
    let us = seconds / steps as f64 * 1e6;
    println!(
        "{{\"framework\": \"{}\", \"workload\": \"small_batch\", \"batch\": {bs}, \"steps\": {steps}, \"us_per_step\": {us:.1}, \"threads\": {}{limit}}}",
        framework(),
        threads()
    );
}

/// f32 GEMM throughput of `n × n` products in GFLOP/s, through the kernels
/// the layers use (as torch_anchor times `torch.mm`).
fn gemm_gflops(n: usize) -> f64 {
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 31 + j * 17) % 13) as f32 / 13.0);
    let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0);
    let mut c = Array2::<f32>::zeros((n, n));
    let flop = 2.0 * (n as f64).powi(3);
    let reps = ((2e10 / flop) as usize).clamp(3, 200);
    // One untimed round first: the second core's first tens of products
    // after start-up ran 10-20 % slower (256³: 271-305 GFLOP/s, then 337).
    for _ in 0..reps {
        nn::kernels::gemm::gemm(1.0, &a, &b, 0.0, &mut c);
    }
    let t = Instant::now();
    for _ in 0..reps {
        nn::kernels::gemm::gemm(1.0, &a, &b, 0.0, &mut c);
    }
    flop * reps as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// f32 GEMM throughput at square sizes.
fn gemm() {
    let mut parts = Vec::new();
    for n in [256usize, 512, 1024, 2048] {
        parts.push(format!("\"{n}\": {:.1}", gemm_gflops(n)));
    }
    println!(
        "{{\"framework\": \"{}\", \"workload\": \"gemm\", \"gflops\": {{{}}}, \"threads\": {}}}",
        framework(),
        parts.join(", "),
        threads()
    );
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("Usage: cargo run --release --example bench -- [mlp] [mlp_big] [cnn] [small_batch] [gemm] [convnet] [resnet] [residual_tape] [lstm] [vit] [--distributed [--whole-batch-per-rank] [--bucket-mb MB] [--shard-optimizer]] [--seed N]\n\nOne JSON line per workload, with the keys of ../shared/bench/torch_anchor.py.\nNN_NUM_THREADS sets the thread count (default: all cores).\n--distributed: under mpirun (built with --features mpi), the training workloads\nrun data-parallel, each batch of 128 shared out over the ranks\n(--whole-batch-per-rank: 128 on every rank), gradients summed in buckets of\n--bucket-mb MiB (default 1; inf: one sum after backward);\n--shard-optimizer: each rank updates its share of the weights (ZeRO).\n--seed N: the seed of the weights and the data order (default 0).");
        return;
    }
    let ranks = args.iter().any(|a| a == "--distributed").then(join);
    args.retain(|a| {
        a != "--distributed" && a != "--whole-batch-per-rank" && a != "--shard-optimizer"
    });
    let seed = seed();
    for name in ["--seed", "--bucket-mb"] {
        if let Some(i) = args.iter().position(|a| a == name) {
            args.drain(i..(i + 2).min(args.len()));
        }
    }
    let ranks = ranks.as_ref();
    let which: Vec<&str> = if args.is_empty() {
        vec!["mlp", "mlp_big", "cnn", "small_batch", "gemm"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    for w in which {
        match w {
            "mlp" => run("mlp", Mlp::with_seed(seed), &[784], 3, ranks),
            "mlp_big" => run("mlp_big", MlpBig::with_seed(seed), &[784], 2, ranks),
            "cnn" => run("cnn", Cnn::with_seed(seed), &[1, 28, 28], 2, ranks),
            "convnet" => run("convnet", ConvNet::with_seed(seed), &[1, 28, 28], 1, ranks),
            "resnet" => run("resnet", ResNet::with_seed(seed), &[1, 28, 28], 1, ranks),
            "residual_tape" => run_batch(
                "residual_tape",
                ResidualMlp::new(seed),
                &[784],
                2,
                64,
                ranks,
            ),
            "lstm" => run("lstm", RowLstm::with_seed(seed), &[28, 28], 1, ranks),
            "vit" => run("vit", TinyVit::with_seed(seed), &[28, 28], 1, ranks),
            "small_batch" => small_batch(),
            "gemm" => gemm(),
            other => {
                eprintln!(
                    "error: unknown workload `{other}` (mlp, mlp_big, cnn, small_batch, gemm, convnet, resnet, residual_tape, lstm, vit)"
                );
                std::process::exit(2)
            }
        }
    }
}
