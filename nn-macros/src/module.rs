//! `#[derive(Module)]`: a struct of parts becomes a module whose parameters
//! and buffers are named by field (`conv.weight`, `blocks.0.bias`, as
//! PyTorch's `state_dict` names them), whose train/eval mode reaches every
//! part, and which trains with `fit` through the `forward` its author writes.
//!
//! Each field is read by its type as written: `Param<..>` is a parameter;
//! `Vec<..>` a list named by index (PyTorch's `ModuleList`); `Option<..>` a
//! part that may be absent; anything else a part implementing
//! `nn::module::Module` (every layer, every `sequential!` model, every
//! derived struct). `#[module(skip)]` leaves a field out (plain data).
//!
//! The element type is the struct's type parameter bounded by `Float` (the
//! impls are then written for `f32` and for `f64`), else
//! `#[module(dtype = f64)]`, else the `f32`/`f64` its fields' types name,
//! else `f32`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Data, DeriveInput, Fields, GenericArgument, GenericParam, Ident, PathArguments, Type,
    TypeParamBound,
};

/// How a field takes part.
enum Part {
    Param,
    Module,
    List(Box<Part>),
    Optional(Box<Part>),
}

/// `Vec<X>` → `("Vec", X)`, for the last path segment of a type.
fn wrapper(ty: &Type) -> Option<(String, &Type)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return Some((last.ident.to_string(), ty));
    };
    let inner = args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })?;
    Some((last.ident.to_string(), inner))
}

fn part(ty: &Type) -> Part {
    match wrapper(ty) {
        Some((name, _)) if name == "Param" => Part::Param,
        Some((name, inner)) if name == "Vec" => Part::List(Box::new(part(inner))),
        Some((name, inner)) if name == "Option" => Part::Optional(Box::new(part(inner))),
        _ => Part::Module,
    }
}

/// Whether a field carries `#[module(skip)]`; any other `module(..)` is an error.
fn skipped(field: &syn::Field) -> syn::Result<bool> {
    let mut skip = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("unknown `module` option on a field; the one there is is `#[module(skip)]`, for plain data"))
            }
        })?;
    }
    Ok(skip)
}

/// The first `f32` or `f64` written in a field's type (`Dense<f64, 4, 8>`).
fn written_float(input: &DeriveInput) -> Option<TokenStream> {
    let Data::Struct(data) = &input.data else {
        return None;
    };
    data.fields
        .iter()
        .filter(|f| !matches!(skipped(f), Ok(true)))
        .find_map(|f| {
            let ty = &f.ty;
            quote!(#ty).into_iter().find_map(|tt| match tt {
                proc_macro2::TokenTree::Ident(id) if id == "f32" || id == "f64" => {
                    Some(quote!(#id))
                }
                _ => None,
            })
        })
}

/// The element type: the struct's type parameter bounded by `Float`, else
/// `#[module(dtype = f64)]`, else the float its fields' types name, else `f32`.
fn dtype(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut found = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("no_forward") || meta.path.is_ident("no_inherent") {
                Ok(())
            } else if meta.path.is_ident("dtype") {
                let ty: Ident = meta.value()?.parse()?;
                if ty != "f32" && ty != "f64" {
                    return Err(syn::Error::new_spanned(&ty, format!("dtype must be `f32` or `f64`, not `{ty}`")));
                }
                if let Some(param) = element_param(input) {
                    return Err(syn::Error::new_spanned(&ty, format!("the struct is generic over its element type `{param}`: it derives for both `f32` and `f64`, so `dtype` has nothing to choose")));
                }
                found = Some(quote!(#ty));
                Ok(())
            } else {
                Err(meta.error("unknown `module` option on a struct; the options are `#[module(dtype = f64)]` (the default is the struct's `Float` type parameter, else the float its fields name, else `f32`), `#[module(no_forward)]` (a container of parts, not trained by itself) and `#[module(no_inherent)]` (no inherent `save`, `load`, `visit_params`, … beside the traits', for a struct with methods of those names)"))
            }
        })?;
    }
    if let Some(id) = element_param(input) {
        return Ok(quote!(#id));
    }
    Ok(found
        .or_else(|| written_float(input))
        .unwrap_or_else(|| quote!(f32)))
}

/// What one field contributes to `visit_params` (`buffers` false) or
/// `visit_buffers`, with `access` the expression of the field and `name` its
/// name so far.
fn visit(p: &Part, access: TokenStream, name: TokenStream, buffers: bool) -> TokenStream {
    let under = if buffers {
        quote!(::nn::module::visit_buffers_under)
    } else {
        quote!(::nn::module::visit_params_under)
    };
    match p {
        Part::Param if buffers => quote!(),
        Part::Param => quote!(f(#name, #access);),
        Part::Module => quote!(#under(#access, #name, f);),
        Part::List(inner) => {
            let body = visit(inner, quote!(item), quote!(&__name), buffers);
            quote! {
                for (i, item) in (#access).iter().enumerate() {
                    let __name = ::std::format!("{}.{}", #name, i);
                    #body
                }
            }
        }
        Part::Optional(inner) => {
            let body = visit(inner, quote!(item), name, buffers);
            quote! {
                if let ::core::option::Option::Some(item) = #access {
                    #body
                }
            }
        }
    }
}

/// What one field contributes to `set_training`.
fn train(p: &Part, access: TokenStream, t: &TokenStream) -> TokenStream {
    match p {
        Part::Param => quote!(),
        Part::Module => quote!(::nn::module::Module::<#t>::set_training(#access, training);),
        Part::List(inner) => {
            let body = train(inner, quote!(item), t);
            quote!(for item in (#access).iter_mut() { #body })
        }
        Part::Optional(inner) => {
            let body = train(inner, quote!(item), t);
            quote!(if let ::core::option::Option::Some(item) = #access { #body })
        }
    }
}

/// What one field contributes to `reseed`: its own stream, mixed from the
/// field's position (and a list item's index).
fn reseed(p: &Part, access: TokenStream, t: &TokenStream, index: u64) -> TokenStream {
    match p {
        Part::Param => quote!(),
        Part::Module => {
            quote!(::nn::module::Module::<#t>::reseed(#access, ::nn::layers::mix_seed(seed, #index));)
        }
        Part::List(inner) => {
            let body = reseed(inner, quote!(item), t, 0);
            quote! {
                for (k, item) in (#access).iter().enumerate() {
                    let seed = ::nn::layers::mix_seed(::nn::layers::mix_seed(seed, #index), k as u64);
                    #body
                }
            }
        }
        Part::Optional(inner) => {
            let body = reseed(inner, quote!(item), t, index);
            quote!(if let ::core::option::Option::Some(item) = #access { #body })
        }
    }
}

/// Whether the struct says `#[module(no_forward)]`: a container of parts,
/// with no `forward` of its own, so no `TapeModel`.
fn no_forward(input: &DeriveInput) -> bool {
    says(input, "no_forward")
}

/// Whether the struct says `#[module(option)]`.
fn says(input: &DeriveInput, option: &str) -> bool {
    input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("module"))
        .any(|attr| {
            let mut found = false;
            let _ = attr.parse_nested_meta(|meta| {
                found |= meta.path.is_ident(option);
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
                Ok(())
            });
            found
        })
}

/// Expands `#[derive(Module)]`.
pub fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "derive(Module) takes a struct with named fields, one per part",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new(
            data.fields.span(),
            "derive(Module) needs named fields: a part's name is its field's (`conv.weight`)",
        ));
    };
    let t = dtype(input)?;
    let (mut params, mut buffers, mut modes) = (Vec::new(), Vec::new(), Vec::new());
    let mut seeds = Vec::new();
    // PyTorch's `state_dict` lists a module's own parameters before its
    // children's, whatever order `__init__` assigned them in.
    let mut own = Vec::new();
    for field in &fields.named {
        if skipped(field)? {
            continue;
        }
        let Some(ident) = &field.ident else { continue };
        let name = ident.to_string().trim_start_matches("r#").to_string();
        let p = part(&field.ty);
        let span = field.ty.span();
        let v = visit(&p, quote!(&self.#ident), quote!(#name), false);
        let is_own = match &p {
            Part::Param => true,
            Part::Optional(inner) => matches!(**inner, Part::Param),
            _ => false,
        };
        if is_own {
            own.push(quote_spanned!(span=> #v));
        } else {
            params.push(quote_spanned!(span=> #v));
        }
        let b = visit(&p, quote!(&self.#ident), quote!(#name), true);
        buffers.push(quote_spanned!(span=> #b));
        let m = train(&p, quote!(&mut self.#ident), &t);
        modes.push(quote_spanned!(span=> #m));
        let r = reseed(&p, quote!(&self.#ident), &t, seeds.len() as u64);
        seeds.push(quote_spanned!(span=> #r));
    }
    own.extend(params);
    let params = own;
    let ident = &input.ident;
    // Generic over its element type, the struct gets one set of impls per
    // float: a generic `impl<T: Float> Module<T> for Net<T>` overlaps
    // `Module`'s blanket impl for layers (a downstream crate could make
    // `Net<Its>` a `Layer<Its>`), while `Net<f32>` and `Net<f64>` cannot.
    let param = element_param(input);
    let mut generics = input.generics.clone();
    if let Some(p) = &param {
        generics.params = (generics.params.iter())
            .filter(|g| !matches!(g, GenericParam::Type(t) if t.ident == *p))
            .cloned()
            .collect();
    }
    let (impl_g, _, _) = generics.split_for_impl();
    let (_, ty_g, where_g) = input.generics.split_for_impl();
    let forward = format_ident!("forward");
    let tape_model = (!no_forward(input)).then(|| {
        quote! {
            /// Trains with `fit` through the struct's own `forward`.
            impl #impl_g ::nn::train::TapeModel<#t> for #ident #ty_g #where_g {
                fn forward(&self, x: &::nn::Var<#t>) -> ::nn::Var<#t> {
                    // A decoy `forward` for every type: the inherent one the
                    // struct's author writes is found first; without one the
                    // call is ambiguous or ill-typed, a compile error instead
                    // of this method calling itself forever.
                    #[allow(non_camel_case_types, dead_code)]
                    trait derive_Module_needs_an_inherent_fn_forward_or_module_no_forward {
                        fn forward(&self) {}
                    }
                    impl<__S: ?Sized> derive_Module_needs_an_inherent_fn_forward_or_module_no_forward for __S {}
                    <#ident #ty_g>::#forward(self, x)
                }
                fn set_training(&mut self, training: bool) {
                    ::nn::module::Module::<#t>::set_training(self, training)
                }
                fn reseed(&self, seed: u64) {
                    ::nn::module::Module::<#t>::reseed(self, seed)
                }
            }
        }
    });
    // `#[module(no_inherent)]` leaves them out, for a struct that has
    // methods of those names itself.
    let inherent = (!says(input, "no_inherent")).then(|| {
        quote! {
        /// `Module`'s methods, inherent: callable without importing the
        /// trait, and never ambiguous with `Parameters`' or `TapeModel`'s of
        /// the same name.
        impl #impl_g #ident #ty_g #where_g {
            /// Calls `f` with every parameter and its name (`blocks.0.up.weight`).
            pub fn visit_params(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                ::nn::module::Module::<#t>::visit_params(self, f)
            }
            /// Calls `f` with every buffer (running statistics) and its name.
            pub fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                ::nn::module::Module::<#t>::visit_buffers(self, f)
            }
            /// Switches every part between training and evaluation.
            pub fn set_training(&mut self, training: bool) {
                ::nn::module::Module::<#t>::set_training(self, training)
            }
            /// Parameters and buffers by name, as PyTorch's `state_dict`.
            pub fn named_state(&self) -> ::std::vec::Vec<(::std::string::String, ::nn::Param<#t>)> {
                ::nn::module::Module::<#t>::named_state(self)
            }
            /// Saves [`Self::named_state`] as safetensors, atomically.
            pub fn save(
                &self,
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<(), ::nn::io::IoError> {
                ::nn::module::Module::<#t>::save(self, path)
            }
            /// Loads what [`Self::save`] (or PyTorch) wrote, by name; on
            /// error nothing changes.
            pub fn load(
                &mut self,
                path: impl ::core::convert::AsRef<::std::path::Path>,
            ) -> ::core::result::Result<(), ::nn::io::IoError> {
                ::nn::module::Module::<#t>::load(self, path)
            }
        }
        }
    });
    let impls = quote! {
        impl #impl_g ::nn::module::Module<#t> for #ident #ty_g #where_g {
            #[allow(unused_variables)]
            fn visit_params(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                #(#params)*
            }
            #[allow(unused_variables)]
            fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                #(#buffers)*
            }
            #[allow(unused_variables)]
            fn set_training(&mut self, training: bool) {
                #(#modes)*
            }
            #[allow(unused_variables)]
            fn reseed(&self, seed: u64) {
                #(#seeds)*
            }
        }

        impl #impl_g ::nn::Parameters<#t> for #ident #ty_g #where_g {
            fn visit_params(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                ::nn::module::Module::<#t>::visit_params(self, f)
            }
            fn visit_buffers(&self, f: &mut dyn FnMut(&str, &::nn::Param<#t>)) {
                ::nn::module::Module::<#t>::visit_buffers(self, f)
            }
        }

        #inherent

        #tape_model
    };
    Ok(match param {
        None => impls,
        Some(p) => [quote!(f32), quote!(f64)]
            .iter()
            .map(|float| substitute(impls.clone(), &p, float))
            .collect(),
    })
}

/// The struct's type parameter bounded by `Float` (`<T: Float>` or
/// `where T: Float`), if it has one.
fn element_param(input: &DeriveInput) -> Option<Ident> {
    let inline = input.generics.params.iter().find_map(|g| match g {
        GenericParam::Type(t) if t.bounds.iter().any(is_float_bound) => Some(t.ident.clone()),
        _ => None,
    });
    let in_where = || {
        let clause = input.generics.where_clause.as_ref()?;
        clause.predicates.iter().find_map(|p| match p {
            syn::WherePredicate::Type(t) if t.bounds.iter().any(is_float_bound) => {
                match &t.bounded_ty {
                    Type::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
                    _ => None,
                }
            }
            _ => None,
        })
    };
    inline.or_else(in_where)
}

fn is_float_bound(b: &TypeParamBound) -> bool {
    matches!(b, TypeParamBound::Trait(tb) if tb.path.segments.last().is_some_and(|s| s.ident == "Float"))
}

/// `tokens` with every `param` replaced by `float` (not a lifetime `'param`,
/// nor a field `.param`).
fn substitute(tokens: TokenStream, param: &Ident, float: &TokenStream) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    let mut out = TokenStream::new();
    let mut after_mark = false;
    for tt in tokens {
        let mark = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '\'' || p.as_char() == '.');
        match tt {
            TokenTree::Ident(id) if id == *param && !after_mark => out.extend(float.clone()),
            TokenTree::Group(g) => {
                let mut inner = Group::new(g.delimiter(), substitute(g.stream(), param, float));
                inner.set_span(g.span());
                out.extend([TokenTree::Group(inner)]);
            }
            other => out.extend([other]),
        }
        after_mark = mark;
    }
    out
}
