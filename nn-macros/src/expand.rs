//! Code generation: the model struct, its constructors and its `Model` impl,
//! with each layer's tokens spanned at the layer's declaration.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::builtins::keras_name;
use crate::errors::{Errors, Mistake};
use crate::parse::ModelDef;
use crate::validate::{shape_text, Plan};

fn dims(shape: &[usize]) -> TokenStream {
    quote!(&[#(#shape),*])
}

pub fn model(plan: &Plan) -> TokenStream {
    let Plan {
        attrs,
        vis,
        name,
        dtype: t,
        input,
        layers,
        param_count,
    } = plan;
    // `plan` reports a model without layers; this keeps that an error here too.
    let Some(last) = layers.last() else {
        let mut errors = Errors::default();
        errors.push(
            Mistake::EmptyModel,
            name,
            format!("model `{name}` has no layers: add at least one, e.g. `Dense(10)`"),
        );
        return match errors.finish(()) {
            Ok(()) => TokenStream::new(),
            Err(e) => e.to_compile_error(),
        };
    };
    let model_name = keras_name(&name.to_string());
    let fields: Vec<_> = layers.iter().map(|l| l.field.clone()).collect();
    let types: Vec<_> = layers.iter().map(|l| l.ty.clone()).collect();
    let docs: Vec<String> = layers
        .iter()
        .map(|l| format!("`{}`, output `{}`.", l.source, shape_text(&l.output)))
        .collect();
    let ctors: Vec<_> = layers.iter().map(|l| l.ctor.clone()).collect();
    let output = &last.output;
    let input_dims = dims(input);
    let output_dims = dims(output);

    // Build-time shape checks for user layers, naming the layer.
    let checks: Vec<TokenStream> = layers
        .iter()
        .filter(|l| l.check_shape)
        .map(|l| {
            let f = &l.field;
            let (i, o) = (dims(&l.input), dims(&l.output));
            let label = format!("{}: layer `{}` ({})", name, f, l.source);
            quote_spanned!(l.span=> ::nn::layers::check_declared_shape(&#f, #label, #i, #o);)
        })
        .collect();

    let param_const = param_count.map(|n| {
        quote! {
            /// Trainable parameters, known when the model is declared.
            pub const PARAM_COUNT: usize = #n;
        }
    });

    let tape_forward = layers.iter().map(|l| {
        let f = &l.field;
        quote!(let x = ::nn::layers::Layer::<#t>::forward(&self.#f, &x);)
    });
    let static_forward = layers.iter().enumerate().map(|(i, l)| {
        let f = &l.field;
        if i == 0 {
            quote!(let y = ::nn::layers::Layer::<#t>::forward_train(&mut self.#f, self.__nn_input.view());)
        } else {
            quote!(let y = ::nn::layers::Layer::<#t>::forward_train(&mut self.#f, y);)
        }
    });
    let predict = layers.iter().map(|l| {
        let f = &l.field;
        quote!(let y = ::nn::layers::Layer::<#t>::predict(&self.#f, y.view());)
    });
    // Backward, last layer first; each layer gets its own input (the previous
    // layer's output, or the cached model input).
    let n = layers.len();
    let backward = layers.iter().enumerate().rev().map(|(i, l)| {
        let f = &l.field;
        let x = if i == 0 {
            quote!(self.__nn_input.view())
        } else {
            let p = &layers[i - 1].field;
            quote!(::nn::layers::Layer::<#t>::output(&self.#p))
        };
        let need = i > 0;
        if i == n - 1 {
            quote! {
                let g = if from_logits {
                    ::nn::layers::Layer::<#t>::backward_from_logits(&mut self.#f, #x, g, #need)
                } else {
                    ::nn::layers::Layer::<#t>::backward(&mut self.#f, #x, g, #need)
                };
            }
        } else {
            quote!(let g = ::nn::layers::Layer::<#t>::backward(&mut self.#f, #x, g, #need);)
        }
    });
    let last = &last.field;
    let rows = layers.iter().map(|l| {
        let f = &l.field;
        let fname = f.to_string();
        let out = dims(&l.output);
        quote! {
            ::nn::summary::SummaryRow {
                name: #fname.to_string(),
                type_name: ::nn::layers::Layer::<#t>::type_name(&self.#f).to_string(),
                output_shape: (#out).to_vec(),
                params: ::nn::layers::Layer::<#t>::param_count(&self.#f)
                    + ::nn::layers::Layer::<#t>::non_trainable_count(&self.#f),
            }
        }
    });
    // Full names (`hidden.weight`) are built once and cached, so visiting the
    // parameters on every optimizer step allocates nothing.
    let collect_names = layers.iter().map(|l| {
        let f = &l.field;
        let prefix = format!("{f}.");
        quote! {
            ::nn::layers::Layer::<#t>::visit_params(&self.#f, &mut |n, _| {
                let mut full = ::std::string::String::from(#prefix);
                full.push_str(n);
                names.push(full);
            });
        }
    });
    let visit = layers.iter().map(|l| {
        let f = &l.field;
        quote! {
            ::nn::layers::Layer::<#t>::visit_params(&self.#f, &mut |_, p| {
                f(&names[i], p);
                i += 1;
            });
        }
    });
    let non_trainable = layers.iter().map(|l| {
        let f = &l.field;
        quote!(::nn::layers::Layer::<#t>::non_trainable_count(&self.#f))
    });
    let bytes = if t == "f64" { 8usize } else { 4 };

    quote! {
        #(#attrs)*
        #vis struct #name {
            #(
                #[doc = #docs]
                pub #fields: #types,
            )*
            __nn_input: ::nn::ndarray::ArrayD<#t>,
            __nn_loss_grad: ::nn::ndarray::ArrayD<#t>,
            __nn_training: bool,
            __nn_names: ::std::cell::OnceCell<::std::vec::Vec<::std::string::String>>,
        }

        impl #name {
            /// Input shape of one sample (without the batch axis).
            pub const INPUT_SHAPE: &'static [usize] = #input_dims;
            /// Output shape of one sample.
            pub const OUTPUT_SHAPE: &'static [usize] = #output_dims;
            #param_const

            /// A new model: Keras's default initialization drawn from `rng`.
            pub fn new<R: ::nn::rand::Rng + ?Sized>(rng: &mut R) -> Self {
                #( let #fields: #types = #ctors; )*
                #(#checks)*
                #name {
                    #(#fields,)*
                    __nn_input: ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0])),
                    __nn_loss_grad: ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0])),
                    __nn_training: true,
                    __nn_names: ::std::cell::OnceCell::new(),
                }
            }

            /// A new model initialized from a seeded RNG (reproducible).
            pub fn with_seed(seed: u64) -> Self {
                let mut rng = <::nn::rand::rngs::StdRng as ::nn::rand::SeedableRng>::seed_from_u64(seed);
                Self::new(&mut rng)
            }

            fn __nn_backward(&mut self, g: ::nn::ndarray::ArrayViewD<'_, #t>, from_logits: bool) {
                #(#backward)*
                let _ = g;
            }
        }

        impl ::nn::Parameters<#t> for #name {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                let names = self.__nn_names.get_or_init(|| {
                    let mut names = ::std::vec::Vec::new();
                    #(#collect_names)*
                    names
                });
                let mut i = 0usize;
                #(#visit)*
            }
        }

        impl ::nn::train::Fit<#t> for #name {
            fn parameters(&self) -> &dyn ::nn::Parameters<#t> {
                self
            }
            fn train_batch(
                &mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
                target: &::nn::loss::Target<'_, #t>,
                loss: ::nn::loss::Loss,
            ) -> ::nn::train::BatchStats {
                ::nn::train::static_train_batch(self, x, target, loss)
            }
            fn predict_batch(&self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> {
                ::nn::Model::<#t>::predict(self, x)
            }
            fn set_training(&mut self, training: bool) {
                ::nn::Model::<#t>::set_training(self, training);
            }
        }

        impl ::nn::Model<#t> for #name {
            fn forward(&self, x: &::nn::Var<#t>) -> ::nn::Var<#t> {
                let x = x.clone();
                #(#tape_forward)*
                x
            }

            fn forward_train(&mut self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                ::nn::layers::check_input(#model_name, x.shape(), Self::INPUT_SHAPE);
                ::nn::layers::ensure_shape(&mut self.__nn_input, x.shape());
                self.__nn_input.assign(&x);
                #(#static_forward)*
                y
            }

            fn backward(&mut self, grad_output: ::nn::ndarray::ArrayViewD<'_, #t>) {
                self.__nn_backward(grad_output, false);
            }

            fn backward_loss(&mut self, loss: ::nn::loss::Loss, target: &::nn::loss::Target<'_, #t>) -> #t {
                let fused = loss.fuses_with_softmax() && ::nn::layers::Layer::<#t>::softmax_output(&self.#last);
                let out = ::nn::layers::Layer::<#t>::output(&self.#last);
                // The buffer is lent out for the backward pass and put back: no allocation.
                let mut grad = ::std::mem::take(&mut self.__nn_loss_grad);
                let value = if fused {
                    loss.softmax_fused_into(out, target, &mut grad)
                } else {
                    loss.value_and_grad_into(out, target, &mut grad)
                };
                self.__nn_backward(grad.view(), fused);
                self.__nn_loss_grad = grad;
                value
            }

            fn predict(&self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> {
                ::nn::layers::check_input(#model_name, x.shape(), Self::INPUT_SHAPE);
                let y = x.to_owned();
                #(#predict)*
                y
            }

            fn set_training(&mut self, training: bool) {
                self.__nn_training = training;
                #( ::nn::layers::Layer::<#t>::set_training(&mut self.#fields, training); )*
            }

            fn is_training(&self) -> bool {
                self.__nn_training
            }

            fn param_count(&self) -> usize {
                0 #(+ ::nn::layers::Layer::<#t>::param_count(&self.#fields))*
            }

            fn summary(&self) -> ::nn::summary::Summary {
                let rows = ::std::vec![#(#rows),*];
                let non_trainable = 0 #(+ #non_trainable)*;
                ::nn::summary::Summary {
                    name: #model_name.to_string(),
                    trainable: ::nn::Model::<#t>::param_count(self),
                    non_trainable,
                    rows,
                    bytes_per_param: #bytes,
                }
            }
        }
    }
}

/// After an error: the struct and its API with bodies that never run, so the
/// user's code that uses the model reports nothing further.
pub fn fallback(def: &ModelDef) -> TokenStream {
    let ModelDef {
        attrs, vis, name, ..
    } = def;
    let t = crate::validate::dtype(def);
    quote! {
        #(#attrs)*
        #vis struct #name;

        impl #name {
            #[allow(missing_docs)]
            pub const PARAM_COUNT: usize = 0;
            #[allow(missing_docs)]
            pub const INPUT_SHAPE: &'static [usize] = &[];
            #[allow(missing_docs)]
            pub const OUTPUT_SHAPE: &'static [usize] = &[];
            #[allow(missing_docs)]
            pub fn new<R: ::nn::rand::Rng + ?Sized>(_rng: &mut R) -> Self { #name }
            #[allow(missing_docs)]
            pub fn with_seed(_seed: u64) -> Self { #name }
        }

        impl ::nn::Parameters<#t> for #name {
            fn visit_params(&self, _: &mut dyn FnMut(&str, &::nn::Param<#t>)) { unreachable!() }
        }

        impl ::nn::train::Fit<#t> for #name {
            fn parameters(&self) -> &dyn ::nn::Parameters<#t> { unreachable!() }
            fn train_batch(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>, _: &::nn::loss::Target<'_, #t>, _: ::nn::loss::Loss) -> ::nn::train::BatchStats { unreachable!() }
            fn predict_batch(&self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> { unreachable!() }
            fn set_training(&mut self, _: bool) { unreachable!() }
        }

        impl ::nn::Model<#t> for #name {
            fn forward(&self, _: &::nn::Var<#t>) -> ::nn::Var<#t> { unreachable!() }
            fn forward_train(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayViewD<'_, #t> { unreachable!() }
            fn backward(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>) { unreachable!() }
            fn backward_loss(&mut self, _: ::nn::loss::Loss, _: &::nn::loss::Target<'_, #t>) -> #t { unreachable!() }
            fn predict(&self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> { unreachable!() }
            fn set_training(&mut self, _: bool) { unreachable!() }
            fn is_training(&self) -> bool { unreachable!() }
            fn summary(&self) -> ::nn::summary::Summary { unreachable!() }
        }
    }
}
