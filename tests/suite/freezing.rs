//! Freezing (PyTorch's `requires_grad_(False)`, Keras's `trainable = False`):
//! a frozen layer gets no gradient on either path, stays bit-identical through
//! training with every optimizer (weight decay included) and is absent from
//! their state, leaves the other layers' gradients exactly as they were,
//! counts as non-trainable in `summary()`, and trains again once unfrozen.

use nn::ndarray::{Array2, ArrayD, Dimension, IxDyn};
use nn::optim::{
    clip_grad_norm, clip_grad_value, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, Optimizer,
    RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use nn::prelude::*;
use nn_core::{freeze, freeze_layer, unfreeze, unfreeze_layer};

sequential! {
    /// A small classifier.
    pub struct Net: input(6) {
        hidden: Dense(10, activation = relu),
        middle: Dense(8, activation = tanh),
        out: Dense(4),
    }
}

sequential! {
    /// Two convolutions with a normalization between them.
    #[dtype(f64)]
    pub struct Convs: input(1, 6, 6) {
        first: Conv2d(2, kernel = 3, padding = "same", activation = tanh),
        frozen: Conv2d(3, kernel = 3, activation = tanh),
        norm: BatchNorm,
        Flatten,
        out: Dense(2),
    }
}

sequential! {
    /// Token indices through an embedding and a layer normalization.
    #[dtype(f64)]
    pub struct Tokens: input(5) {
        embedding: Embedding(11, 4),
        norm: LayerNorm,
        Flatten,
        out: Dense(3, activation = sigmoid),
    }
}

/// Batch `i` of a fixed synthetic dataset (inputs and labels from a formula).
fn batch(i: usize) -> (Array2<f32>, Vec<usize>) {
    let x = Array2::from_shape_fn((8, 6), |(r, c)| {
        (((i * 8 + r) * 7 + c * 3) % 11) as f32 / 5.0 - 1.0
    });
    let y = (0..8).map(|r| (i * 8 + r) % 4).collect();
    (x, y)
}

fn train_steps(model: &mut Net, opt: &mut dyn Optimizer<f32>, steps: std::ops::Range<usize>) {
    for i in steps {
        let (x, y) = batch(i);
        model.forward_train(x.into_dyn().view());
        model.backward_loss(Loss::CrossEntropy, &Target::Labels(&y));
        opt.step(&*model);
        opt.zero_grad(&*model);
    }
}

fn bits(p: &Param<f32>) -> Vec<u32> {
    p.value().iter().map(|v| v.to_bits()).collect()
}

/// Every optimizer, each with weight decay where it has one.
fn optimizers() -> Vec<(&'static str, Box<dyn Optimizer<f32>>)> {
    vec![
        (
            "Adam",
            Box::new(
                Adam::new(AdamConfig {
                    lr: 1e-2,
                    weight_decay: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
        (
            "AdamW",
            Box::new(AdamW::new(AdamW::default_config()).unwrap()),
        ),
        (
            "Sgd",
            Box::new(
                Sgd::new(SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    weight_decay: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
        (
            "RmsProp",
            Box::new(
                RmsProp::new(RmsPropConfig {
                    weight_decay: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
        (
            "Adagrad",
            Box::new(
                Adagrad::new(AdagradConfig {
                    weight_decay: 0.1,
                    ..Default::default()
                })
                .unwrap(),
            ),
        ),
    ]
}

#[test]
fn a_frozen_layer_stays_bit_identical_and_stateless_while_the_others_train() {
    for (name, mut opt) in optimizers() {
        let mut model = Net::with_seed(3);
        freeze_layer(&model.middle);
        let frozen = [
            model.middle.weight.clone(),
            model.middle.bias.clone().unwrap(),
        ];
        let before: Vec<_> = frozen.iter().map(bits).collect();
        let (hidden, out) = (bits(&model.hidden.weight), bits(&model.out.weight));

        for i in 0..5 {
            let (x, y) = batch(i);
            model.forward_train(x.into_dyn().view());
            model.backward_loss(Loss::CrossEntropy, &Target::Labels(&y));
            for p in &frozen {
                assert!(
                    p.grad().is_none(),
                    "{name}: a frozen gradient on the static path"
                );
            }
            assert!(model.hidden.weight.grad().is_some(), "{name}");
            opt.step(&model);
            opt.zero_grad(&model);
        }

        let after: Vec<_> = frozen.iter().map(bits).collect();
        assert_eq!(after, before, "{name}: the frozen layer changed");
        assert_ne!(
            bits(&model.hidden.weight),
            hidden,
            "{name}: hidden did not train"
        );
        assert_ne!(bits(&model.out.weight), out, "{name}: out did not train");
        let state = opt.state();
        assert!(state.params.contains_key("hidden.weight"), "{name}");
        assert!(
            !state.params.keys().any(|k| k.starts_with("middle.")),
            "{name}: state for a frozen parameter: {:?}",
            state.params.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn optimizers_pass_over_a_frozen_parameter_even_when_it_has_a_gradient() {
    for (name, mut opt) in optimizers() {
        let trainable = Param::new(nn::ndarray::array![1.0f32, -2.0]);
        let frozen = Param::new(nn::ndarray::array![3.0f32, -4.0]);
        let params = vec![("t", trainable.clone()), ("f", frozen.clone())];
        frozen.set_trainable(false);
        // Written by hand (a user's own update, or a custom layer calling
        // `grad_buffer`): no backward pass gives a frozen parameter one.
        for p in [&trainable, &frozen] {
            *p.grad_mut() = Some(nn::ndarray::array![0.5f32, 0.5].into_dyn());
        }
        let before = (bits(&trainable), bits(&frozen));
        opt.step(&params);
        opt.step(&params);
        assert_ne!(
            bits(&trainable),
            before.0,
            "{name}: the trainable one did not move"
        );
        assert_eq!(bits(&frozen), before.1, "{name}: the frozen one moved");
        let state = opt.state();
        assert!(state.params.contains_key("t"), "{name}");
        assert!(
            !state.params.contains_key("f"),
            "{name}: state for a frozen parameter"
        );
    }
}

#[test]
fn unfreezing_resumes_training_from_where_the_layer_was() {
    let mut model = Net::with_seed(4);
    let mut opt = Adam::new(AdamConfig {
        weight_decay: 0.01,
        ..Default::default()
    })
    .unwrap();
    freeze_layer(&model.hidden);
    let kept = bits(&model.hidden.weight);
    train_steps(&mut model, &mut opt, 0..3);
    assert_eq!(bits(&model.hidden.weight), kept);

    unfreeze_layer(&model.hidden);
    train_steps(&mut model, &mut opt, 3..4);
    assert_ne!(bits(&model.hidden.weight), kept);
    // Its state starts with the first step it took.
    assert_eq!(opt.state().params["hidden.weight"].step, 1);
    assert_eq!(opt.state().params["out.weight"].step, 4);
}

#[test]
fn freezing_a_whole_model_and_unfreezing_it() {
    let mut model = Net::with_seed(5);
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    freeze(&model);
    let all: Vec<_> = model.named_params().iter().map(|(_, p)| bits(p)).collect();
    train_steps(&mut model, &mut opt, 0..2);
    let now: Vec<_> = model.named_params().iter().map(|(_, p)| bits(p)).collect();
    assert_eq!(now, all);
    assert_eq!(model.param_count(), 0);

    unfreeze(&model);
    train_steps(&mut model, &mut opt, 2..3);
    for ((name, p), b) in model.named_params().iter().zip(&all) {
        assert_ne!(&bits(p), b, "{name}");
    }
}

#[test]
fn the_tape_records_a_frozen_parameter_as_needing_no_gradient() {
    let model = Net::with_seed(6);
    freeze_layer(&model.middle);
    let tape = Tape::new();
    assert!(!tape.param(&model.middle.weight).requires_grad());
    assert!(tape.param(&model.hidden.weight).requires_grad());

    let (x, y) = batch(0);
    let logits = model.forward(&tape.constant(x.into_dyn()));
    nn::loss::cross_entropy(&logits, &y, nn::loss::Reduction::Mean).backward();
    assert!(model.middle.weight.grad().is_none());
    assert!(model.middle.bias.as_ref().unwrap().grad().is_none());
    // The gradient still flows through the frozen layer to the one before.
    assert!(model.hidden.weight.grad().is_some());
    assert!(model.out.weight.grad().is_some());
}

/// The gradients of `params` (`None` where absent), as bits.
fn grads64(params: &[(String, Param<f64>)]) -> Vec<(String, Option<Vec<u64>>)> {
    params
        .iter()
        .map(|(n, p)| {
            let g = p
                .grad()
                .as_ref()
                .map(|g| g.iter().map(|v| v.to_bits()).collect());
            (n.clone(), g)
        })
        .collect()
}

/// Runs one static step and one tape step of `make()`'s model, with the
/// layers `freeze` names frozen; returns each path's gradients.
fn both_paths<M: Model<f64>>(
    make: impl Fn() -> M,
    freeze_some: impl Fn(&M),
    x: &ArrayD<f64>,
    dy: &ArrayD<f64>,
) -> [Vec<(String, Option<Vec<u64>>)>; 2] {
    let mut static_model = make();
    freeze_some(&static_model);
    static_model.forward_train(x.view());
    static_model.backward(dy.view());

    let tape_model = make();
    freeze_some(&tape_model);
    let tape = Tape::new();
    let y = tape_model.forward(&tape.constant(x.clone()));
    (&y * &tape.constant(dy.clone())).sum().backward();
    [
        grads64(&static_model.named_params()),
        grads64(&tape_model.named_params()),
    ]
}

/// Freezing the named layers leaves their gradients `None` on both paths and
/// every other gradient bit-identical to the unfrozen model's.
fn check_frozen<M: Model<f64>>(
    make: impl Fn() -> M + Copy,
    freeze_some: impl Fn(&M),
    frozen_prefixes: &[&str],
    x: ArrayD<f64>,
    dy: ArrayD<f64>,
) {
    let reference = both_paths(make, |_| {}, &x, &dy);
    let frozen = both_paths(make, freeze_some, &x, &dy);
    for (path, (with, without)) in ["static", "tape"].iter().zip(frozen.iter().zip(&reference)) {
        let mut seen_frozen = 0;
        for ((name, g), (_, g_ref)) in with.iter().zip(without) {
            if frozen_prefixes.iter().any(|p| name.starts_with(p)) {
                assert!(g.is_none(), "{path}: {name} has a gradient");
                seen_frozen += 1;
            } else {
                assert!(g.is_some(), "{path}: {name} has no gradient");
                assert_eq!(g, g_ref, "{path}: {name} changed by freezing another layer");
            }
        }
        assert!(seen_frozen >= frozen_prefixes.len(), "{path}");
    }
}

fn pattern(shape: &[usize], salt: usize) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        let k = i.slice().iter().fold(salt, |a, &d| a * 7 + d);
        (k % 13) as f64 / 6.0 - 1.0
    })
}

#[test]
fn frozen_convolution_and_batch_norm_get_no_gradient_and_change_no_other() {
    check_frozen(
        || Convs::with_seed(7),
        |m: &Convs| {
            freeze_layer(&m.frozen);
            freeze_layer(&m.norm);
        },
        &["frozen.", "norm."],
        pattern(&[3, 1, 6, 6], 1),
        pattern(&[3, 2], 2),
    );
}

#[test]
fn a_frozen_batch_norm_in_evaluation_mode_gets_no_gradient() {
    let mut model = Convs::with_seed(8);
    model.eval();
    freeze_layer(&model.norm);
    let x = pattern(&[2, 1, 6, 6], 3);
    model.forward_train(x.view());
    model.backward(pattern(&[2, 2], 4).view());
    assert!(model.norm.weight.grad().is_none());
    assert!(model.norm.bias.grad().is_none());
    assert!(model.frozen.weight.grad().is_some());
}

#[test]
fn a_frozen_embedding_and_layer_norm_get_no_gradient_and_change_no_other() {
    let tokens = ArrayD::from_shape_fn(IxDyn(&[3, 5]), |i| ((i[0] * 5 + i[1] * 3) % 11) as f64);
    check_frozen(
        || Tokens::with_seed(9),
        |m: &Tokens| {
            freeze_layer(&m.embedding);
            freeze_layer(&m.norm);
        },
        &["embedding.", "norm."],
        tokens.clone(),
        pattern(&[3, 3], 5),
    );
    // Only the layer norm frozen: the embedding before it still learns.
    check_frozen(
        || Tokens::with_seed(9),
        |m: &Tokens| freeze_layer(&m.norm),
        &["norm."],
        tokens,
        pattern(&[3, 3], 5),
    );
}

#[test]
fn summary_counts_frozen_parameters_as_non_trainable() {
    let model = Net::with_seed(1);
    // hidden 6·10 + 10 = 70, middle 10·8 + 8 = 88, out 8·4 + 4 = 36.
    let s = model.summary();
    assert_eq!((s.trainable, s.non_trainable), (194, 0));

    freeze_layer(&model.middle);
    let s = model.summary();
    assert_eq!((s.trainable, s.non_trainable), (106, 88));
    assert_eq!(model.param_count(), 106);
    let text = s.to_string();
    assert!(text.contains(" Total params: 194 "), "{text}");
    assert!(text.contains(" Trainable params: 106 "), "{text}");
    assert!(text.contains(" Non-trainable params: 88 "), "{text}");
    // A frozen layer's row still shows all its parameters, as Keras's does.
    assert_eq!(s.rows[1].params, 88);

    // One parameter alone: the bias of `out`.
    model.out.bias.as_ref().unwrap().set_trainable(false);
    let s = model.summary();
    assert_eq!((s.trainable, s.non_trainable), (102, 92));

    unfreeze(&model);
    let s = model.summary();
    assert_eq!((s.trainable, s.non_trainable), (194, 0));
}

#[test]
fn batch_norm_buffers_stay_non_trainable_and_frozen_parameters_join_them() {
    let model = Convs::with_seed(2);
    // BatchNorm(3): γ and β trainable, running mean and variance buffers.
    assert_eq!(
        (model.norm.param_count(), model.norm.non_trainable_count()),
        (6, 6)
    );
    freeze_layer(&model.norm);
    assert_eq!(
        (model.norm.param_count(), model.norm.non_trainable_count()),
        (0, 12)
    );
}

#[test]
fn gradient_clipping_leaves_frozen_parameters_out() {
    let trainable = Param::new(nn::ndarray::array![3.0f32, 4.0]);
    let frozen = Param::new(nn::ndarray::array![1.0f32]);
    frozen.set_trainable(false);
    *trainable.grad_mut() = Some(nn::ndarray::array![3.0f32, 4.0].into_dyn());
    // Written by hand: no backward pass would give a frozen parameter one.
    *frozen.grad_mut() = Some(nn::ndarray::array![100.0f32].into_dyn());
    let params = vec![("t", trainable.clone()), ("f", frozen.clone())];

    let norm = clip_grad_norm(&params, 1.0);
    assert_eq!(norm, 5.0);
    assert_eq!(frozen.grad().as_ref().unwrap()[[0]], 100.0);
    let g = trainable.grad().clone().unwrap();
    assert!(
        (g[[0]] - 0.6).abs() < 1e-6 && (g[[1]] - 0.8).abs() < 1e-6,
        "{g}"
    );

    clip_grad_value(&params, 0.5);
    assert_eq!(frozen.grad().as_ref().unwrap()[[0]], 100.0);
    assert_eq!(trainable.grad().as_ref().unwrap()[[1]], 0.5);
}

#[test]
fn freezing_drops_the_gradient_and_unfreezing_takes_new_ones() {
    let p = Param::new(nn::ndarray::array![2.0f64]);
    let tape = Tape::new();
    let v = tape.param(&p);
    (&v * &v).sum().backward();
    assert_eq!(p.grad().as_ref().unwrap()[[0]], 4.0);

    p.set_trainable(false);
    assert!(!p.is_trainable());
    assert!(p.grad().is_none());

    p.set_trainable(true);
    let tape = Tape::new();
    let v = tape.param(&p);
    (&v * &v).sum().backward();
    assert_eq!(p.grad().as_ref().unwrap()[[0]], 4.0);
}

/// A user layer without parameters that passes its input through and
/// records each backward call's `need_input_grad`.
pub struct Probe {
    y: ArrayD<f32>,
    dx: ArrayD<f32>,
    pub calls: Vec<bool>,
}

impl Probe {
    pub fn new() -> Self {
        Probe {
            y: ArrayD::zeros(IxDyn(&[0])),
            dx: ArrayD::zeros(IxDyn(&[0])),
            calls: Vec::new(),
        }
    }
}

impl Layer<f32> for Probe {
    fn type_name(&self) -> &'static str {
        "Probe"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
    fn forward(&self, x: &Var<f32>) -> Var<f32> {
        x.clone()
    }
    fn forward_train(
        &mut self,
        x: nn::ndarray::ArrayViewD<'_, f32>,
    ) -> nn::ndarray::ArrayViewD<'_, f32> {
        self.y = x.to_owned();
        self.y.view()
    }
    fn output(&self) -> nn::ndarray::ArrayViewD<'_, f32> {
        self.y.view()
    }
    fn backward(
        &mut self,
        _x: nn::ndarray::ArrayViewD<'_, f32>,
        dy: nn::ndarray::ArrayViewD<'_, f32>,
        need: bool,
    ) -> nn::ndarray::ArrayViewD<'_, f32> {
        self.calls.push(need);
        if !need {
            return nn::layers::no_input_grad(&self.dx);
        }
        self.dx = dy.to_owned();
        self.dx.view()
    }
    fn predict(&self, x: nn::ndarray::ArrayViewD<'_, f32>) -> ArrayD<f32> {
        x.to_owned()
    }
}

sequential! {
    /// Parameter-free layers before, between and after two dense layers.
    pub struct Probed: input(6) {
        before: Probe(),
        hidden: Dense(10, activation = relu),
        between: Probe(),
        out: Dense(4),
        after: Probe(),
    }
}

/// One static backward of `model` from a fixed output gradient, asking for
/// the input's gradient or not; returns the input gradient's shape (empty,
/// a zero among its axes, when not asked for).
fn probe_step(model: &mut Probed, need_input_grad: bool) -> Vec<usize> {
    let (x, _) = batch(0);
    let x = x.into_dyn();
    model.forward_train(x.view());
    let dy = ArrayD::from_elem(IxDyn(&[8, 4]), 0.25f32);
    Layer::backward(model, x.view(), dy.view(), need_input_grad)
        .shape()
        .to_vec()
}

#[test]
fn layers_before_the_first_trainable_one_run_no_backward() {
    // As PyTorch's autograd: an input needs a gradient only when something
    // before it trains (or the caller asks for the model's input gradient).
    let mut model = Probed::with_seed(7);
    assert!(probe_step(&mut model, false).contains(&0));
    assert_eq!(
        model.before.calls,
        [] as [bool; 0],
        "before the first trainable layer"
    );
    assert_eq!(model.between.calls, [true]);
    assert_eq!(model.after.calls, [true]);
    let trained = model.out.weight.grad().clone().unwrap();

    // Frozen, `hidden` no longer makes `between` need its input's gradient:
    // neither runs; `out` runs and gets the same gradient.
    let mut frozen = Probed::with_seed(7);
    freeze_layer(&frozen.hidden);
    assert!(probe_step(&mut frozen, false).contains(&0));
    assert_eq!(frozen.between.calls, [] as [bool; 0]);
    assert_eq!(frozen.after.calls, [true]);
    assert!(frozen.hidden.weight.grad().is_none());
    assert_eq!(frozen.out.weight.grad().clone().unwrap(), trained);

    // Everything frozen: nothing runs, and the input gradient is empty.
    let mut all = Probed::with_seed(7);
    freeze(&all);
    assert!(probe_step(&mut all, false).contains(&0));
    assert_eq!(all.after.calls, [] as [bool; 0]);

    // Asked for the input's gradient, every layer runs and passes it on.
    let mut asked = Probed::with_seed(7);
    freeze(&asked);
    assert_eq!(probe_step(&mut asked, true), [8, 6]);
    assert_eq!(asked.before.calls, [true]);
    assert_eq!(asked.between.calls, [true]);
}
