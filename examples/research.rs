//! Research code: your own activation and layer inside `sequential!`, a
//! residual network of parts (`#[derive(Module)]`) run on the tape, a custom
//! loss, and a gradient check of your own function.
//!
//! Run: `cargo run --release --example research`

#[path = "common/cli.rs"]
mod cli;

use nn::activation::Linear;
use nn::init::Initializer;
use nn::kernels::pointwise::Pointwise;
use nn::layers::Dense;
use nn::ndarray::{Array1, ArrayD, ArrayViewD, Axis, IxDyn};
use nn::prelude::*;
use nn::rand::rngs::StdRng;
use nn::rand::SeedableRng;

const USAGE: &str = "\
Custom activations, layers, losses and gradient checks, trained on MNIST.

Usage: cargo run --release --example research -- [flags]

  --samples N   training images to use (default 20000)
  --epochs N    passes over them (default 2)";

/// Your own activation: `x · sigmoid(βx)` with β = 1.5, and its derivative.
#[derive(Clone, Copy, Debug, Default)]
pub struct Swish15;

impl Pointwise for Swish15 {
    fn name(&self) -> &'static str {
        "swish_1.5"
    }
    fn f<T: Float>(&self, x: T) -> T {
        x / (T::one() + (-T::lit(1.5) * x).exp())
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        let s = T::one() / (T::one() + (-T::lit(1.5) * x).exp());
        s + T::lit(1.5) * x * s * (T::one() - s)
    }
}

/// Your own layer: a learned per-feature gain `y = g ⊙ x`, with both paths.
pub struct Gain {
    g: Param<f32>,
    y: ArrayD<f32>,
    dx: ArrayD<f32>,
}

impl Gain {
    pub fn new(features: usize) -> Self {
        Gain {
            g: Param::new(Array1::<f32>::ones(features)),
            y: ArrayD::zeros(IxDyn(&[0])),
            dx: ArrayD::zeros(IxDyn(&[0])),
        }
    }
}

impl Layer<f32> for Gain {
    fn type_name(&self) -> &'static str {
        "Gain"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        if input == [self.g.len()] {
            Ok(input.to_vec())
        } else {
            Err(format!("expects {} features, got {input:?}", self.g.len()))
        }
    }
    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        x * &x.tape().param(&self.g)
    }
    fn forward_train(&mut self, x: ArrayViewD<'_, f32>) -> ArrayViewD<'_, f32> {
        nn::layers::ensure_shape(&mut self.y, x.shape());
        self.y.assign(&(&x * &*self.g.value()));
        self.y.view()
    }
    fn output(&self) -> ArrayViewD<'_, f32> {
        self.y.view()
    }
    fn backward(
        &mut self,
        x: ArrayViewD<'_, f32>,
        dy: ArrayViewD<'_, f32>,
        need_input_grad: bool,
    ) -> ArrayViewD<'_, f32> {
        *nn::layers::grad_buffer(&self.g) += &(&dy * &x).sum_axis(Axis(0));
        if need_input_grad {
            nn::layers::ensure_shape(&mut self.dx, x.shape());
            self.dx.assign(&(&dy * &*self.g.value()));
        }
        self.dx.view()
    }
    fn predict(&self, x: ArrayViewD<'_, f32>) -> ArrayD<f32> {
        &x * &*self.g.value()
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f32>)) {
        f("g", &self.g);
    }
}

sequential! {
    /// Built-in layers, your layer and your activation, side by side.
    pub struct Custom: input(784) {
        Dense(256, activation = Swish15),
        gain: Gain(256),
        Dense(10, activation = "softmax"),
    }
}

/// A residual MLP on the tape, `h + f(h)`, as a struct of parts: the derive
/// names its parameters by field (`stem.weight`, `blocks.1.bias`, as PyTorch
/// would), and `forward` is all the code there is.
#[derive(Module)]
struct ResidualMlp {
    stem: Dense<f32, 784, 128>,
    blocks: Vec<Dense<f32, 128, 128>>,
    head: Dense<f32, 128, 10>,
}

/// A dense layer with He-normal weights and zero biases.
fn he<const IN: usize, const OUT: usize>(rng: &mut StdRng) -> Dense<f32, IN, OUT> {
    Dense::new(Linear, true, Initializer::HeNormal, Initializer::Zeros, rng)
}

impl ResidualMlp {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        ResidualMlp {
            stem: he(&mut rng),
            blocks: vec![he(&mut rng), he(&mut rng)],
            head: he(&mut rng),
        }
    }

    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        let mut h = self.stem.forward(x).relu();
        for block in &self.blocks {
            h = &h + &block.forward(&h).relu();
        }
        self.head.forward(&h)
    }
}

/// A custom loss on the tape: cross-entropy with label smoothing ε,
/// `-Σ_k q_k log p_k` with `q = (1 - ε)·onehot + ε/K`.
fn smoothed_cross_entropy(logits: &Var<f32>, labels: &[usize], eps: f32) -> Var<f32> {
    let (n, k) = (labels.len(), logits.shape()[1]);
    let q = ArrayD::from_shape_fn(IxDyn(&[n, k]), |i| {
        eps / k as f32 + if labels[i[0]] == i[1] { 1.0 - eps } else { 0.0 }
    });
    let logp = logits.log_softmax(-1);
    -(&logp * &logits.tape().constant(q))
        .sum_axis(1, false)
        .mean()
}

fn main() {
    let args = cli::Args::parse(USAGE);
    let samples = args.positive("samples", 20_000, "training needs data");
    let epochs: usize = args.get("epochs", 2);
    let mnist = Mnist::load_default().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let train = mnist.train.reshaped(&[784]).slice(0..samples.min(60_000));
    let test = mnist.test.reshaped(&[784]);

    // 1. Your activation and layer inside sequential!, trained by fit().
    let mut custom = Custom::with_seed(0);
    println!("{}", custom.summary());
    let mut opt = Adam::new(AdamConfig::default()).expect("valid settings");
    let options = FitOptions {
        epochs,
        batch_size: 64,
        verbosity: Verbosity::Lines,
        ..Default::default()
    };
    fit(&mut custom, &mut opt, &train, options).expect("no files involved");
    let (_, acc) = evaluate(
        &mut custom,
        &test,
        1000,
        Loss::SparseCategoricalCrossEntropy,
    );
    println!("custom activation + layer: test accuracy {acc:.4}\n");

    // 2. A residual network on the tape, with a custom loss, in a hand-written loop.
    let net = ResidualMlp::new(1);
    let mut opt = Adam::new(AdamConfig::default()).expect("valid settings");
    for epoch in 1..=epochs {
        let mut batches = train.batches(64, Some(epoch as u64), false);
        let (mut total, mut count) = (0.0, 0);
        while let Some((x, y)) = batches.next_batch() {
            let tape = Tape::new();
            let y = y.labels();
            let loss = smoothed_cross_entropy(&net.forward(&tape.constant(x.to_owned())), y, 0.1);
            loss.backward();
            opt.step(&net);
            opt.zero_grad(&net);
            total += loss.item() as f64 * y.len() as f64;
            count += y.len();
        }
        println!(
            "residual epoch {epoch}: smoothed loss {:.4}",
            total / count as f64
        );
    }
    let mut net = net;
    let (_, acc) = evaluate(&mut net, &test, 1000, Loss::CrossEntropy);
    println!("residual MLP on the tape: test accuracy {acc:.4}\n");

    // 3. Gradient check of your own function (and of the custom activation).
    let report = gradcheck(
        |v| {
            let z = v[0].matmul(&v[1]).apply(Swish15);
            (&z * &z.sigmoid()).sum_axis(1, false).softplus().mean()
        },
        &[
            ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] as f64 - i[1] as f64) * 0.3),
            ArrayD::from_shape_fn(IxDyn(&[4, 2]), |i| (i[0] * 2 + i[1]) as f64 * 0.1 - 0.35),
        ],
        &GradcheckOptions::default(),
    );
    println!("{report}");
    if !report.passed {
        std::process::exit(1);
    }
}
