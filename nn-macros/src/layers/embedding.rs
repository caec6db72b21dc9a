//! `Embedding(input_dim, output_dim, padding_idx = p)`: token indices to
//! learned vectors; the model's first layer.

use quote::quote_spanned;

use super::{LayerCx, Resolved};
use crate::args::{int_lit, Args};
use crate::errors::{Errors, Mistake};

pub(crate) fn rule(cx: &LayerCx<'_>, args: &Args<'_>, errors: &mut Errors) -> Option<Resolved> {
    let vocab = args
        .take_positional_or_named("input_dim")
        .map(|e| int_lit(e, errors));
    let dim = args
        .take_positional_or_named("output_dim")
        .map(|e| int_lit(e, errors));
    let (vocab, dim) = match (vocab, dim) {
        (Some(Some(vocab)), Some(Some(dim))) => (vocab, dim),
        // A literal was wrong: already reported.
        (Some(None), _) | (_, Some(None)) => return None,
        _ => {
            errors.push(
                Mistake::EmbeddingWithoutSizes,
                cx.kind,
                "Embedding needs a vocabulary size and a dimension, e.g. `Embedding(1000, 64)`",
            );
            return None;
        }
    };
    // PyTorch's `padding_idx`: the padding token's row, zeros without gradient.
    let padding = match args.take_named("padding_idx") {
        Some(e) => {
            let padding = int_lit(e, errors)?;
            if padding >= vocab {
                errors.push(
                    Mistake::PaddingIdxOutOfRange,
                    e,
                    format!("Embedding: padding_idx {padding} is not an index below the vocabulary of {vocab}"),
                );
                return None;
            }
            Some(padding)
        }
        None => None,
    };
    if cx.index > 0 {
        errors.push(
            Mistake::EmbeddingNotFirst,
            cx.kind,
            "Embedding takes token indices, so it must be the model's first layer",
        );
    }
    let mut output = cx.input.to_vec();
    output.push(dim);
    let (span, t) = (cx.span, cx.dtype);
    Some(Resolved {
        output,
        params: Some(vocab.saturating_mul(dim)),
        ty: quote_spanned!(span=> ::nn::layers::Embedding<#t, #vocab, #dim>),
        ctor: match padding {
            None => quote_spanned!(span=>
                ::nn::layers::Embedding::new(::nn::init::Initializer::RandomUniform { min: -0.05, max: 0.05 }, rng)
            ),
            Some(p) => quote_spanned!(span=>
                ::nn::layers::Embedding::new(::nn::init::Initializer::RandomUniform { min: -0.05, max: 0.05 }, rng)
                    .padding_idx(#p)
            ),
        },
        check_shape: false,
        parts: None,
    })
}
