//! What the macro knows by name: built-in activations, initializers and layers.
//! (The activation table mirrors `nn_core::activation::NAMES`; the test models
//! in `tests/` use every entry, so a mismatch fails to compile.)

/// Keras activation name → (type, constant) in `nn::activation`.
pub const ACTIVATIONS: &[(&str, &str, &str)] = &[
    ("relu", "Relu", "relu"),
    ("relu6", "Relu6", "relu6"),
    ("leaky_relu", "LeakyRelu", "leaky_relu"),
    ("elu", "Elu", "elu"),
    ("selu", "Selu", "selu"),
    ("gelu", "Gelu", "gelu"),
    ("gelu_tanh", "Gelu", "gelu_tanh"),
    ("sigmoid", "Sigmoid", "sigmoid"),
    ("hard_sigmoid", "HardSigmoid", "hard_sigmoid"),
    ("hard_silu", "HardSilu", "hard_silu"),
    ("hard_swish", "HardSilu", "hard_swish"),
    ("tanh", "Tanh", "tanh"),
    ("softplus", "Softplus", "softplus"),
    ("softsign", "Softsign", "softsign"),
    ("silu", "Silu", "silu"),
    ("swish", "Silu", "swish"),
    ("mish", "Mish", "mish"),
    ("log_sigmoid", "LogSigmoid", "log_sigmoid"),
    ("exponential", "Exponential", "exponential"),
    ("linear", "Linear", "linear"),
    ("softmax", "Softmax", "softmax"),
    ("log_softmax", "LogSoftmax", "log_softmax"),
];

/// Keras initializer name → `nn::init::Initializer` variant.
pub const INITIALIZERS: &[(&str, &str)] = &[
    ("glorot_uniform", "GlorotUniform"),
    ("glorot_normal", "GlorotNormal"),
    ("he_uniform", "HeUniform"),
    ("he_normal", "HeNormal"),
    ("lecun_uniform", "LecunUniform"),
    ("lecun_normal", "LecunNormal"),
    ("zeros", "Zeros"),
    ("ones", "Ones"),
];

/// Layer names the macro implements itself.
pub const LAYERS: &[&str] = &[
    "Dense",
    "Activation",
    "Dropout",
    "Flatten",
    "ReLU",
    "Softmax",
    "LeakyReLU",
    "ELU",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool",
    "BatchNorm",
    "LayerNorm",
    "Embedding",
];

/// Keras's default layer name: the class name in snake case (`ReLU` → `re_lu`).
pub fn keras_name(type_name: &str) -> String {
    let chars: Vec<char> = type_name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev_lower || next_lower {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_keras() {
        assert_eq!(keras_name("Dense"), "dense");
        assert_eq!(keras_name("ReLU"), "re_lu");
        assert_eq!(keras_name("LeakyReLU"), "leaky_re_lu");
        assert_eq!(keras_name("Mlp"), "mlp");
        assert_eq!(keras_name("KerasMlp"), "keras_mlp");
    }
}
