//! The macro's two execution paths agree: the static forward/backward (reused
//! buffers, no tape) and the tape give the same outputs and the same gradient
//! for every parameter, for models using every layer and every activation.
//! The expected values are the tape's (itself checked against PyTorch and finite
//! differences in nn-core's tests); tolerances: f64 1e-12, f32 1e-5.

use crate::common;

use nn::kernels::pointwise::Pointwise;
use nn::ndarray::{ArrayD, ArrayViewD, IxDyn};
use nn::prelude::*;

use common::paths::{close, grads, input, paths_agree};

/// A user activation: `x * sigmoid(2x)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Swish2;

impl Pointwise for Swish2 {
    fn name(&self) -> &'static str {
        "swish2"
    }
    fn f<T: Float>(&self, x: T) -> T {
        x / (T::one() + (-(x + x)).exp())
    }
    fn df<T: Float>(&self, x: T, _y: T) -> T {
        let s = T::one() / (T::one() + (-(x + x)).exp());
        s + (x + x) * s * (T::one() - s)
    }
}

/// A user layer: `y = x * a` with a learned per-feature scale `a`.
pub struct Scale<T: Float> {
    a: Param<T>,
    y: ArrayD<T>,
    dx: ArrayD<T>,
}

impl<T: Float> Scale<T> {
    pub fn new(features: usize, init: f64) -> Self {
        let a = ArrayD::from_shape_fn(IxDyn(&[features]), |i| T::lit(init + 0.1 * i[0] as f64));
        Scale {
            a: Param::new(a),
            y: ArrayD::zeros(IxDyn(&[0])),
            dx: ArrayD::zeros(IxDyn(&[0])),
        }
    }
}

impl<T: Float> Layer<T> for Scale<T> {
    fn type_name(&self) -> &'static str {
        "Scale"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [n] if *n == self.a.len() => Ok(input.to_vec()),
            _ => Err(format!(
                "Scale of {} features cannot take input {input:?}",
                self.a.len()
            )),
        }
    }
    fn forward(&self, x: &Var<T>) -> Var<T> {
        x * &x.tape().param(&self.a)
    }
    fn forward_train(&mut self, x: ArrayViewD<'_, T>) -> ArrayViewD<'_, T> {
        self.y = &x * &*self.a.value();
        self.y.view()
    }
    fn output(&self) -> ArrayViewD<'_, T> {
        self.y.view()
    }
    fn backward(
        &mut self,
        x: ArrayViewD<'_, T>,
        dy: ArrayViewD<'_, T>,
        _need: bool,
    ) -> ArrayViewD<'_, T> {
        let da = (&dy * &x).sum_axis(nn::ndarray::Axis(0));
        nn::layers::grad_buffer(&self.a).zip_mut_with(&da, |g, &d| *g += d);
        self.dx = &dy * &*self.a.value();
        self.dx.view()
    }
    fn predict(&self, x: ArrayViewD<'_, T>) -> ArrayD<T> {
        &x * &*self.a.value()
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<T>)) {
        f("a", &self.a);
    }
}

macro_rules! every_activation_model {
    ($name:ident, $t:ident) => {
        sequential! {
            /// Every built-in activation, every built-in layer, and the user's own.
            #[dtype($t)]
            pub struct $name: input(2, 3) {
                Flatten,
                Dense(8, activation = relu),
                Dense(8, activation = "relu6"),
                Dense(8, activation = leaky_relu),
                Dense(8, activation = elu),
                Dense(8, activation = selu),
                Dense(8, activation = gelu),
                Dense(8, activation = gelu(approximate = true)),
                Dense(8, activation = sigmoid),
                Dense(8, activation = hard_sigmoid),
                Dense(8, activation = hard_silu),
                Dense(8, activation = hard_swish),
                Dense(8, activation = nn::activation::tanh),
                Dense(8, activation = softplus),
                Dense(8, activation = softsign),
                Dense(8, activation = silu),
                Dense(8, activation = swish),
                Dense(8, activation = mish),
                Dense(8, activation = log_sigmoid),
                Dense(8, activation = "tanh"),
                Dense(8, activation = exponential, use_bias = false, kernel_init = lecun_normal),
                Dense(8, activation = linear, bias_init = "ones"),
                Dense(8, activation = Swish2),
                Dense(8, activation = log_softmax),
                Dense(8, activation = celu),
                Dense(8, activation = hard_tanh),
                Dense(8, activation = hard_shrink(threshold = 0.1)),
                Dense(8, activation = soft_shrink(threshold = 0.1)),
                Dense(8, activation = squareplus),
                Dense(8, activation = sparse_plus),
                Dense(8, activation = sparse_sigmoid),
                Dense(8, activation = tanh_shrink),
                Dense(8, activation = threshold(threshold = -0.5, default_value = 0.1)),
                Dense(8, activation = relu(negative_slope = 0.1, max_value = 2.0, threshold = -0.2)),
                Dense(16, activation = glu),
                Dense(8, activation = sparsemax),
                Activation(tanh),
                ReLU,
                Dense(8, activation = "softsign"),
                LeakyReLU(0.1),
                ELU(alpha = 0.5),
                Dropout(0.25),
                scale: Scale<$t>(8, 0.5),
                Activation(Swish2),
                Dense(5, activation = softmax),
            }
        }
    };
}

every_activation_model!(Every64, f64);
every_activation_model!(Every32, f32);

sequential! {
    /// Softmax as its own layer, for the fused loss gradient.
    #[dtype(f64)]
    pub struct Classifier: input(4) {
        hidden: Dense(6, activation = tanh),
        Dense(3),
        Activation("softmax"),
    }
}

#[test]
fn static_and_tape_paths_agree_f64() {
    paths_agree(|| Every64::with_seed(7), &[5, 2, 3], 1e-12);
}

#[test]
fn static_and_tape_paths_agree_f32() {
    paths_agree(|| Every32::with_seed(7), &[5, 2, 3], 1e-5);
}

#[test]
fn every_parameter_has_a_stable_name() {
    let m = Every64::with_seed(0);
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "dense.weight");
    assert_eq!(names[1], "dense.bias");
    assert_eq!(names[2], "dense_1.weight");
    assert!(names.contains(&"scale.a".to_string()));
    // exponential's Dense has no bias
    assert!(!names.contains(&"dense_19.bias".to_string()));
    assert!(names.contains(&"dense_19.weight".to_string()));
}

#[test]
fn eval_mode_turns_dropout_off_and_predict_matches_it() {
    let mut m = Every64::with_seed(3);
    m.eval();
    assert!(!m.is_training());
    let x = input::<f64>(&[4, 2, 3]);
    let a = m.forward_train(x.view()).to_owned();
    let b = m.predict(x.view());
    close("predict", &b, &a, 1e-12);
    let tape = Tape::new();
    close(
        "tape",
        &m.forward(&tape.constant(x.clone())).value(),
        &a,
        1e-12,
    );
}

#[test]
fn fused_softmax_cross_entropy_matches_the_tape() {
    let x = input::<f64>(&[6, 4]);
    let labels = [0usize, 2, 1, 1, 0, 2];
    let (mut fused, reference) = (Classifier::with_seed(1), Classifier::with_seed(1));

    fused.forward_train(x.view());
    let loss = fused.backward_loss(
        Loss::SparseCategoricalCrossEntropy,
        &Target::Labels(&labels),
    );

    let tape = Tape::new();
    let probs = reference.forward(&tape.constant(x.clone()));
    let l = sparse_categorical_cross_entropy(&probs, &labels, Reduction::Mean);
    l.backward();
    assert!((loss - l.item()).abs() < 1e-12);
    let (a, b) = (grads(&fused), grads(&reference));
    for (name, g) in &a {
        close(name, g, &b[name], 1e-12);
    }
}

#[test]
fn non_fused_losses_go_through_the_chain() {
    let x = input::<f64>(&[6, 4]);
    let t = input::<f64>(&[6, 3]).mapv(|v| v.abs());
    let (mut m, reference) = (Classifier::with_seed(2), Classifier::with_seed(2));
    m.forward_train(x.view());
    let loss = m.backward_loss(Loss::Mse, &Target::Values(t.view()));
    let tape = Tape::new();
    let l = mse(
        &reference.forward(&tape.constant(x.clone())),
        &tape.constant(t.clone()),
        Reduction::Mean,
    );
    l.backward();
    assert!((loss - l.item()).abs() < 1e-12);
    let (a, b) = (grads(&m), grads(&reference));
    for (name, g) in &a {
        close(name, g, &b[name], 1e-12);
    }
}

/// The training loop's step reads the batch in place (the model keeps no
/// copy of it): the loss and every gradient are the bits of the path that
/// keeps one, with a built-in loss and with a loss on the tape, and a
/// model then trained by the other path sees the input it was given.
#[test]
fn the_training_step_lends_the_batch_and_changes_nothing() {
    use nn::train::{static_train_batch, TrainLoss};
    let x = input::<f64>(&[6, 4]);
    let labels = [0usize, 2, 1, 1, 0, 2];
    let target = Target::Labels(&labels);
    let tape_loss = TrainLoss::tape(|p: &Var<f64>, t: &Target<'_, f64>| {
        sparse_categorical_cross_entropy(p, t.labels(), Reduction::Mean) + p.pow(2.0).mean()
    });
    for loss in [
        TrainLoss::Builtin(Loss::SparseCategoricalCrossEntropy),
        tape_loss,
    ] {
        let (mut lent, mut kept) = (Classifier::with_seed(5), Classifier::with_seed(5));
        let mut seen = None;
        let value = static_train_batch(&mut lent, x.view(), &target, &loss, &mut |out| {
            seen = Some(out.to_owned())
        });
        let out = kept.forward_train(x.view()).to_owned();
        let want = match &loss {
            TrainLoss::Builtin(l) => kept.backward_loss(*l, &target),
            TrainLoss::Tape { loss, .. } => {
                let tape = Tape::new();
                let pred = tape.var(out.clone());
                let l = loss(&pred, &target);
                l.backward();
                kept.backward(pred.grad().expect("a gradient").view());
                l.item()
            }
        };
        assert_eq!(seen, Some(out));
        assert_eq!(value.to_bits(), want.to_bits());
        assert_eq!(grads(&lent), grads(&kept));
        // The kept-copy path after a lent step backpropagates its own input.
        let other = x.mapv(|v| v * 0.5 - 0.25);
        let cot = input::<f64>(&[6, 3]);
        for m in [&mut lent, &mut kept] {
            m.zero_grad();
            m.forward_train(other.view());
            m.backward(cot.view());
        }
        assert_eq!(grads(&lent), grads(&kept));
    }
}

#[test]
fn gradients_accumulate_until_zero_grad() {
    let x = input::<f64>(&[3, 4]);
    let mut m = Classifier::with_seed(4);
    let cot = input::<f64>(&[3, 3]);
    m.forward_train(x.view());
    m.backward(cot.view());
    let once = grads(&m);
    m.forward_train(x.view());
    m.backward(cot.view());
    for (name, g) in grads(&m) {
        close(&name, &g, &(&once[&name] * 2.0), 1e-12);
    }
    m.zero_grad();
    // PyTorch's zero_grad: no gradient at all until the next backward.
    m.visit_params(&mut |n, p| assert!(p.grad().is_none(), "{n}"));
    // After zero_grad, a backward writes each gradient afresh into the
    // buffer zero_grad kept (the weight products overwrite instead of adding
    // to zeros): nothing of its old contents, not even NaN, reaches the new
    // gradient.
    m.forward_train(x.view());
    m.backward(cot.view());
    m.visit_params(&mut |_, p| p.grad_mut().as_mut().unwrap().fill(f64::NAN));
    m.zero_grad();
    m.forward_train(x.view());
    m.backward(cot.view());
    for (name, g) in grads(&m) {
        close(&name, &g, &once[&name], 1e-12);
    }
}

sequential! {
    /// A user layer whose real output disagrees with the model's declaration.
    pub struct Misdeclared: input(4) {
        Dense(8),
        scale: Scale<f32>(7, 0.5),
    }
}

#[test]
#[should_panic(
    expected = "Misdeclared: layer `scale` (Scale<f32>(7, 0.5)): Scale of 7 features cannot take input [8]"
)]
fn a_user_layer_that_does_not_fit_is_named_when_the_model_is_built() {
    let _ = Misdeclared::with_seed(0);
}

#[test]
fn the_model_above_uses_every_activation() {
    // So a new row of the activation table cannot skip the two-path check.
    let source = include_str!("sequential_paths.rs");
    for name in nn::activation::NAMES {
        assert!(
            source.contains(&format!("activation = {name},"))
                || source.contains(&format!("activation = {name})"))
                || source.contains(&format!("activation = {name}("))
                || source.contains(&format!("activation = \"{name}\""))
                || source.contains(&format!("Activation({name})")),
            "`{name}` is missing from every_activation_model"
        );
    }
}

sequential! {
    /// PyTorch's default initialization, asked for by name.
    struct TorchInit: input(4, 10, 10) {
        Conv2d(16, kernel = 5, kernel_init = torch_default, bias_init = torch_default),
        Flatten,
        Dense(10, kernel_init = "torch_default", bias_init = "torch_default"),
    }
}

/// PyTorch's `nn.Conv2d` and `nn.Linear` docs: weight and bias `U(-√k, √k)`
/// with `k = 1 / fan_in` of the kernel (`4·5·5 = 100`; `16·6·6 = 576`). A bias
/// bounded by its own length (1/√16, 1/√10) would leave these bounds.
#[test]
fn torch_default_draws_biases_within_the_kernels_fan_in() {
    let model = TorchInit::with_seed(5);
    let bounds: [f32; 4] = [0.1, 0.1, 1.0 / 24.0, 1.0 / 24.0];
    let params = model.named_params();
    assert_eq!(params.len(), bounds.len());
    for ((name, param), limit) in params.iter().zip(bounds) {
        let value = param.value();
        assert!(
            value.iter().all(|v| v.abs() <= limit),
            "{name} beyond {limit}"
        );
        // Ten draws all within a quarter of the bound: odds 0.25¹⁰ ≈ 1e-6.
        assert!(
            value.iter().any(|v| v.abs() > limit / 4.0),
            "{name} too narrow"
        );
    }
}

sequential! {
    /// Every initializer by name (a name the macro does not know fails to
    /// compile here).
    struct EveryInit: input(3) {
        Dense(2, kernel_init = glorot_uniform, bias_init = glorot_normal),
        Dense(2, kernel_init = he_uniform, bias_init = he_normal),
        Dense(2, kernel_init = lecun_uniform, bias_init = lecun_normal),
        Dense(2, kernel_init = torch_default, bias_init = zeros),
        Dense(2, kernel_init = ones),
    }
}

#[test]
fn the_macro_knows_every_initializer_name() {
    // So a name added to `nn::init::NAMES` cannot skip the macro's table.
    let source = include_str!("sequential_paths.rs");
    assert_eq!(EveryInit::with_seed(0).named_params().len(), 10);
    for name in nn::init::NAMES {
        assert!(nn::init::Initializer::from_name(name).is_some(), "{name}");
        assert!(
            source.contains(&format!("_init = {name},"))
                || source.contains(&format!("_init = {name})")),
            "`{name}` is missing from EveryInit"
        );
    }
}

#[test]
#[should_panic(
    expected = "classifier: backward with a gradient of shape [2, 3] before any forward_train"
)]
fn backward_before_any_forward_names_the_model() {
    let mut m = Classifier::with_seed(0);
    m.backward(ArrayD::<f64>::zeros(IxDyn(&[2, 3])).view());
}

#[test]
#[should_panic(
    expected = "classifier: backward: the gradient has shape [3, 3], but the last forward_train output [2, 3]"
)]
fn backward_of_another_batch_names_both_shapes() {
    let mut m = Classifier::with_seed(0);
    m.forward_train(ArrayD::<f64>::zeros(IxDyn(&[2, 4])).view());
    m.backward(ArrayD::<f64>::zeros(IxDyn(&[3, 3])).view());
}

#[test]
#[should_panic(expected = "classifier: expected input of shape [batch, 4], got [2, 5]")]
fn the_tape_path_checks_the_declared_input_as_the_static_path_does() {
    let m = Classifier::with_seed(0);
    let tape = nn::Tape::new();
    let _ = m.forward(&tape.var(ArrayD::<f64>::zeros(IxDyn(&[2, 5]))));
}
