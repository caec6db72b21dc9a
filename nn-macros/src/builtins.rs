//! What the macro knows by name besides layers (`crate::layers::BUILTINS`) and
//! activations (`nn_spec::ACTIVATIONS`): initializers, and Keras's naming.

/// Keras initializer name → `nn::init::Initializer` variant.
pub const INITIALIZERS: &[(&str, &str)] = &[
    ("glorot_uniform", "GlorotUniform"),
    ("glorot_normal", "GlorotNormal"),
    ("he_uniform", "HeUniform"),
    ("he_normal", "HeNormal"),
    ("lecun_uniform", "LecunUniform"),
    ("lecun_normal", "LecunNormal"),
    ("torch_default", "TorchDefault"),
    ("zeros", "Zeros"),
    ("ones", "Ones"),
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
