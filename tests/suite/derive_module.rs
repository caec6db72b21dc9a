//! `#[derive(Module)]`: a hand-written model of parts names its parameters and
//! buffers as PyTorch's `state_dict` does, switches every part between train
//! and eval, and trains with `fit` through the `forward` its author writes.

use nn::activation::Relu;
use nn::init::Initializer;
use nn::layers::{BatchNorm, Dense, Dropout};
use nn::ndarray::{ArrayD, IxDyn};
use nn::prelude::*;
use nn::rand::SeedableRng;

sequential! {
    #[dtype(f64)]
    pub struct Stem: input(4) {
        Dense(6, activation = tanh),
    }
}

/// One residual block: `x + W₂ relu(W₁ x)`.
#[derive(Module)]
pub struct Block {
    up: Dense<f64, 6, 6, Relu>,
    down: Dense<f64, 6, 6>,
}

impl Block {
    fn new(rng: &mut nn::rand::rngs::StdRng) -> Self {
        Block {
            up: Dense::new(
                Relu::default(),
                true,
                Initializer::GlorotUniform,
                Initializer::Zeros,
                rng,
            ),
            down: Dense::new(
                Default::default(),
                true,
                Initializer::GlorotUniform,
                Initializer::Zeros,
                rng,
            ),
        }
    }

    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        x + &self.down.forward(&self.up.forward(x))
    }
}

/// A stem (a `sequential!` model), a list of blocks, an optional head, a
/// bare parameter, a BatchNorm (buffers), dropout, and plain data.
#[derive(Module)]
#[module(dtype = f64)]
pub struct Net {
    stem: Stem,
    blocks: Vec<Block>,
    norm: BatchNorm<f64, 6>,
    drop: Dropout<f64>,
    head: Option<Dense<f64, 6, 3>>,
    temperature: Param<f64>,
    #[module(skip)]
    label: String,
}

impl Net {
    fn new(seed: u64) -> Self {
        let mut rng = nn::rand::rngs::StdRng::seed_from_u64(seed);
        Net {
            stem: Stem::new(&mut rng),
            blocks: vec![Block::new(&mut rng), Block::new(&mut rng)],
            norm: BatchNorm::new(0.1, 1e-5),
            drop: Dropout::new(0.5, &mut rng),
            head: Some(Dense::new(
                Default::default(),
                true,
                Initializer::GlorotUniform,
                Initializer::Zeros,
                &mut rng,
            )),
            temperature: Param::new(ArrayD::from_elem(IxDyn(&[1]), 1.0)),
            label: "net".into(),
        }
    }

    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        let mut h = self.stem.forward(x);
        for block in &self.blocks {
            h = block.forward(&h);
        }
        let h = self.drop.forward(&self.norm.forward(&h));
        let logits = self.head.as_ref().map_or(h.clone(), |d| d.forward(&h));
        &logits / &x.tape().param(&self.temperature)
    }
}

fn names(visit: impl FnOnce(&mut dyn FnMut(&str, &Param<f64>))) -> Vec<String> {
    let mut out = Vec::new();
    visit(&mut |n, _| out.push(n.to_string()));
    out
}

#[test]
fn parameters_and_buffers_are_named_as_pytorch_names_them() {
    let net = Net::new(0);
    assert_eq!(net.label, "net");
    // The names PyTorch's state_dict gives the same module tree: attribute
    // names joined by dots, list items by index (nn.ModuleList), a bare
    // nn.Parameter by its attribute, listed first: a module's own parameters
    // come before its children's (see tests/suite/derive_module_torch.rs, checked
    // against a state_dict PyTorch wrote).
    assert_eq!(
        names(|f| Parameters::visit_params(&net, f)),
        [
            "temperature",
            "stem.dense.weight",
            "stem.dense.bias",
            "blocks.0.up.weight",
            "blocks.0.up.bias",
            "blocks.0.down.weight",
            "blocks.0.down.bias",
            "blocks.1.up.weight",
            "blocks.1.up.bias",
            "blocks.1.down.weight",
            "blocks.1.down.bias",
            "norm.weight",
            "norm.bias",
            "head.weight",
            "head.bias",
        ]
    );
    assert_eq!(
        names(|f| Parameters::visit_buffers(&net, f)),
        ["norm.running_mean", "norm.running_var"]
    );
}

#[test]
fn train_and_eval_reach_every_part() {
    let mut net = Net::new(1);
    let x = ArrayD::from_shape_fn(IxDyn(&[8, 4]), |i| {
        ((i[0] * 3 + i[1]) % 5) as f64 / 2.0 - 1.0
    });
    let run = |net: &Net| {
        let tape = Tape::new();
        net.forward(&tape.constant(x.clone())).value()
    };
    net.set_training(false);
    // Evaluation: dropout off, running statistics: deterministic.
    assert_eq!(run(&net), run(&net));
    net.set_training(true);
    // Training: dropout draws a new mask each pass.
    assert_ne!(run(&net), run(&net));
}

#[test]
fn trains_with_fit_as_it_is() {
    let mut net = Net::new(2);
    let x = ArrayD::from_shape_fn(IxDyn(&[32, 4]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f64 / 5.0 - 1.0
    });
    let labels: Vec<usize> = (0..32).map(|i| i % 3).collect();
    let data = Dataset::new(x, labels);
    let mut adam = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    })
    .unwrap();
    let before = net.blocks[0].up.weight.value().clone();
    let history = fit(
        &mut net,
        &mut adam,
        &data,
        FitOptions {
            epochs: 5,
            batch_size: 8,
            // The head gives logits, as a PyTorch model's does.
            loss: Loss::CrossEntropy.into(),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(
        *net.blocks[0].up.weight.value(),
        before,
        "the optimizer reached the blocks"
    );
    let losses: Vec<f64> = history.metric("loss").into_iter().flatten().collect();
    assert_eq!(losses.len(), 5);
    assert!(losses[4] < losses[0], "loss went down: {losses:?}");
}

#[test]
fn saves_and_loads_by_name() {
    // No trait imported: `save`, `load` and `named_state` are inherent.
    let trained = Net::new(3);
    let dir = std::env::temp_dir().join(format!("nn-derive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    trained.save(&path).unwrap();
    let names = nn::io::tensor_shapes(&path).unwrap();
    assert!(names.contains_key("blocks.1.down.weight"));
    assert!(names.contains_key("norm.running_var"));
    assert!(names.contains_key("temperature"));

    let mut fresh = Net::new(4);
    assert_ne!(
        *fresh.blocks[1].down.weight.value(),
        *trained.blocks[1].down.weight.value()
    );
    fresh.load(&path).unwrap();
    for ((name, a), (_, b)) in trained.named_state().iter().zip(fresh.named_state().iter()) {
        assert_eq!(*a.value(), *b.value(), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With `Module` imported beside the prelude's `Parameters` and
/// `TapeModel`, the shared method names still resolve (to the inherent
/// ones): a new user's E0034 "multiple applicable items".
#[test]
fn module_methods_are_not_ambiguous_with_every_trait_in_scope() {
    #[allow(unused_imports)]
    use nn::module::Module;
    #[allow(unused_imports)]
    use nn::train::TapeModel;
    let mut net = Net::new(5);
    let mut count = 0;
    net.visit_params(&mut |_, _| count += 1);
    net.visit_buffers(&mut |_, _| count += 1);
    assert_eq!(count, net.named_state().len());
    // Evaluation: dropout off, so two passes agree.
    net.set_training(false);
    let x = ArrayD::from_elem(IxDyn(&[4, 4]), 0.5);
    let run = |net: &Net| net.forward(&Tape::new().constant(x.clone())).value();
    assert_eq!(run(&net), run(&net));
}

sequential! {
    #[dtype(f64)]
    pub struct Chain: input(4) {
        Dense(6, activation = tanh),
        Dense(3),
    }
}

#[test]
fn a_sequential_model_trains_through_its_tape_path_with_fit() {
    // The same model and data, once through the static path and once through
    // the tape (`Taped`): both paths compute the same gradients, so after an
    // epoch of full-batch SGD the parameters agree to rounding.
    use nn::train::Taped;
    let x = ArrayD::from_shape_fn(IxDyn(&[12, 4]), |i| {
        ((i[0] * 5 + i[1] * 3) % 7) as f64 / 3.0 - 1.0
    });
    let labels: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let data = Dataset::new(x, labels);
    let options = || FitOptions {
        epochs: 3,
        batch_size: 12,
        loss: Loss::CrossEntropy.into(),
        verbosity: Verbosity::Silent,
        ..Default::default()
    };
    let sgd = || {
        Sgd::new(SgdConfig {
            lr: 0.1,
            ..Default::default()
        })
        .unwrap()
    };
    let mut fixed = Chain::with_seed(9);
    let mut taped = Taped(Chain::with_seed(9));
    fit(&mut fixed, &mut sgd(), &data, options()).unwrap();
    fit(&mut taped, &mut sgd(), &data, options()).unwrap();
    for ((name, a), (_, b)) in fixed
        .named_params()
        .iter()
        .zip(taped.0.named_params().iter())
    {
        let (a, b) = (a.value(), b.value());
        for (u, v) in a.iter().zip(b.iter()) {
            assert!((u - v).abs() < 1e-12, "{name}: {u} vs {v}");
        }
    }
    assert_ne!(
        *fixed.named_params()[0].1.value(),
        *Chain::with_seed(9).named_params()[0].1.value()
    );
}

/// Written once for any float, as a researcher writes a model to train in
/// `f32` and check in `f64`.
#[derive(Module)]
pub struct Generic<T: Float> {
    hidden: Dense<T, 3, 4, Relu>,
    out: Dense<T, 4, 2>,
    scale: Param<T>,
}

impl<T: Float> Generic<T> {
    fn new(seed: u64) -> Self {
        let mut rng = nn::rand::rngs::StdRng::seed_from_u64(seed);
        Generic {
            hidden: Dense::new(
                Relu::default(),
                true,
                Initializer::GlorotUniform,
                Initializer::Zeros,
                &mut rng,
            ),
            out: Dense::new(
                Default::default(),
                true,
                Initializer::GlorotUniform,
                Initializer::Zeros,
                &mut rng,
            ),
            scale: Param::new(ArrayD::from_elem(IxDyn(&[1]), T::one())),
        }
    }

    fn forward(&self, x: &Var<T>) -> Var<T> {
        &self.out.forward(&self.hidden.forward(x)) * &x.tape().param(&self.scale)
    }
}

#[test]
fn a_struct_generic_over_its_float_derives_for_f32_and_f64() {
    use nn::gradcheck::{gradcheck, GradcheckOptions};
    fn names<T: Float>(m: &dyn Parameters<T>) -> Vec<String> {
        let mut v = Vec::new();
        m.visit_params(&mut |n, _| v.push(n.to_string()));
        v
    }
    let (single, double) = (Generic::<f32>::new(5), Generic::<f64>::new(5));
    let expected = [
        "scale",
        "hidden.weight",
        "hidden.bias",
        "out.weight",
        "out.bias",
    ];
    assert_eq!(names(&single), expected);
    assert_eq!(names(&double), expected);

    // The f64 instance's gradients agree with finite differences…
    let x = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| {
        (i[0] as f64 - 0.4) * (i[1] as f64 + 0.7)
    });
    let report = gradcheck(
        |v| double.forward(&v[0]),
        &[x],
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "{report}");

    // …and the f32 one trains with `fit`.
    let mut single = single;
    let inputs = ArrayD::from_shape_fn(IxDyn(&[16, 3]), |i| {
        ((i[0] * 5 + i[1]) % 7) as f32 / 3.0 - 1.0
    });
    let targets = ArrayD::from_shape_fn(IxDyn(&[16, 2]), |i| inputs[[i[0], i[1]]]);
    let history = fit(
        &mut single,
        &mut Adam::new(AdamConfig {
            lr: 0.02,
            ..Default::default()
        })
        .unwrap(),
        &Dataset::with_values(inputs, targets),
        FitOptions {
            epochs: 8,
            batch_size: 4,
            loss: Loss::Mse.into(),
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    let losses: Vec<f64> = history.metric("loss").into_iter().flatten().collect();
    assert!(losses[7] < losses[0], "loss went down: {losses:?}");
}

/// The float bound in a `where` clause, under a name (`S`) the derive's own
/// code once used.
#[derive(Module)]
pub struct WhereBound<S>
where
    S: Float,
{
    layer: Dense<S, 2, 2>,
}

impl<S: Float> WhereBound<S> {
    fn forward(&self, x: &Var<S>) -> Var<S> {
        self.layer.forward(x)
    }
}

#[test]
fn a_where_clause_bound_derives_for_both_floats_too() {
    fn count<T: Float>(m: &dyn Parameters<T>) -> usize {
        let mut n = 0;
        m.visit_params(&mut |_, p| n += p.value().len());
        n
    }
    let mut rng = nn::rand::rngs::StdRng::seed_from_u64(0);
    let single = WhereBound::<f32> {
        layer: Dense::init(&mut rng),
    };
    let double = WhereBound::<f64> {
        layer: Dense::init(&mut rng),
    };
    assert_eq!((count(&single), count(&double)), (6, 6));
    let tape = Tape::new();
    let y = double.forward(&tape.constant(ArrayD::zeros(IxDyn(&[1, 2]))));
    assert_eq!(y.shape(), [1, 2]);
}

/// A second head used until `both` is switched off (after the first step),
/// so that afterwards its weights hold a gradient buffer but get no gradient.
#[derive(Module)]
#[module(dtype = f64)]
pub struct TwoHeads {
    used: Dense<f64, 4, 3>,
    unused: Dense<f64, 4, 3>,
    #[module(skip)]
    both: std::rc::Rc<std::cell::Cell<bool>>,
}

impl TwoHeads {
    fn forward(&self, x: &Var<f64>) -> Var<f64> {
        match self.both.get() {
            true => &self.used.forward(x) + &self.unused.forward(x),
            false => self.used.forward(x),
        }
    }
}

/// PyTorch's rule inside `fit`: a parameter no backward reached is not
/// stepped, even with AdamW's weight decay, gradient clipping and
/// TensorBoard's gradient histograms reading every gradient.
#[test]
fn fit_leaves_a_parameter_no_backward_reaches_alone() {
    let mut rng = nn::rand::rngs::StdRng::seed_from_u64(0);
    let mut dense = || {
        Dense::new(
            Default::default(),
            true,
            Initializer::GlorotUniform,
            Initializer::Zeros,
            &mut rng,
        )
    };
    let mut model = TwoHeads {
        used: dense(),
        unused: dense(),
        both: std::rc::Rc::new(std::cell::Cell::new(true)),
    };
    let before = (
        model.used.weight.value().clone(),
        model.unused.weight.value().clone(),
    );
    let first = std::rc::Rc::new(std::cell::RefCell::new(None));
    let both = model.both.clone();
    let x = ArrayD::from_shape_fn(IxDyn(&[16, 4]), |i| ((i[0] * 4 + i[1]) % 7) as f64 - 3.0);
    let data = Dataset::new(x, (0..16).map(|i| i % 3).collect());
    let dir = std::env::temp_dir().join(format!("nn-unreached-{}", std::process::id()));
    let mut opt = nn::optim::AdamW::new::<f64>(nn::optim::AdamWConfig {
        lr: 0.01,
        weight_decay: 0.5,
        ..Default::default()
    })
    .unwrap();
    fit(
        &mut model,
        &mut opt,
        &data,
        FitOptions {
            epochs: 2,
            batch_size: 4,
            loss: Loss::CrossEntropy.into(),
            clip_grad_norm: Some(0.1),
            clip_grad_value: Some(0.05),
            callbacks: vec![
                Box::new(nn::train::TensorBoard::new(&dir).histogram_freq(1)),
                Box::new(crate::common::first_step::OffAfterFirstStep {
                    name: "unused.weight",
                    weight: first.clone(),
                    in_use: both,
                }),
            ],
            verbosity: Verbosity::Silent,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(*model.used.weight.value(), before.0);
    let first = first.borrow().clone().unwrap();
    assert_ne!(first, before.1, "the first step moved the second head");
    assert_eq!(*model.unused.weight.value(), first, "later steps did not");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A struct with a `save` of its own keeps it with
/// `#[module(no_inherent)]` (the trait's is still there).
#[derive(Module)]
#[module(dtype = f64, no_inherent, no_forward)]
pub struct Archive {
    table: Dense<f64, 2, 2>,
}

impl Archive {
    fn save(&self) -> usize {
        7
    }
}

#[test]
fn no_inherent_leaves_the_structs_own_methods() {
    let mut rng = nn::rand::rngs::StdRng::seed_from_u64(0);
    let archive = Archive {
        table: Dense::new(
            Default::default(),
            true,
            Initializer::GlorotUniform,
            Initializer::Zeros,
            &mut rng,
        ),
    };
    assert_eq!(archive.save(), 7);
    let names: Vec<String> = nn::module::Module::named_state(&archive)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["table.weight", "table.bias"]);
}
