//! Every mistake the macro reports, by name, and the collector that gathers
//! them so one pass reports all of them.
//!
//! Each kind of mistake is a [`Mistake`] with its own message; each has at
//! least one compile-fail case under `nn-checks/tests/ui/` whose macro invocation makes
//! exactly that mistake, which `crate::tests` checks. A new message gets a new
//! variant here and a new ui case.
//!
//! A few mistakes only the compiler can see, in the code the macro generates:
//! a nested model's shapes, which another invocation declared. The macro
//! emits a `const` check (`crate::layers::nested`, calling
//! `nn::layers::check_nested`, where the messages are); their variants
//! come after the `;`, and each has a case `nn-checks/tests/ui/checked/<name>.rs`.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

macro_rules! mistakes {
    (
        $($(#[doc = $doc:literal])* $variant:ident,)*
        ;
        $($(#[doc = $cdoc:literal])* $cvariant:ident,)*
    ) => {
        /// A kind of user mistake (one message, one ui case at least).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum Mistake {
            $($(#[doc = $doc])* $variant,)*
            // Never reported by the macro: the message is the generated
            // check's, the variant is here for its ui case.
            $($(#[doc = $cdoc])* #[allow(dead_code)] $cvariant,)*
        }

        impl Mistake {
            /// Every kind the macro reports, in declaration order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Mistake] = &[$(Mistake::$variant),*];

            /// Every kind the compiler reports from the generated code.
            #[cfg(test)]
            pub(crate) const CHECKED_BY_COMPILER: &'static [Mistake] = &[$(Mistake::$cvariant),*];
        }
    };
}

mistakes! {
    // The model as a whole.
    /// `#[dtype(f16)]`.
    DtypeNotFloat,
    /// `struct Mlp: inputs(784)`.
    InputKeyword,
    /// `struct Mlp { .. }`.
    MissingInput,
    /// `input()`.
    EmptyInputShape,
    /// `input(0)`.
    ZeroInputDimension,
    /// `struct Mlp: input(784) {}`.
    EmptyModel,
    /// Two layers named `hidden`.
    DuplicateField,
    /// `Dence(10)`.
    UnknownLayer,
    /// `Dense(10) -> (10)`.
    OutputShapeOnBuiltin,

    // Arguments of a layer.
    /// `Dense(10, 20)`.
    ExtraPositionalArgument,
    /// `Dense(10, activaton = relu)`.
    UnknownArgument,
    /// `Dense(10, use_bias = true, use_bias = false)`.
    DuplicateArgument,
    /// `Dense(12.5)`.
    ExpectedInteger,
    /// `Dense(-3)`.
    NegativeInteger,
    /// `Dense(99999999999999999999999)`.
    IntegerTooLarge,
    /// `Dropout("half")`.
    ExpectedNumber,
    /// `LayerNorm(eps = -1e-5)`.
    NegativeNumber,
    /// `Dropout(1e999)`.
    NumberNotFinite,
    /// `Dense(10, use_bias = 1)`.
    ExpectedBool,
    /// `kernel_init = glorot_unifrom`.
    UnknownInitializer,

    // Activations.
    /// `activation = "rleu"`.
    UnknownActivationString,
    /// `activation = sigmiod`, `activation = nn::activation::rleu`.
    UnknownActivation,
    /// `activation = 3`.
    NotAnActivation,
    /// `activation = MySwish(2.0)`.
    OwnActivationCalled,
    /// `activation = ReLU`: the layer's name where the function's goes.
    LayerAsActivation,
    /// `leaky_relu(0.1)`.
    PositionalActivationArgument,
    /// `relu(max_val = 6.0)`.
    UnknownActivationArgument,
    /// `sigmoid(x = 1.0)`.
    ActivationTakesNoArguments,
    /// `relu(max_value = 6.0, max_value = 3.0)`.
    DuplicateActivationArgument,
    /// `gelu(approximate = 1)`.
    ActivationArgumentType,
    /// `threshold` without its two arguments.
    MissingActivationArgument,
    /// `softmax(axis = 2)` on a flat input.
    ActivationAxisOutOfRange,
    /// `glu(axis = 0)`: the batch axis.
    GluOnBatchAxis,
    /// `glu` on an odd length.
    ActivationShape,

    // Layers.
    /// `Activation` or `Activation()`.
    ActivationLayerWithoutFunction,
    /// `Dropout(1.5)`.
    DropoutRateOutOfRange,
    /// `Dropout`.
    DropoutWithoutRate,
    /// `BatchNorm(momentum = 1.5)`.
    MomentumOutOfRange,
    /// `Dense`.
    DenseWithoutUnits,
    /// `Dense(0)`.
    ZeroUnits,
    /// `Dense(10, input = 100)` after 128 outputs.
    InputSizeMismatch,
    /// `Dense` on an image.
    DenseOnNonFlatInput,
    /// `Conv2d` on a flat input.
    NotAnImage,
    /// `kernel = (3, 3, 3)`.
    NotAPair,
    /// `stride = 0`.
    ZeroWindow,
    /// A 5x5 kernel on a 4x4 input.
    WindowLargerThanInput,
    /// `Conv2d`.
    ConvWithoutFilters,
    /// `Conv2d(0, kernel = 3)`.
    ZeroFilters,
    /// `Conv2d(8)`.
    ConvWithoutKernel,
    /// `padding = "bad"`.
    BadPaddingString,
    /// `MaxPool2d`.
    PoolWithoutWindow,
    /// `MaxPool2d(2, padding = 2)`: a window could lie in the padding alone.
    PoolPaddingOverHalfWindow,
    /// `AvgPool2d(2, padding = "same")`: Keras leaves the padding out of the mean.
    AvgPoolSamePadding,
    /// `Embedding(1000)`.
    EmbeddingWithoutSizes,
    /// `Embedding` after another layer.
    EmbeddingNotFirst,
    /// `Embedding(100, 8, padding_idx = 100)`.
    PaddingIdxOutOfRange,
    /// `Tape` without a constructor call of the layer it wraps.
    TapeWithoutLayer,
    /// `Dense(10) { .. }`.
    BodyOnLayer,
    /// `Residual` or `Residual {}`.
    ResidualWithoutBody,
    /// `Residual { Dense(32) }` on 64 features, without a shortcut.
    ResidualShapeChange,
    /// `Residual(shortcut = Dense(16)) { Dense(32) }`.
    ShortcutShapeMismatch,
    /// `shortcut = 3`.
    ShortcutNotALayer,
    /// `Residual { shortcut: Dense(64) }`.
    ReservedLayerName,
    /// `LSTM(64)` on a flat input.
    NotASequence,
    /// `LSTM`.
    RecurrentWithoutUnits,
    /// `SimpleRNN(32, activation = sigmoid)`.
    RecurrentActivation,
    /// `LSTM(64, dropout = 0.2)` with one layer.
    RecurrentDropoutWithoutLayers,
    /// `Bidirectional(LSTM(64, bidirectional = false))`.
    BidirectionalTwice,
    /// `Bidirectional(Dense(64))`.
    BidirectionalWithoutRecurrent,
    /// `MultiHeadAttention(key_dim = 16)`.
    AttentionWithoutHeads,
    /// `MultiHeadAttention(heads = 3)` on 64 features.
    HeadsDoNotDivide,
    /// `MultiHeadAttention(heads = 4, key_dim = 32)` on 64 features.
    KeyDimMismatch,
    /// `TransformerEncoder(heads = 4, activation = tanh)`.
    FeedForwardActivation,
    /// `Patches`.
    PatchesWithoutSize,
    /// `Patches(5)` on a 28×28 image.
    PatchesDoNotTile,

    // The user's own layers.
    /// `Scale(8, factor = 0.5)`.
    NamedArgumentOnOwnLayer,
    /// `-> (0)`.
    ZeroOutputDimension,
    /// `-> ()`.
    EmptyOutputShape,

    // Graphs (`functional!`).
    /// `struct Net() -> (y)`.
    NoGraphInputs,
    /// `struct Net(x: input(4), x: input(8))`.
    DuplicateInput,
    /// No `-> (..)` after the inputs, or `-> ()`.
    NoGraphOutputs,
    /// `Dense(4)(hiden)`.
    UnknownTensor,
    /// `let a = Dense(4)(b); let b = Dense(4)(a);`: a cycle.
    UsedBeforeComputed,
    /// `let y = x(z)` where `x` is a tensor.
    TensorAsLayer,
    /// `Dense(4)(shared)` where `shared` is a layer.
    LayerAsTensor,
    /// `Dense(4)(a, b)`.
    LayerTakesOneInput,
    /// `Add(x)`, `Subtract(a, b, c)`, `let m = Add;`.
    MergeInputCount,
    /// `Add(a, b)` on shapes (None, 4) and (None, 8).
    MergeShapeMismatch,
    /// `Concatenate(axis = 2)` on flat inputs, or `axis = 0`.
    ConcatenateAxisOutOfRange,
    /// One shared layer applied to tensors of two shapes.
    SharedLayerShapeMismatch,
    /// `let y = Dense(4)(x);` where `y` is never used.
    UnusedTensor,
    /// `let shared = Dense(4);` never applied.
    UnusedLayer,
    /// `-> (z)` where no `z` is computed.
    OutputNotComputed,

    // Found by the compiler in the code the macro generates.
    ;
    /// `block: Block` where `Block` takes another input shape.
    NestedInputShape,
    /// `block: Block` where `Block` changes the shape and no `-> (..)` says so.
    NestedOutputShape,
}

/// Collects errors so one pass reports all of them.
#[derive(Default)]
pub(crate) struct Errors {
    all: Option<syn::Error>,
    /// The kinds reported, in order (for the ui-coverage test).
    #[cfg(test)]
    pub(crate) seen: Vec<Mistake>,
}

impl Errors {
    /// Reports `mistake` spanning all of `at`, first token to last.
    pub(crate) fn push(&mut self, mistake: Mistake, at: impl ToTokens, msg: impl Display) {
        self.add(mistake, syn::Error::new_spanned(at, msg));
    }

    /// Reports `mistake` at one span.
    pub(crate) fn push_at(&mut self, mistake: Mistake, span: Span, msg: impl Display) {
        self.add(mistake, syn::Error::new(span, msg));
    }

    fn add(&mut self, mistake: Mistake, e: syn::Error) {
        #[cfg(test)]
        self.seen.push(mistake);
        #[cfg(not(test))]
        let _ = mistake;
        match &mut self.all {
            Some(all) => all.combine(e),
            None => self.all = Some(e),
        }
    }

    /// Whether anything was reported.
    pub(crate) fn any(&self) -> bool {
        self.all.is_some()
    }

    /// `value` if nothing was reported, else every error.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.all {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}
