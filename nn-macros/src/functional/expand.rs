//! Code generation for a graph: the struct (one field per layer, one per
//! further application of a shared layer, one per merge), both paths over
//! the nodes in the order the statements compute them, parameters and
//! buffers by name, train/eval, Keras's summary with "Connected to"; and for
//! a graph of one input and one output, the `Layer`, `Sublayer`, `Model` and
//! `Fit` impls a `sequential!` model has.
//!
//! The static backward walks the nodes in reverse. A tensor read once gets
//! the gradient its reader returns, a view, with no copy; one read several
//! times (a branch, a shared input) sums its readers' gradients in a buffer
//! of its own, reused from step to step. A layer's parameters are reported
//! finished after the backward of its first application (a shared layer's
//! last), for data-parallel training to start summing them.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::Ident;

use super::graph::{Graph, MergeKind, NodeKind};
use crate::builtins::keras_name;
use crate::validate::shape_text;

fn dims(shape: &[usize]) -> TokenStream {
    quote!(&[#(#shape),*])
}

/// The field holding application `app` of layer `field` (the layer's own
/// for the first).
fn app_field(field: &Ident, app: usize) -> Ident {
    if app == 0 {
        field.clone()
    } else {
        format_ident!("__nn_{}_{}", field.unraw(), app)
    }
}

pub fn graph(g: &Graph) -> TokenStream {
    let Graph {
        attrs,
        vis,
        name,
        dtype: t,
        inputs,
        nodes,
        layers,
        outputs,
        params,
    } = g;
    let n_in = inputs.len();
    let n_out = outputs.len();
    let single = n_in == 1 && n_out == 1;
    let model_name = keras_name(&name.to_string());
    let is_output = |k: usize| outputs.contains(&k);

    // Gradient buffers: tensors read more than once, and inputs returned as
    // outputs (their gradient must outlive the arguments).
    let mut slot_of: HashMap<usize, usize> = HashMap::new();
    for (k, n) in nodes.iter().enumerate() {
        let input_out = matches!(n.kind, NodeKind::Input(_)) && is_output(k);
        if n.uses > 1 || input_out {
            let s = slot_of.len();
            slot_of.insert(k, s);
        }
    }
    let n_slots = slot_of.len();

    let field_of = |k: usize| -> Option<Ident> {
        match &nodes[k].kind {
            NodeKind::Input(_) => None,
            NodeKind::Apply { layer, app, .. } => Some(app_field(&layers[*layer].field, *app)),
            NodeKind::Merge { field, .. } => Some(field.clone()),
        }
    };
    // A node's value in the static path, an expression borrowing one field.
    let value = |k: usize| -> TokenStream {
        match &nodes[k].kind {
            NodeKind::Input(i) => quote!(self.__nn_in[#i].view()),
            NodeKind::Apply { layer, app, .. } => {
                let f = app_field(&layers[*layer].field, *app);
                quote!(::nn::layers::Layer::<#t>::output(&self.#f))
            }
            NodeKind::Merge { field, .. } => {
                quote!(::nn::layers::Merge::<#t>::output(&self.#field))
            }
        }
    };

    // Fields, their types and constructors.
    let mut fields = Vec::new();
    let mut ctors = Vec::new();
    let mut checks = Vec::new();
    let mut items = Vec::new();
    for l in layers {
        let (f, ty, ctor, span) = (&l.field, &l.ty, &l.ctor, l.span);
        let doc = format!("`{}`, output `{}`.", l.source, shape_text(&l.output));
        fields.push(quote!(#[doc = #doc] pub #f: #ty,));
        ctors.push(quote!(let #f: #ty = #ctor;));
        if l.check_shape {
            let (i, o) = (dims(&l.input), dims(&l.output));
            let label = format!("{name}: layer `{f}` ({})", l.source);
            checks.push(
                quote_spanned!(span=> ::nn::layers::check_declared_shape(&#f, #label, #i, #o);),
            );
        }
        if let Some(p) = &l.parts {
            items.push(p.items.clone());
        }
        for (app, (_, app_span)) in l.apps.iter().enumerate().skip(1) {
            let copy = app_field(f, app);
            let doc = format!("The application {} of `{f}`, sharing its weights.", app + 1);
            fields.push(quote!(#[doc = #doc] #[doc(hidden)] pub #copy: #ty,));
            ctors.push(
                quote_spanned!(*app_span=> let #copy: #ty = ::nn::layers::Share::share(&#f);),
            );
        }
    }
    let mut merge_fields = Vec::new();
    for n in nodes {
        if let NodeKind::Merge {
            field, kind, axis, ..
        } = &n.kind
        {
            let ty_name = format_ident!("{}", kind.type_name());
            let ctor = match kind {
                MergeKind::Concatenate => quote!(::nn::layers::Concatenate::new(#axis)),
                _ => quote!(::nn::layers::#ty_name::new()),
            };
            let doc = format!("`{}`, output `{}`.", kind.type_name(), shape_text(&n.shape));
            fields.push(quote!(#[doc = #doc] pub #field: ::nn::layers::#ty_name<#t>,));
            ctors.push(quote!(let #field: ::nn::layers::#ty_name<#t> = #ctor;));
            merge_fields.push(field.clone());
        }
    }
    let mut all_fields: Vec<Ident> = Vec::new();
    for l in layers {
        for app in 0..l.apps.len() {
            all_fields.push(app_field(&l.field, app));
        }
    }
    let layer_fields: Vec<&Ident> = layers.iter().map(|l| &l.field).collect();
    let every_field: Vec<Ident> = all_fields
        .iter()
        .cloned()
        .chain(merge_fields.iter().cloned())
        .collect();

    // The static forward pass.
    let forward = nodes.iter().enumerate().filter_map(|(k, n)| match &n.kind {
        NodeKind::Input(_) => None,
        NodeKind::Apply { input, .. } => {
            let f = field_of(k);
            let x = value(*input);
            Some(quote!(::nn::layers::Layer::<#t>::forward_train(&mut self.#f, #x);))
        }
        NodeKind::Merge { field, inputs, .. } => {
            let xs = inputs.iter().map(|&i| value(i));
            Some(quote!(::nn::layers::Merge::<#t>::forward_train(&mut self.#field, &[#(#xs),*]);))
        }
    });

    // The static backward pass, last node first.
    let g_local = |k: usize| format_ident!("__nn_g{}", k);
    let mut assigned = vec![false; nodes.len()];
    let mut backward = Vec::new();
    // Adds `c` (a view) to node `k`'s gradient.
    let contribute = |k: usize, c: TokenStream, assigned: &mut Vec<bool>| -> TokenStream {
        let to_input = matches!(nodes[k].kind, NodeKind::Input(_));
        // An input's gradient is only wanted when asked for.
        let guard = if to_input {
            quote!(need_input_grad)
        } else {
            quote!(true)
        };
        let code = match slot_of.get(&k) {
            Some(s) if !assigned[k] => quote! {{
                let c = #c;
                if #guard {
                    let dst = &mut self.__nn_grad[#s];
                    ::nn::layers::ensure_shape(dst, c.shape());
                    dst.assign(&c);
                }
            }},
            Some(s) => quote! {{
                let c = #c;
                if #guard {
                    self.__nn_grad[#s] += &c;
                }
            }},
            None => {
                let g = g_local(k);
                quote!(let #g = #c;)
            }
        };
        assigned[k] = true;
        code
    };
    for (i, &k) in outputs.iter().enumerate() {
        backward.push(contribute(k, quote!(gs[#i].view()), &mut assigned));
    }
    let grad_of = |k: usize| -> TokenStream {
        match slot_of.get(&k) {
            Some(s) => quote!(self.__nn_grad[#s].view()),
            None => {
                let g = g_local(k);
                quote!(#g)
            }
        }
    };
    // A layer's gradients are final after the backward of its first
    // application, the last one backward reaches: reported then, a
    // data-parallel step starts summing them while the nodes before still
    // compute.
    let mut first_app: HashMap<usize, usize> = HashMap::new();
    for (k, n) in nodes.iter().enumerate() {
        if let NodeKind::Apply { layer, .. } = &n.kind {
            first_app.entry(*layer).or_insert(k);
        }
    }
    for (k, n) in nodes.iter().enumerate().rev() {
        match &n.kind {
            NodeKind::Input(_) => {}
            NodeKind::Apply { input, layer, .. } => {
                let f = field_of(k);
                let x = value(*input);
                let g = grad_of(k);
                let need = if matches!(nodes[*input].kind, NodeKind::Input(_)) {
                    quote!(need_input_grad)
                } else {
                    quote!(true)
                };
                // An output read by nothing else may take the logits' gradient.
                let logits = outputs.iter().position(|&o| o == k).filter(|_| n.uses == 1);
                let call = match logits {
                    Some(i) => quote! {
                        if from_logits[#i] {
                            ::nn::layers::Layer::<#t>::backward_from_logits(&mut self.#f, #x, #g, #need)
                        } else {
                            ::nn::layers::Layer::<#t>::backward(&mut self.#f, #x, #g, #need)
                        }
                    },
                    None => {
                        quote!(::nn::layers::Layer::<#t>::backward(&mut self.#f, #x, #g, #need))
                    }
                };
                let step = contribute(*input, call, &mut assigned);
                backward.push(match f.as_ref().filter(|_| first_app[layer] == k) {
                    Some(f) => crate::expand::watched(t, f, step),
                    None => step,
                });
            }
            NodeKind::Merge { field, inputs, .. } => {
                let xs = inputs.iter().map(|&i| value(i));
                let g = grad_of(k);
                backward.push(
                    quote!(::nn::layers::Merge::<#t>::backward(&mut self.#field, &[#(#xs),*], #g);),
                );
                for (j, &i) in inputs.iter().enumerate() {
                    let c = quote!(::nn::layers::Merge::<#t>::input_grad(&self.#field, #j));
                    backward.push(contribute(i, c, &mut assigned));
                }
            }
        }
    }
    let first_input_grad = match slot_of.get(&0) {
        Some(s) => quote!(self.__nn_grad[#s].view()),
        None => {
            let g = g_local(0);
            quote!(#g)
        }
    };

    // Inference and the tape path, node by node into locals.
    let p_local = |k: usize| format_ident!("__nn_p{}", k);
    let pval = |k: usize| match &nodes[k].kind {
        NodeKind::Input(i) => quote!(xs[#i].view()),
        _ => {
            let p = p_local(k);
            quote!(#p.view())
        }
    };
    let first_field = |k: usize| match &nodes[k].kind {
        NodeKind::Apply { layer, .. } => Some(layers[*layer].field.clone()),
        _ => None,
    };
    let predict = nodes.iter().enumerate().filter_map(|(k, n)| {
        let p = p_local(k);
        match &n.kind {
            NodeKind::Input(_) => None,
            NodeKind::Apply { input, .. } => {
                let f = first_field(k);
                let x = pval(*input);
                Some(quote!(let #p = ::nn::layers::Layer::<#t>::predict(&self.#f, #x);))
            }
            NodeKind::Merge { field, inputs, .. } => {
                let xs = inputs.iter().map(|&i| pval(i));
                Some(
                    quote!(let #p = ::nn::layers::Merge::<#t>::predict(&self.#field, &[#(#xs),*]);),
                )
            }
        }
    });
    let predicted = outputs.iter().map(|&k| match &nodes[k].kind {
        NodeKind::Input(i) => quote!(xs[#i].to_owned()),
        _ => {
            let p = p_local(k);
            quote!(#p.clone())
        }
    });
    let v_local = |k: usize| format_ident!("__nn_v{}", k);
    let tape = nodes.iter().enumerate().map(|(k, n)| {
        let v = v_local(k);
        match &n.kind {
            NodeKind::Input(i) => quote!(let #v = xs[#i].clone();),
            NodeKind::Apply { input, .. } => {
                let f = first_field(k);
                let x = v_local(*input);
                quote!(let #v = ::nn::layers::Layer::<#t>::forward(&self.#f, &#x);)
            }
            NodeKind::Merge { field, inputs, .. } => {
                let xs = inputs.iter().map(|&i| v_local(i));
                quote!(let #v = ::nn::layers::Merge::<#t>::forward(&self.#field, &[#(&#xs),*]);)
            }
        }
    });
    let taped = outputs.iter().map(|&k| {
        let v = v_local(k);
        quote!(#v.clone())
    });
    let output_views: Vec<TokenStream> = outputs.iter().map(|&k| value(k)).collect();
    // Whether output `i` may take its logits' gradient: a layer's output
    // read by nothing else.
    let softmax_of = |i: usize| -> TokenStream {
        let k = outputs[i];
        match &nodes[k].kind {
            NodeKind::Apply { layer, app, .. } if nodes[k].uses == 1 => {
                let f = app_field(&layers[*layer].field, *app);
                quote!(::nn::layers::Layer::<#t>::softmax_output(&self.#f))
            }
            _ => quote!(false),
        }
    };

    // The summary, in Keras's order of layers.
    let rows = summary_rows(g, t);
    let non_trainable = layer_fields
        .iter()
        .map(|f| quote!(::nn::layers::Layer::<#t>::non_trainable_count(&self.#f)));
    let bytes = if t == "f64" { 8usize } else { 4 };
    let input_shapes = inputs.iter().map(|(_, s)| dims(s));
    let output_shapes = outputs.iter().map(|&k| dims(&nodes[k].shape));
    let input_names: Vec<String> = inputs.iter().map(|(n, _)| n.unraw().to_string()).collect();
    let output_names: Vec<String> = outputs
        .iter()
        .map(|&k| nodes[k].binding.unraw().to_string())
        .collect();
    let visit_params =
        crate::expand::visit(&layer_fields, t, quote!(visit_params), quote!(__nn_names));
    let visit_buffers = crate::expand::visit(
        &layer_fields,
        t,
        quote!(visit_buffers),
        quote!(__nn_buffer_names),
    );
    let known = params.known;
    let nested = &params.nested;
    let param_const = match (params.unknown, nested.is_empty()) {
        (false, true) => quote! {
            /// Trainable parameters, known when the model is declared.
            pub const PARAM_COUNT: usize = #known;
        },
        (false, false) => quote! {
            /// Trainable parameters, known when the model compiles.
            pub const PARAM_COUNT: usize = ::nn::layers::known_param_count(
                ::nn::layers::param_total(#known, &[#(<#nested as ::nn::layers::Sublayer<#t>>::PARAM_COUNT),*])
            );
        },
        _ => TokenStream::new(),
    };
    let sub_count = if params.unknown {
        quote!(::core::option::Option::None)
    } else {
        quote!(::nn::layers::param_total(#known, &[#(<#nested as ::nn::layers::Sublayer<#t>>::PARAM_COUNT),*]))
    };
    let labels_in: Vec<String> = input_names
        .iter()
        .map(|n| format!("{model_name}: input `{n}`"))
        .collect();
    let in_idx: Vec<usize> = (0..n_in).collect();

    let core = quote! {
        #(#items)*

        #(#attrs)*
        #vis struct #name {
            #(#fields)*
            /// The inputs of the last static forward pass, kept for backward.
            __nn_in: ::std::vec::Vec<::nn::ndarray::ArrayD<#t>>,
            /// Gradients of the tensors read more than once.
            __nn_grad: ::std::vec::Vec<::nn::ndarray::ArrayD<#t>>,
            __nn_input: ::nn::ndarray::ArrayD<#t>,
            __nn_loss_grad: ::nn::ndarray::ArrayD<#t>,
            __nn_loss_grads: ::std::vec::Vec<::nn::ndarray::ArrayD<#t>>,
            __nn_training: bool,
            __nn_names: ::std::sync::OnceLock<::std::vec::Vec<::std::string::String>>,
            __nn_buffer_names: ::std::sync::OnceLock<::std::vec::Vec<::std::string::String>>,
        }

        #[allow(dead_code)]
        impl #name {
            /// Each input's sample shape (without the batch axis), in declaration order.
            pub const INPUT_SHAPES: &'static [&'static [usize]] = &[#(#input_shapes),*];
            /// Each output's sample shape, in `-> (..)` order.
            pub const OUTPUT_SHAPES: &'static [&'static [usize]] = &[#(#output_shapes),*];
            /// The inputs' names.
            pub const INPUT_NAMES: &'static [&'static str] = &[#(#input_names),*];
            /// The outputs' names.
            pub const OUTPUT_NAMES: &'static [&'static str] = &[#(#output_names),*];
            #param_const

            /// A new model: Keras's default initialization drawn from `rng`.
            pub fn new<__R: ::nn::rand::Rng + ?::core::marker::Sized>(rng: &mut __R) -> Self {
                #(#ctors)*
                #(#checks)*
                #name {
                    #(#every_field,)*
                    __nn_in: (0..#n_in).map(|_| ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0]))).collect(),
                    __nn_grad: (0..#n_slots).map(|_| ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0]))).collect(),
                    __nn_input: ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0])),
                    __nn_loss_grad: ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0])),
                    __nn_loss_grads: (0..#n_out).map(|_| ::nn::ndarray::ArrayD::zeros(::nn::ndarray::IxDyn(&[0]))).collect(),
                    __nn_training: true,
                    __nn_names: ::std::sync::OnceLock::new(),
                    __nn_buffer_names: ::std::sync::OnceLock::new(),
                }
            }

            /// A new model initialized from a seeded RNG (reproducible).
            pub fn with_seed(seed: u64) -> Self {
                let mut rng = <::nn::rand::rngs::StdRng as ::nn::rand::SeedableRng>::seed_from_u64(seed);
                Self::new(&mut rng)
            }

            /// Keeps copies of the inputs for the backward pass (buffers reused).
            fn __nn_keep(&mut self, xs: [::nn::ndarray::ArrayViewD<'_, #t>; #n_in]) {
                #(
                    ::nn::layers::check_input(#labels_in, xs[#in_idx].shape(), Self::INPUT_SHAPES[#in_idx]);
                )*
                for (kept, x) in self.__nn_in.iter_mut().zip(xs.iter()) {
                    ::nn::layers::ensure_shape(kept, x.shape());
                    kept.assign(x);
                }
            }

            /// The static forward pass over the kept inputs, node by node.
            fn __nn_run(&mut self) {
                #(#forward)*
            }

            /// The static backward pass from the outputs' gradients `gs`
            /// (the logits' where `from_logits`); returns the first input's
            /// gradient when `need_input_grad`. With `report` (the graph is
            /// the model being trained, not a layer of another), each
            /// layer's parameters are reported once their gradients are
            /// final (`nn::distributed::watch_gradients`).
            #[allow(unused_variables, clippy::needless_borrow)]
            fn __nn_back<'__a>(
                &'__a mut self,
                gs: [::nn::ndarray::ArrayViewD<'_, #t>; #n_out],
                from_logits: [bool; #n_out],
                need_input_grad: bool,
                report: bool,
            ) -> ::nn::ndarray::ArrayViewD<'__a, #t> {
                #(#backward)*
                if need_input_grad {
                    #first_input_grad
                } else {
                    ::nn::layers::no_input_grad(&self.__nn_in[0])
                }
            }

            /// Inference without tape or caches, every output.
            fn __nn_predict(&self, xs: [::nn::ndarray::ArrayViewD<'_, #t>; #n_in]) -> [::nn::ndarray::ArrayD<#t>; #n_out] {
                #(
                    ::nn::layers::check_input(#labels_in, xs[#in_idx].shape(), Self::INPUT_SHAPES[#in_idx]);
                )*
                #(#predict)*
                [#(#predicted),*]
            }

            /// The tape path: records the graph on the inputs' tape.
            fn __nn_tape(&self, xs: [&::nn::Var<#t>; #n_in]) -> [::nn::Var<#t>; #n_out] {
                // The declared inputs, as the static path checks them.
                #(
                    xs[#in_idx].with_value(|v| ::nn::layers::check_input(#labels_in, v.shape(), Self::INPUT_SHAPES[#in_idx]));
                )*
                #(#tape)*
                [#(#taped),*]
            }

            /// Views of the outputs of the last static forward pass.
            fn __nn_outputs(&self) -> [::nn::ndarray::ArrayViewD<'_, #t>; #n_out] {
                [#(#output_views),*]
            }

            fn __nn_set_training(&mut self, training: bool) {
                self.__nn_training = training;
                #( ::nn::layers::Layer::<#t>::set_training(&mut self.#all_fields, training); )*
            }

            fn __nn_reseed(&self, seed: u64) {
                let mut part = 0u64;
                #(
                    ::nn::layers::Layer::<#t>::reseed(&self.#all_fields, ::nn::layers::mix_seed(seed, part));
                    part += 1;
                )*
                let _ = part;
            }

            fn __nn_rows(&self) -> ::std::vec::Vec<::nn::summary::SummaryRow> {
                ::std::vec![#(#rows),*]
            }

            /// The Keras summary, with its "Connected to" column.
            fn __nn_summary(&self) -> ::nn::summary::Summary {
                let trainable = 0 #(+ ::nn::layers::Layer::<#t>::param_count(&self.#layer_fields))*;
                let non_trainable = 0 #(+ #non_trainable)*;
                ::nn::summary::Summary {
                    name: ::std::string::String::from(#model_name),
                    trainable,
                    non_trainable,
                    rows: self.__nn_rows(),
                    bytes_per_param: #bytes,
                    connections: true,
                }
            }
        }

    };
    let visits = quote!(#visit_params #visit_buffers);
    let api = if single {
        single_api(
            g,
            &model_name,
            &sub_count,
            &softmax_of(0),
            &visits,
            &output_views[0],
        )
    } else {
        graph_api(g, &model_name, &softmax_of, &visits, &output_views)
    };
    quote! {
        #core
        #api
    }
}

/// The summary's rows: Keras's inputs and layers in its order (by depth
/// from the outputs, deepest first; within a depth, in the order a search
/// from the outputs first meets them), each layer once with every tensor it
/// reads.
fn summary_rows(g: &Graph, t: &Ident) -> Vec<TokenStream> {
    let order = keras_order(g);
    order
        .iter()
        .map(|op| match *op {
            Op::Input(i) => {
                let (n, shape) = &g.inputs[i];
                let name = n.unraw().to_string();
                let out = dims(shape);
                quote! {
                    ::nn::summary::SummaryRow {
                        name: ::std::string::String::from(#name),
                        type_name: ::std::string::String::from("InputLayer"),
                        output_shape: ::std::vec::Vec::from(#out as &[usize]),
                        params: 0,
                        children: ::std::vec::Vec::new(),
                        connected_to: ::std::vec::Vec::new(),
                    }
                }
            }
            Op::Layer(l) => {
                let layer = &g.layers[l];
                let f = &layer.field;
                let connected: Vec<String> = layer
                    .apps
                    .iter()
                    .filter_map(|(k, _)| match g.nodes[*k].kind {
                        NodeKind::Apply { input, .. } => Some(tensor_ref(g, input)),
                        _ => None,
                    })
                    .collect();
                crate::expand::row(f, &layer.output, layer.parts.as_ref(), &connected, t)
            }
            Op::Merge(k) => {
                let n = &g.nodes[k];
                let NodeKind::Merge {
                    field,
                    kind,
                    inputs,
                    ..
                } = &n.kind
                else {
                    return TokenStream::new();
                };
                let fname = field.unraw().to_string();
                let type_name = kind.type_name();
                let out = dims(&n.shape);
                let connected: Vec<String> = inputs.iter().map(|&i| tensor_ref(g, i)).collect();
                quote! {
                    ::nn::summary::SummaryRow {
                        name: ::std::string::String::from(#fname),
                        type_name: ::std::string::String::from(#type_name),
                        output_shape: ::std::vec::Vec::from(#out as &[usize]),
                        params: 0,
                        children: ::std::vec::Vec::new(),
                        connected_to: ::std::vec![#(::std::string::String::from(#connected)),*],
                    }
                }
            }
        })
        .collect()
}

/// `dense[1][0]`: the tensor node `k` as Keras names it, by the layer that
/// computed it and which of its applications.
fn tensor_ref(g: &Graph, k: usize) -> String {
    match &g.nodes[k].kind {
        NodeKind::Input(i) => format!("{}[0][0]", g.inputs[*i].0.unraw()),
        NodeKind::Apply { layer, app, .. } => {
            format!("{}[{app}][0]", g.layers[*layer].field.unraw())
        }
        NodeKind::Merge { field, .. } => format!("{}[0][0]", field.unraw()),
    }
}

/// An operation in Keras's sense: an input, a layer (all its
/// applications), a merge.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Op {
    Input(usize),
    Layer(usize),
    Merge(usize),
}

fn op_of(g: &Graph, k: usize) -> Op {
    match g.nodes[k].kind {
        NodeKind::Input(i) => Op::Input(i),
        NodeKind::Apply { layer, .. } => Op::Layer(layer),
        NodeKind::Merge { .. } => Op::Merge(k),
    }
}

fn parents(g: &Graph, k: usize) -> Vec<usize> {
    match &g.nodes[k].kind {
        NodeKind::Input(_) => Vec::new(),
        NodeKind::Apply { input, .. } => vec![*input],
        NodeKind::Merge { inputs, .. } => inputs.clone(),
    }
}

/// Keras 3's `Functional` order of operations (`_build_map` and the depth
/// sort in `keras/src/ops/function.py`).
fn keras_order(g: &Graph) -> Vec<Op> {
    let mut op_index: Vec<Op> = Vec::new();
    let mut visited = vec![false; g.nodes.len()];
    let mut post: Vec<usize> = Vec::new();
    fn visit(
        g: &Graph,
        k: usize,
        visited: &mut Vec<bool>,
        op_index: &mut Vec<Op>,
        post: &mut Vec<usize>,
    ) {
        if visited[k] {
            return;
        }
        let op = op_of(g, k);
        if !op_index.contains(&op) {
            op_index.push(op);
        }
        for p in parents(g, k) {
            visit(g, p, visited, op_index, post);
        }
        visited[k] = true;
        post.push(k);
    }
    for &o in &g.outputs {
        visit(g, o, &mut visited, &mut op_index, &mut post);
    }
    let mut node_depth: HashMap<usize, usize> = HashMap::new();
    let mut op_depth: Vec<(Op, usize)> = Vec::new();
    for &k in post.iter().rev() {
        let mut depth = *node_depth.entry(k).or_insert(0);
        let op = op_of(g, k);
        let previous = op_depth
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(0, |(_, d)| *d);
        depth = depth.max(previous);
        match op_depth.iter_mut().find(|(o, _)| *o == op) {
            Some(e) => e.1 = depth,
            None => op_depth.push((op, depth)),
        }
        node_depth.insert(k, depth);
        for p in parents(g, k) {
            let d = node_depth.entry(p).or_insert(0);
            *d = (*d).max(depth + 1);
        }
    }
    let mut ops: Vec<(Op, usize)> = op_depth;
    let index = |op: &Op| op_index.iter().position(|o| o == op).unwrap_or(usize::MAX);
    ops.sort_by(|a, b| b.1.cmp(&a.1).then(index(&a.0).cmp(&index(&b.0))));
    ops.into_iter().map(|(op, _)| op).collect()
}

/// A graph of one input and one output: a `Layer` (so it nests in a
/// `sequential!` model or another graph), a `Sublayer`, and a `Model` that
/// trains with `fit` through its static path, as a `sequential!` model.
fn single_api(
    g: &Graph,
    model_name: &str,
    sub_count: &TokenStream,
    softmax: &TokenStream,
    visits: &TokenStream,
    output_view: &TokenStream,
) -> TokenStream {
    let (name, t) = (&g.name, &g.dtype);
    let name_str = name.to_string();
    let input = dims(&g.inputs[0].1);
    let output = dims(&g.nodes[g.outputs[0]].shape);
    // The output as a borrow of one field, so the loss's buffers can be
    // taken beside it.
    let model_api = crate::expand::model_api(name, t, output_view, softmax, model_name);
    quote! {
        #[allow(dead_code)]
        impl #name {
            /// Input shape of one sample (without the batch axis).
            pub const INPUT_SHAPE: &'static [usize] = #input;
            /// Output shape of one sample.
            pub const OUTPUT_SHAPE: &'static [usize] = #output;

            fn __nn_forward<'__a>(
                &'__a mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
            ) -> ::nn::ndarray::ArrayViewD<'__a, #t> {
                self.__nn_keep([x]);
                self.__nn_run();
                let [y] = self.__nn_outputs();
                y
            }

            fn __nn_backward<'__a>(
                &'__a mut self,
                _x: ::nn::ndarray::ArrayViewD<'_, #t>,
                g: ::nn::ndarray::ArrayViewD<'_, #t>,
                from_logits: bool,
                need_input_grad: bool,
                report: bool,
            ) -> ::nn::ndarray::ArrayViewD<'__a, #t> {
                self.__nn_back([g], [from_logits], need_input_grad, report)
            }

            /// Keras's `model.summary()`, with its "Connected to" column (`nn::Model::summary`).
            pub fn summary(&self) -> ::nn::summary::Summary {
                self.__nn_summary()
            }
        }

        impl ::nn::layers::Layer<#t> for #name {
            fn type_name(&self) -> &'static str {
                "Functional"
            }

            fn output_shape(
                &self,
                input: &[usize],
            ) -> ::core::result::Result<::std::vec::Vec<usize>, ::std::string::String> {
                ::nn::layers::fixed_output_shape(#model_name, input, Self::INPUT_SHAPE, Self::OUTPUT_SHAPE)
            }

            fn forward(&self, x: &::nn::Var<#t>) -> ::nn::Var<#t> {
                let [y] = self.__nn_tape([x]);
                y
            }

            fn forward_train(
                &mut self,
                x: ::nn::ndarray::ArrayViewD<'_, #t>,
            ) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                self.__nn_forward(x)
            }

            fn output(&self) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                let [y] = self.__nn_outputs();
                y
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
                #softmax
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
                let [y] = self.__nn_predict([x]);
                y
            }

            #visits

            fn set_training(&mut self, training: bool) {
                self.__nn_set_training(training)
            }

            fn reseed(&self, seed: u64) {
                self.__nn_reseed(seed)
            }
        }

        impl ::nn::layers::Sublayer<#t> for #name {
            const NAME: &'static str = #name_str;
            const INPUT_SHAPE: &'static [usize] = #input;
            const OUTPUT_SHAPE: &'static [usize] = #output;
            const PARAM_COUNT: ::core::option::Option<usize> = #sub_count;

            fn build<__R: ::nn::rand::Rng + ?::core::marker::Sized>(rng: &mut __R) -> Self {
                Self::new(rng)
            }

            fn summary_rows(&self) -> ::std::vec::Vec<::nn::summary::SummaryRow> {
                self.__nn_rows()
            }
        }

        #model_api
    }
}

/// A graph of several inputs or outputs: a `GraphModel`, and inherent
/// methods taking and returning arrays of them.
fn graph_api(
    g: &Graph,
    model_name: &str,
    softmax_of: &dyn Fn(usize) -> TokenStream,
    visits: &TokenStream,
    outs: &[TokenStream],
) -> TokenStream {
    let (name, t) = (&g.name, &g.dtype);
    let n_in = g.inputs.len();
    let n_out = g.outputs.len();
    let idx: Vec<usize> = (0..n_out).collect();
    let softmax = (0..n_out).map(softmax_of);
    quote! {
        /// The graph's API with its inputs and outputs as arrays, in
        /// declaration order (`nn::GraphModel` takes slices).
        #[allow(dead_code)]
        impl #name {
            /// The tape path: records the graph on the inputs' tape.
            pub fn forward(&self, inputs: [&::nn::Var<#t>; #n_in]) -> [::nn::Var<#t>; #n_out] {
                self.__nn_tape(inputs)
            }

            /// The static path's forward: every output, as views of the layers' buffers.
            pub fn forward_train(
                &mut self,
                inputs: [::nn::ndarray::ArrayViewD<'_, #t>; #n_in],
            ) -> [::nn::ndarray::ArrayViewD<'_, #t>; #n_out] {
                self.__nn_keep(inputs);
                self.__nn_run();
                self.__nn_outputs()
            }

            /// The static path's backward from every output's gradient.
            pub fn backward(&mut self, grads: [::nn::ndarray::ArrayViewD<'_, #t>; #n_out]) {
                self.__nn_back(grads, [false; #n_out], false, true);
            }

            /// Inference without tape or caches: every output.
            pub fn predict(
                &self,
                inputs: [::nn::ndarray::ArrayViewD<'_, #t>; #n_in],
            ) -> [::nn::ndarray::ArrayD<#t>; #n_out] {
                self.__nn_predict(inputs)
            }

            /// Training mode (dropout active) or evaluation mode.
            pub fn set_training(&mut self, training: bool) {
                self.__nn_set_training(training)
            }

            /// Every parameter with its name (`nn::Parameters::visit_params`).
            pub fn visit_params(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
                <Self as ::nn::Parameters<#t>>::visit_params(self, f)
            }

            /// Every buffer with its name (`nn::Parameters::visit_buffers`).
            pub fn visit_buffers(&self, f: &mut dyn ::core::ops::FnMut(&str, &::nn::Param<#t>)) {
                <Self as ::nn::Parameters<#t>>::visit_buffers(self, f)
            }

            /// Number of trainable scalars.
            pub fn param_count(&self) -> usize {
                <Self as ::nn::GraphModel<#t>>::param_count(self)
            }

            /// Keras's `model.summary()`, with its "Connected to" column.
            pub fn summary(&self) -> ::nn::summary::Summary {
                self.__nn_summary()
            }
        }

        impl ::nn::Parameters<#t> for #name {
            #visits
        }

        impl ::nn::GraphModel<#t> for #name {
            const INPUTS: usize = #n_in;
            const OUTPUTS: usize = #n_out;
            const OUTPUT_NAMES: &'static [&'static str] = Self::OUTPUT_NAMES;

            fn forward(&self, inputs: &[&::nn::Var<#t>]) -> ::std::vec::Vec<::nn::Var<#t>> {
                self.__nn_tape(::nn::graph::exactly(#model_name, "inputs", inputs)).into()
            }

            fn forward_train(&mut self, inputs: &[::nn::ndarray::ArrayViewD<'_, #t>]) {
                self.__nn_keep(::nn::graph::exactly(#model_name, "inputs", inputs));
                self.__nn_run();
            }

            fn output(&self, i: usize) -> ::nn::ndarray::ArrayViewD<'_, #t> {
                match i {
                    #(#idx => #outs,)*
                    _ => ::nn::graph::no_such_output(#model_name, i, #n_out),
                }
            }

            fn softmax_output(&self, i: usize) -> bool {
                match i {
                    #(#idx => #softmax,)*
                    _ => false,
                }
            }

            fn backward(&mut self, grads: &[::nn::ndarray::ArrayViewD<'_, #t>], from_logits: &[bool]) {
                self.__nn_back(
                    ::nn::graph::exactly(#model_name, "output gradients", grads),
                    ::nn::graph::exactly(#model_name, "`from_logits` flags", from_logits),
                    false,
                    true,
                );
            }

            fn predict(&self, inputs: &[::nn::ndarray::ArrayViewD<'_, #t>]) -> ::std::vec::Vec<::nn::ndarray::ArrayD<#t>> {
                self.__nn_predict(::nn::graph::exactly(#model_name, "inputs", inputs)).into()
            }

            fn set_training(&mut self, training: bool) {
                self.__nn_set_training(training)
            }

            fn is_training(&self) -> bool {
                self.__nn_training
            }

            fn reseed(&self, seed: u64) {
                self.__nn_reseed(seed)
            }

            fn summary(&self) -> ::nn::summary::Summary {
                self.__nn_summary()
            }
        }
    }
}
