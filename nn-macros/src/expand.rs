//! Code generation: the model struct, its constructors and its `Layer`,
//! `Sublayer`, `Parameters` and `Model` impls, with each layer's tokens
//! spanned at the layer's declaration.
//!
//! The `Layer` impl holds the model's behaviour (both paths, parameters,
//! buffers, train/eval); `Model` and `Parameters` call it. A model is both, so
//! the methods the two traits share (`forward`, `predict`, …) are also
//! inherent methods with `Model`'s meaning: `model.forward(&x)` needs no
//! disambiguation. A block's hidden chain (a `Residual`'s body) is a `Layer`
//! and a `Sublayer` only.
//!
//! Hygiene: every path is absolute (`::core::option::Option`, `::nn::Var`)
//! and the generic parameter is `__R`, so a model may be named `R`, `T`,
//! `Option`, `Result`, `Var` or `Tape`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::Ident;

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
        label,
        hidden,
        dtype: t,
        input,
        layers,
        params,
    } = plan;
    let hidden = *hidden;
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
    // How runtime messages name the model.
    let check_label = if hidden {
        label.clone()
    } else {
        model_name.clone()
    };
    let type_name = if hidden {
        String::from("Sequential")
    } else {
        name.to_string()
    };
    let name_str = name.to_string();
    let fields: Vec<_> = layers.iter().map(|l| l.field.clone()).collect();
    let types: Vec<_> = layers.iter().map(|l| l.ty.clone()).collect();
    let docs: Vec<String> = layers
        .iter()
        .map(|l| format!("`{}`, output `{}`.", l.source, shape_text(&l.output)))
        .collect();
    let ctors: Vec<_> = layers.iter().map(|l| l.ctor.clone()).collect();
    let items = layers
        .iter()
        .filter_map(|l| l.parts.as_ref().map(|p| p.items.clone()));
    let input_dims = dims(input);
    let output_dims = dims(&last.output);

    // Build-time shape checks for user layers, naming the layer.
    let checks: Vec<TokenStream> = layers
        .iter()
        .filter(|l| l.check_shape)
        .map(|l| {
            let f = &l.field;
            let (i, o) = (dims(&l.input), dims(&l.output));
            let label = format!("{}: layer `{}` ({})", label, f, l.source);
            quote_spanned!(l.span=> ::nn::layers::check_declared_shape(&#f, #label, #i, #o);)
        })
        .collect();

    let known = params.known;
    let nested = &params.nested;
    let sub_count = if params.unknown {
        quote!(::core::option::Option::None)
    } else if nested.is_empty() {
        quote!(::core::option::Option::Some(#known))
    } else {
        quote!(::nn::layers::param_total(#known, &[#(<#nested as ::nn::layers::Sublayer<#t>>::PARAM_COUNT),*]))
    };
    let param_const = match (hidden, params.unknown, nested.is_empty()) {
        (false, false, true) => quote! {
            /// Trainable parameters, known when the model is declared.
            pub const PARAM_COUNT: usize = #known;
        },
        (false, false, false) => quote! {
            /// Trainable parameters, known when the model compiles (a compile
            /// error where used if a nested model holds layers of your own).
            pub const PARAM_COUNT: usize =
                ::nn::layers::known_param_count(<Self as ::nn::layers::Sublayer<#t>>::PARAM_COUNT);
        },
        _ => TokenStream::new(),
    };

    let tape_forward = layers.iter().map(|l| {
        let f = &l.field;
        quote!(let x = ::nn::layers::Layer::<#t>::forward(&self.#f, &x);)
    });
    let static_forward = layers.iter().enumerate().map(|(i, l)| {
        let f = &l.field;
        let x = if i == 0 { quote!(x) } else { quote!(y) };
        quote!(let y = ::nn::layers::Layer::<#t>::forward_train(&mut self.#f, #x);)
    });
    let predict = layers.iter().enumerate().map(|(i, l)| {
        let f = &l.field;
        let x = if i == 0 { quote!(x) } else { quote!(y.view()) };
        quote!(let y = ::nn::layers::Layer::<#t>::predict(&self.#f, #x);)
    });
    // Backward, last layer first; each layer gets its own input (the previous
    // layer's output, or the chain's input). A layer's input needs its
    // gradient when the caller asks for the chain's or a layer before it has
    // trainable parameters (`__nn_need[i]`); a layer runs only when its own
    // input or parameters need gradients (`__nn_need[i + 1]`): nothing runs
    // before the first trainable layer (patches cut from the image) or
    // through a frozen prefix (PyTorch's `requires_grad`).
    let n = layers.len();
    let need_flags = layers.iter().enumerate().map(|(i, l)| {
        let f = &l.field;
        quote! {
            __nn_need[#i + 1] =
                __nn_need[#i] || ::nn::layers::has_trainable::<#t, _>(&self.#f);
        }
    });
    let backward = layers.iter().enumerate().rev().map(|(i, l)| {
        let f = &l.field;
        let x = if i == 0 {
            quote!(x)
        } else {
            let p = &layers[i - 1].field;
            quote!(::nn::layers::Layer::<#t>::output(&self.#p))
        };
        let need = quote!(__nn_need[#i]);
        let run = if i == n - 1 {
            quote! {
                if from_logits {
                    ::nn::layers::Layer::<#t>::backward_from_logits(&mut self.#f, #x, g, #need)
                } else {
                    ::nn::layers::Layer::<#t>::backward(&mut self.#f, #x, g, #need)
                }
            }
        } else {
            quote!(::nn::layers::Layer::<#t>::backward(&mut self.#f, #x, g, #need))
        };
        // Skipped, a layer passes on what it was given; the last one (when
        // nothing runs) an empty view of its own output.
        let skipped = if i == n - 1 {
            quote! {
                ::nn::layers::Layer::<#t>::output(&self.#f)
                    .slice_axis_move(::nn::ndarray::Axis(0), (0..0).into())
            }
        } else {
            quote!(g)
        };
        let step = quote! {
            let g = if __nn_need[#i + 1] { #run } else { #skipped };
        };
        watched(t, f, step)
    });
    let last = &last.field;
    let rows = layers
        .iter()
        .map(|l| row(&l.field, &l.output, l.parts.as_ref(), &[], t));
    let field_refs: Vec<&Ident> = fields.iter().collect();
    let visit_params = visit(&field_refs, t, quote!(visit_params), quote!(__nn_names));
    let visit_buffers = visit(
        &field_refs,
        t,
        quote!(visit_buffers),
        quote!(__nn_buffer_names),
    );
    let non_trainable = layers.iter().map(|l| {
        let f = &l.field;
        quote!(::nn::layers::Layer::<#t>::non_trainable_count(&self.#f))
    });
    let bytes = if t == "f64" { 8usize } else { 4 };

    // A hidden chain has no `Model` API: no input copy, loss buffer or mode.
    let model_fields = (!hidden).then(|| {
        quote! {
            __nn_input: ::nn::ndarray::ArrayD<#t>,
            __nn_loss_grad: ::nn::ndarray::ArrayD<#t>,
            __nn_training: bool,
        }
    });
    let model_inits = (!hidden).then(|| {
        quote! {
            __nn_input: ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0])),
            __nn_loss_grad: ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0])),
            __nn_training: true,
        }
    });
    let set_mode = (!hidden).then(|| quote!(self.__nn_training = training;));
    let struct_attrs = if hidden {
        quote!(#[doc(hidden)] #[allow(non_camel_case_types)])
    } else {
        quote!(#(#attrs)*)
    };
    let with_seed = (!hidden).then(|| {
        quote! {
            /// A new model initialized from a seeded RNG (reproducible).
            pub fn with_seed(seed: u64) -> Self {
                let mut rng = <::nn::rand::rngs::StdRng as ::nn::rand::SeedableRng>::seed_from_u64(seed);
                Self::new(&mut rng)
            }
        }
    });
    let model_api = (!hidden).then(|| {
        model_api(
            name,
            t,
            &quote!(::nn::layers::Layer::<#t>::output(&self.#last)),
            &quote!(::nn::layers::Layer::<#t>::softmax_output(&self.#last)),
            &model_name,
        )
    });
    let summary = (!hidden).then(|| {
        quote! {
            /// The Keras summary `nn::Model::summary` returns.
            fn __nn_summary(&self) -> ::nn::summary::Summary {
                let rows = <Self as ::nn::layers::Sublayer<#t>>::summary_rows(self);
                let non_trainable = 0 #(+ #non_trainable)*;
                ::nn::summary::Summary {
                    name: ::std::string::String::from(#model_name),
                    trainable: ::nn::Model::<#t>::param_count(self),
                    non_trainable,
                    rows,
                    bytes_per_param: #bytes,
                    connections: false,
                }
            }
        }
    });

    quote! {
        #(#items)*

        #struct_attrs
        #vis struct #name {
            #(
                #[doc = #docs]
                pub #fields: #types,
            )*
            #model_fields
            __nn_names: ::std::sync::OnceLock<::std::vec::Vec<::std::string::String>>,
            __nn_buffer_names: ::std::sync::OnceLock<::std::vec::Vec<::std::string::String>>,
        }

        impl #name {
            /// Input shape of one sample (without the batch axis).
            pub const INPUT_SHAPE: &'static [usize] = #input_dims;
            /// Output shape of one sample.
            pub const OUTPUT_SHAPE: &'static [usize] = #output_dims;
            #param_const

            /// A new model: Keras's default initialization drawn from `rng`.
            pub fn new<__R: ::nn::rand::Rng + ?::core::marker::Sized>(rng: &mut __R) -> Self {
                #( let #fields: #types = #ctors; )*
                #(#checks)*
                #name {
                    #(#fields,)*
                    #model_inits
                    __nn_names: ::std::sync::OnceLock::new(),
                    __nn_buffer_names: ::std::sync::OnceLock::new(),
                }
            }

            #with_seed

            #summary

            /// The static forward pass from `x` through every layer.
            fn __nn_forward<'__a>(
                &'__a mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
            ) -> ::nn::ndarray::ArrayViewD<'__a, #t> {
                #(#static_forward)*
                y
            }

            /// The static backward pass from the output's gradient `g` (the
            /// logits' with `from_logits`) to the gradient of the input `x`;
            /// `report` tells a data-parallel step each layer's finished
            /// gradients (`nn::distributed::watch_gradients`).
            fn __nn_backward<'__a>(
                &'__a mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
                g: ::nn::ndarray::ArrayViewD<'_, #t>,
                from_logits: bool,
                need_input_grad: bool,
                report: bool,
            ) -> ::nn::ndarray::ArrayViewD<'__a, #t> {
                let mut __nn_need = [need_input_grad; #n + 1];
                #(#need_flags)*
                #(#backward)*
                if need_input_grad {
                    g
                } else {
                    // Empty already, unless a layer computed the gradient
                    // it was told was not needed.
                    g.slice_axis_move(::nn::ndarray::Axis(0), (0..0).into())
                }
            }
        }

        impl ::nn::layers::Layer<#t> for #name {
            fn type_name(&self) -> &'static str {
                #type_name
            }

            fn output_shape(
                &self,
                input: &[usize],
            ) -> ::core::result::Result<::std::vec::Vec<usize>, ::std::string::String> {
                ::nn::layers::fixed_output_shape(#check_label, input, Self::INPUT_SHAPE, Self::OUTPUT_SHAPE)
            }

            fn forward(&self, x: &::nn::Var<#t>) -> ::nn::Var<#t> {
                // The declared input, as the static path checks it: a layer
                // deep inside would name neither the model nor its input.
                x.with_value(|v| ::nn::layers::check_input(#check_label, v.shape(), Self::INPUT_SHAPE));
                let x = x.clone();
                #(#tape_forward)*
                x
            }

            fn forward_train(
                &mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
            ) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                ::nn::layers::check_input(#check_label, x.shape(), Self::INPUT_SHAPE);
                self.__nn_forward(x)
            }

            fn output(&self) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                ::nn::layers::Layer::<#t>::output(&self.#last)
            }

            fn backward(
                &mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
                dy: ::nn::ndarray::ArrayViewD<'_, #t>,
                need_input_grad: bool,
            ) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                self.__nn_backward(x, dy, false, need_input_grad, false)
            }

            fn softmax_output(&self) -> bool {
                ::nn::layers::Layer::<#t>::softmax_output(&self.#last)
            }

            fn backward_from_logits(
                &mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
                dlogits: ::nn::ndarray::ArrayViewD<'_, #t>,
                need_input_grad: bool,
            ) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                self.__nn_backward(x, dlogits, true, need_input_grad, false)
            }

            fn predict(&self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> {
                ::nn::layers::check_input(#check_label, x.shape(), Self::INPUT_SHAPE);
                #(#predict)*
                y
            }

            #visit_params
            #visit_buffers

            fn set_training(&mut self, training: bool) {
                #set_mode
                #( ::nn::layers::Layer::<#t>::set_training(&mut self.#fields, training); )*
            }

            fn reseed(&self, seed: u64) {
                let mut part = 0u64;
                #(
                    ::nn::layers::Layer::<#t>::reseed(&self.#fields, ::nn::layers::mix_seed(seed, part));
                    part += 1;
                )*
                let _ = part;
            }
        }

        impl ::nn::layers::Sublayer<#t> for #name {
            const NAME: &'static str = #name_str;
            const INPUT_SHAPE: &'static [usize] = #input_dims;
            const OUTPUT_SHAPE: &'static [usize] = #output_dims;
            const PARAM_COUNT: ::core::option::Option<usize> = #sub_count;

            fn build<__R: ::nn::rand::Rng + ?::core::marker::Sized>(rng: &mut __R) -> Self {
                Self::new(rng)
            }

            fn summary_rows(&self) -> ::std::vec::Vec<::nn::summary::SummaryRow> {
                ::std::vec![#(#rows),*]
            }
        }

        #model_api
    }
}

/// One summary row: the layer in field `f`, and a nested model's or block's
/// rows under it; `connected` fills a graph's "Connected to" column.
pub(crate) fn row(
    f: &Ident,
    output: &[usize],
    parts: Option<&crate::layers::Parts>,
    connected: &[String],
    t: &Ident,
) -> TokenStream {
    // `r#type` is the field; `type` the name PyTorch and summaries use.
    let fname = f.unraw().to_string();
    let out = dims(output);
    let children = match parts {
        Some(p) => {
            let rows = &p.rows;
            quote!({
                let __nn_layer = &self.#f;
                #rows
            })
        }
        None => quote!(::std::vec::Vec::new()),
    };
    quote! {
        ::nn::summary::SummaryRow {
            name: ::std::string::String::from(#fname),
            type_name: ::std::string::String::from(::nn::layers::Layer::<#t>::type_name(&self.#f)),
            output_shape: ::std::vec::Vec::from(#out as &[usize]),
            params: ::nn::layers::Layer::<#t>::param_count(&self.#f)
                + ::nn::layers::Layer::<#t>::non_trainable_count(&self.#f),
            children: #children,
            connected_to: ::std::vec![#(::std::string::String::from(#connected)),*],
        }
    }
}

/// `Layer::visit_params` (or `visit_buffers`): each layer's under its field's
/// name (`hidden.weight`). The full names are built once and cached in
/// `cache`, so visiting the parameters on every optimizer step allocates
/// nothing.
pub(crate) fn visit(
    fields: &[&Ident],
    t: &Ident,
    method: TokenStream,
    cache: TokenStream,
) -> TokenStream {
    let collect = fields.iter().map(|f| {
        let prefix = format!("{}.", f.unraw());
        quote! {
            ::nn::layers::Layer::<#t>::#method(&self.#f, &mut |n, _| {
                let mut full = ::std::string::String::from(#prefix);
                full.push_str(n);
                names.push(full);
            });
        }
    });
    let visit = fields.iter().map(|f| {
        quote! {
            ::nn::layers::Layer::<#t>::#method(&self.#f, &mut |_, p| {
                f(&names[i], p);
                i += 1;
            });
        }
    });
    quote! {
        fn #method(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
            let names = self.#cache.get_or_init(|| {
                let mut names = ::std::vec::Vec::new();
                #(#collect)*
                names
            });
            let mut i = 0usize;
            #(#visit)*
        }
    }
}

/// The `Parameters`, `Fit` and `Model` impls and the inherent methods with
/// `Model`'s meaning, for a model (not a hidden chain).
///
/// The model provides `__nn_input`, `__nn_loss_grad` and `__nn_training`
/// fields, `__nn_forward(x)`, `__nn_backward(x, g, from_logits,
/// need_input_grad, report)` and `__nn_summary()`; `output` is the expression of its
/// output's view and `softmax` whether that output is a softmax (both of
/// `self`).
pub(crate) fn model_api(
    name: &Ident,
    t: &Ident,
    output: &TokenStream,
    softmax: &TokenStream,
    model_name: &str,
) -> TokenStream {
    quote! {
        /// The methods `Model` and `Layer` share, with `Model`'s meaning, so
        /// calls on the model need no disambiguation.
        #[allow(dead_code)]
        impl #name {
            /// The tape path: records the whole model on `x`'s tape (`nn::Model::forward`).
            pub fn forward(&self, x: &::nn::Var<#t>) -> ::nn::Var<#t> {
                <Self as ::nn::Model<#t>>::forward(self, x)
            }

            /// The static path's forward (`nn::Model::forward_train`).
            pub fn forward_train(
                &mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
            ) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                <Self as ::nn::Model<#t>>::forward_train(self, x)
            }

            /// The static path's backward from the output's gradient (`nn::Model::backward`).
            pub fn backward(&mut self, grad_output: ::nn::ndarray::ArrayViewD<'_, #t>) {
                <Self as ::nn::Model<#t>>::backward(self, grad_output)
            }

            /// Inference without tape or caches (`nn::Model::predict`).
            pub fn predict(&self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> {
                <Self as ::nn::Model<#t>>::predict(self, x)
            }

            /// Training mode (dropout active) or evaluation mode (`nn::Model::set_training`).
            pub fn set_training(&mut self, training: bool) {
                <Self as ::nn::Model<#t>>::set_training(self, training)
            }

            /// Every parameter with its name (`nn::Parameters::visit_params`).
            pub fn visit_params(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
                <Self as ::nn::Parameters<#t>>::visit_params(self, f)
            }

            /// Every buffer with its name (`nn::Parameters::visit_buffers`).
            pub fn visit_buffers(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
                <Self as ::nn::Parameters<#t>>::visit_buffers(self, f)
            }

            /// Number of trainable scalars (`nn::Model::param_count`).
            pub fn param_count(&self) -> usize {
                <Self as ::nn::Model<#t>>::param_count(self)
            }
        }

        impl ::nn::Parameters<#t> for #name {
            fn visit_params(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
                ::nn::layers::Layer::<#t>::visit_params(self, f)
            }

            fn visit_buffers(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
                ::nn::layers::Layer::<#t>::visit_buffers(self, f)
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
                loss: &::nn::train::TrainLoss<'_, #t>,
                outputs: &mut dyn ::core::ops::FnMut(::nn::ndarray::ArrayViewD<'_, #t>),
            ) -> f64 {
                ::nn::train::static_train_batch(self, x, target, loss, outputs)
            }
            fn predict_batch(&self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> {
                ::nn::Model::<#t>::predict(self, x)
            }
            fn set_training(&mut self, training: bool) {
                ::nn::Model::<#t>::set_training(self, training);
            }
            fn reseed(&self, seed: u64) {
                ::nn::Model::<#t>::reseed(self, seed);
            }
            fn is_training(&self) -> bool {
                ::nn::Model::<#t>::is_training(self)
            }
            fn input_shape(&self) -> ::core::option::Option<&[usize]> {
                ::core::option::Option::Some(<Self as ::nn::layers::Sublayer<#t>>::INPUT_SHAPE)
            }
        }

        impl ::nn::Model<#t> for #name {
            fn forward(&self, x: &::nn::Var<#t>) -> ::nn::Var<#t> {
                ::nn::layers::Layer::<#t>::forward(self, x)
            }

            fn forward_train(&mut self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                ::nn::layers::check_input(#model_name, x.shape(), <Self as ::nn::layers::Sublayer<#t>>::INPUT_SHAPE);
                // The input is kept for the backward pass; its buffer is lent
                // out for the forward pass and put back: no allocation.
                let mut input = ::core::mem::take(&mut self.__nn_input);
                ::nn::layers::ensure_shape(&mut input, x.shape());
                input.assign(&x);
                self.__nn_forward(input.view());
                self.__nn_input = input;
                #output
            }

            fn forward_train_lent(&mut self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                ::nn::layers::check_input(#model_name, x.shape(), <Self as ::nn::layers::Sublayer<#t>>::INPUT_SHAPE);
                self.__nn_forward(x);
                #output
            }

            fn backward(&mut self, grad_output: ::nn::ndarray::ArrayViewD<'_, #t>) {
                let input = ::core::mem::take(&mut self.__nn_input);
                self.backward_lent(input.view(), grad_output);
                self.__nn_input = input;
            }

            fn backward_lent(&mut self, x: ::nn::ndarray::ArrayViewD<'_, #t>, grad_output: ::nn::ndarray::ArrayViewD<'_, #t>) {
                {
                    let out = #output;
                    ::nn::layers::check_grad_output(#model_name, out.shape(), grad_output.shape());
                }
                self.__nn_backward(x, grad_output, false, false, true);
            }

            fn backward_loss(&mut self, loss: ::nn::loss::Loss, target: &::nn::loss::Target<'_, #t>) -> #t {
                let input = ::core::mem::take(&mut self.__nn_input);
                let value = self.backward_loss_lent(input.view(), loss, target);
                self.__nn_input = input;
                value
            }

            fn backward_loss_lent(&mut self, x: ::nn::ndarray::ArrayViewD<'_, #t>, loss: ::nn::loss::Loss, target: &::nn::loss::Target<'_, #t>) -> #t {
                let fused = loss.fuses_with_softmax() && #softmax;
                let out = #output;
                // The buffer is lent out for the backward pass and put back: no allocation.
                let mut grad = ::core::mem::take(&mut self.__nn_loss_grad);
                let value = if fused {
                    loss.softmax_fused_into(out, target, &mut grad)
                } else {
                    loss.value_and_grad_into(out, target, &mut grad)
                };
                self.__nn_backward(x, grad.view(), fused, false, true);
                self.__nn_loss_grad = grad;
                value
            }

            fn predict(&self, x: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> {
                ::nn::layers::Layer::<#t>::predict(self, x)
            }

            fn set_training(&mut self, training: bool) {
                ::nn::layers::Layer::<#t>::set_training(self, training)
            }

            fn is_training(&self) -> bool {
                self.__nn_training
            }

            fn reseed(&self, seed: u64) {
                ::nn::layers::Layer::<#t>::reseed(self, seed)
            }

            fn param_count(&self) -> usize {
                ::nn::layers::Layer::<#t>::param_count(self)
            }

            fn summary(&self) -> ::nn::summary::Summary {
                self.__nn_summary()
            }
        }
    }
}

/// After an error: the struct and its API with bodies that never run, so the
/// user's code that uses the model (or nests it) reports nothing further.
pub fn fallback(def: &ModelDef) -> TokenStream {
    let ModelDef {
        attrs, vis, name, ..
    } = def;
    let t = crate::validate::dtype(def);
    let name_str = name.to_string();
    quote! {
        #(#attrs)*
        #vis struct #name;

        #[allow(missing_docs)]
        impl #name {
            pub const PARAM_COUNT: usize = 0;
            pub const INPUT_SHAPE: &'static [usize] = &[];
            pub const OUTPUT_SHAPE: &'static [usize] = &[];
            pub fn new<__R: ::nn::rand::Rng + ?::core::marker::Sized>(_rng: &mut __R) -> Self { #name }
            pub fn with_seed(_seed: u64) -> Self { #name }
            pub fn forward(&self, _: &::nn::Var<#t>) -> ::nn::Var<#t> { unreachable!() }
            pub fn forward_train(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayViewD<'_, #t> { unreachable!() }
            pub fn backward(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>) { unreachable!() }
            pub fn predict(&self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> { unreachable!() }
            pub fn set_training(&mut self, _: bool) { unreachable!() }
            pub fn visit_params(&self, _: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) { unreachable!() }
            pub fn visit_buffers(&self, _: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) { unreachable!() }
            pub fn param_count(&self) -> usize { unreachable!() }
        }

        impl ::nn::Parameters<#t> for #name {
            fn visit_params(&self, _: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) { unreachable!() }
        }

        impl ::nn::train::Fit<#t> for #name {
            fn parameters(&self) -> &dyn ::nn::Parameters<#t> { unreachable!() }
            fn train_batch(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>, _: &::nn::loss::Target<'_, #t>, _: &::nn::train::TrainLoss<'_, #t>, _: &mut dyn ::core::ops::FnMut(::nn::ndarray::ArrayViewD<'_, #t>)) -> f64 { unreachable!() }
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

        // Empty shapes: the outer model's compile-time checks skip them.
        impl ::nn::layers::Layer<#t> for #name {
            fn type_name(&self) -> &'static str { unreachable!() }
            fn output_shape(&self, _: &[usize]) -> ::core::result::Result<::std::vec::Vec<usize>, ::std::string::String> { unreachable!() }
            fn forward(&self, _: &::nn::Var<#t>) -> ::nn::Var<#t> { unreachable!() }
            fn forward_train(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayViewD<'_, #t> { unreachable!() }
            fn output(&self) -> ::nn::ndarray::ArrayViewD<'_, #t> { unreachable!() }
            fn backward(&mut self, _: ::nn::ndarray::ArrayViewD<'_, #t>, _: ::nn::ndarray::ArrayViewD<'_, #t>, _: bool) -> ::nn::ndarray::ArrayViewD<'_, #t> { unreachable!() }
            fn predict(&self, _: ::nn::ndarray::ArrayViewD<'_, #t>) -> ::nn::ndarray::ArrayD<#t> { unreachable!() }
        }

        impl ::nn::layers::Sublayer<#t> for #name {
            const NAME: &'static str = #name_str;
            const INPUT_SHAPE: &'static [usize] = &[];
            const OUTPUT_SHAPE: &'static [usize] = &[];
            const PARAM_COUNT: ::core::option::Option<usize> = ::core::option::Option::Some(0);
            fn build<__R: ::nn::rand::Rng + ?::core::marker::Sized>(_: &mut __R) -> Self { unreachable!() }
            fn summary_rows(&self) -> ::std::vec::Vec<::nn::summary::SummaryRow> { unreachable!() }
        }
    }
}

/// `step` (the backward of layer field `f`) followed by the report of the
/// layer's gradients, final once its backward has run: a data-parallel step
/// starts summing them while the layers before still compute. Only a model
/// being trained (`report`) reports: as a layer of another model it may run
/// backward more than once a step.
pub(crate) fn watched(t: &Ident, f: &Ident, step: TokenStream) -> TokenStream {
    quote! {
        let __nn_watch = if report {
            ::nn::distributed::watch_gradients::<#t, _>(&self.#f)
        } else {
            ::core::default::Default::default()
        };
        #step
        __nn_watch.ready();
    }
}
