//! Checks a `functional!` declaration and builds its graph: tensors (the
//! inputs and each `let`), the layers that compute them (built-in, the
//! user's, nested models, merges), shapes inferred from the inputs, and each
//! mistake as an error spanned at the offending name.
//!
//! The statements are read in order, so every tensor is computed before it
//! is used: a graph written this way has no cycles, and a name used before
//! its `let` is reported as one.

use std::collections::{HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Visibility};

use super::parse::{GraphDef, Stmt};
use crate::args::{signed_lit, source, Args};
use crate::builtins::keras_name;
use crate::errors::{Errors, Mistake};
use crate::layers::{self, Parts, Position};
use crate::parse::{Arg, LayerDef};
use crate::validate::{auto_name, last_segment, layer_source, shape_text, spec_dims, Params};
use nn_spec::suggest::closest;

/// A checked graph, ready to expand.
pub struct Graph {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub dtype: Ident,
    /// The inputs in declaration order; input `i` is node `i`.
    pub inputs: Vec<(Ident, Vec<usize>)>,
    /// Every tensor, in the order computed (inputs first).
    pub nodes: Vec<Node>,
    /// The single-input layers, each a field, in order of declaration.
    pub layers: Vec<GraphLayer>,
    /// The nodes returned, in `-> (..)` order.
    pub outputs: Vec<usize>,
    pub params: Params,
}

/// One tensor of the graph.
pub struct Node {
    /// The name bound by its `let` (or the input's).
    pub binding: Ident,
    pub kind: NodeKind,
    /// One sample's shape.
    pub shape: Vec<usize>,
    /// How many times it is read: by layers (a merge reading it twice counts
    /// twice) and as an output.
    pub uses: usize,
}

pub enum NodeKind {
    /// Input `i`.
    Input(usize),
    /// Application `app` (0 for the first) of layer `layer` to node `input`.
    Apply {
        layer: usize,
        app: usize,
        input: usize,
    },
    /// A merge layer of its own (its field) over `inputs`.
    Merge {
        field: Ident,
        kind: MergeKind,
        /// Keras's axis, counting the batch axis (`Concatenate` only).
        axis: isize,
        inputs: Vec<usize>,
    },
}

/// Keras's merge layers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    Concatenate,
}

const MERGES: &[(&str, MergeKind)] = &[
    ("Add", MergeKind::Add),
    ("Subtract", MergeKind::Subtract),
    ("Multiply", MergeKind::Multiply),
    ("Average", MergeKind::Average),
    ("Maximum", MergeKind::Maximum),
    ("Minimum", MergeKind::Minimum),
    ("Concatenate", MergeKind::Concatenate),
];

impl MergeKind {
    pub fn type_name(self) -> &'static str {
        MERGES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("Merge", |(n, _)| *n)
    }
}

/// A single-input layer: a field, applied once or more (shared weights).
pub struct GraphLayer {
    pub field: Ident,
    pub span: Span,
    /// One sample's input and output shapes (the same at every application).
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    pub ty: TokenStream,
    pub ctor: TokenStream,
    pub check_shape: bool,
    pub parts: Option<Parts>,
    pub source: String,
    /// The nodes it computes, in order; the second and later applications
    /// run on instances made by `nn::layers::Share`, spanned here.
    pub apps: Vec<(usize, Span)>,
}

/// What a name means at a point of the graph.
#[derive(Clone)]
enum Binding {
    Tensor(usize),
    /// A layer declared to be shared: index into `Checker::declared`.
    Layer(usize),
    /// The result of a rejected statement: uses report nothing more.
    Poisoned,
}

/// A layer declared with `let shared = Dense(16);`, resolved when first applied.
struct Declared<'a> {
    name: Ident,
    def: LayerDef,
    stmt: &'a Stmt,
    /// Its index in `Graph::layers` once applied.
    layer: Option<usize>,
}

pub fn check(def: &GraphDef, errors: &mut Errors) -> Graph {
    if let Some(t) = &def.dtype {
        if t != "f32" && t != "f64" {
            errors.push(
                Mistake::DtypeNotFloat,
                t,
                format!("#[dtype({t})]: the element type must be f32 or f64"),
            );
        }
    }
    let dtype = match &def.dtype {
        Some(t) if t == "f32" || t == "f64" => t.clone(),
        _ => Ident::new("f32", Span::call_site()),
    };
    let mut c = Checker {
        def,
        dtype: &dtype,
        label: def.name.to_string(),
        env: HashMap::new(),
        nodes: Vec::new(),
        layers: Vec::new(),
        declared: Vec::new(),
        counters: HashMap::new(),
        taken: HashSet::new(),
        fields: HashSet::new(),
        params: Params::default(),
        later: HashMap::new(),
    };
    c.inputs(errors);
    if def.inputs.is_empty() {
        // Nothing to check the statements against.
        return c.finish(Vec::new());
    }
    if def.stmts.is_empty() {
        errors.push_at(
            Mistake::EmptyModel,
            def.body_span,
            format!(
                "graph `{}` computes nothing: add a layer, e.g. `let y = Dense(10)({});`",
                def.name,
                def.inputs
                    .first()
                    .map_or(String::from("x"), |i| i.name.to_string())
            ),
        );
    }
    // Names a `let` binds, and where first: to tell a cycle from a typo.
    for (i, s) in def.stmts.iter().enumerate() {
        c.later.entry(s.name.unraw().to_string()).or_insert(i);
    }
    // Layers declared to be shared take their `let` names as fields.
    for s in &def.stmts {
        if s.second.is_none() {
            c.taken.insert(s.name.unraw().to_string());
        }
    }
    for (i, s) in def.stmts.iter().enumerate() {
        c.stmt(i, s, errors);
    }
    let outputs = c.outputs(errors);
    // After another mistake, a tensor left unread is most likely its
    // consequence: one mistake, one error.
    if !errors.any() {
        c.report_unused(errors);
    }
    c.finish(outputs)
}

impl Checker<'_> {
    fn finish(self, outputs: Vec<usize>) -> Graph {
        let def = self.def;
        Graph {
            attrs: def.attrs.clone(),
            vis: def.vis.clone(),
            name: def.name.clone(),
            dtype: self.dtype.clone(),
            inputs: def
                .inputs
                .iter()
                .zip(&self.nodes)
                .map(|(i, n)| (i.name.clone(), n.shape.clone()))
                .collect(),
            nodes: self.nodes,
            layers: self.layers,
            outputs,
            params: self.params,
        }
    }
}

struct Checker<'a> {
    def: &'a GraphDef,
    dtype: &'a Ident,
    label: String,
    env: HashMap<String, Binding>,
    nodes: Vec<Node>,
    layers: Vec<GraphLayer>,
    declared: Vec<Declared<'a>>,
    counters: HashMap<String, usize>,
    /// Names of the declared layers (fields the automatic names skip).
    taken: HashSet<String>,
    /// Fields given so far.
    fields: HashSet<String>,
    params: Params,
    /// Each name a `let` binds, with the index of its first statement.
    later: HashMap<String, usize>,
}

impl<'a> Checker<'a> {
    fn inputs(&mut self, errors: &mut Errors) {
        let def = self.def;
        if def.inputs.is_empty() {
            errors.push_at(
                Mistake::NoGraphInputs,
                def.inputs_span,
                format!(
                    "graph `{}` has no inputs: declare each with its shape, `struct {}(x: input(784)) -> (y) {{ .. }}`",
                    def.name, def.name
                ),
            );
        }
        for (i, input) in def.inputs.iter().enumerate() {
            let name = input.name.unraw().to_string();
            let shape = spec_dims(&input.spec, &format!("{}:", input.name), errors);
            let duplicate = self.env.contains_key(&name);
            if duplicate {
                errors.push(
                    Mistake::DuplicateInput,
                    &input.name,
                    format!("duplicate input `{name}`: each input needs its own name"),
                );
            } else {
                self.env.insert(name, Binding::Tensor(i));
            }
            self.nodes.push(Node {
                binding: input.name.clone(),
                kind: NodeKind::Input(i),
                shape,
                uses: usize::from(duplicate),
            });
        }
    }

    fn stmt(&mut self, index: usize, s: &'a Stmt, errors: &mut Errors) {
        let result = self.resolve_stmt(index, s, errors);
        let name = s.name.unraw().to_string();
        self.env.insert(name, result);
    }

    /// What the statement binds its name to.
    fn resolve_stmt(&mut self, index: usize, s: &'a Stmt, errors: &mut Errors) -> Binding {
        let callee = last_segment(&s.callee);
        let single = s.callee.segments.len() == 1 && s.callee.leading_colon.is_none();
        // `shared(x)`: a declared layer applied, or a tensor called by mistake.
        if single && s.callee.segments[0].arguments.is_empty() {
            match self.env.get(&callee).cloned() {
                Some(Binding::Layer(d)) => return self.apply_declared(index, d, s, errors),
                Some(Binding::Tensor(_)) => {
                    errors.push(
                        Mistake::TensorAsLayer,
                        &s.callee,
                        format!(
                            "`{callee}` is a tensor, not a layer: apply a layer to it, `Dense(64)({callee})`; to apply one layer at several places, declare it first, `let shared = Dense(64);`, then `shared({callee})`"
                        ),
                    );
                    return Binding::Poisoned;
                }
                Some(Binding::Poisoned) => return Binding::Poisoned,
                None => {}
            }
        }
        let merge = single
            .then(|| MERGES.iter().find(|(n, _)| *n == callee))
            .flatten()
            .map(|(_, k)| *k);
        // Which group of parentheses holds the inputs: the second, or the
        // only one when it lists tensors.
        let (args, inputs) = match (&s.first, &s.second) {
            (first, Some(second)) => (first.as_ref(), Some(second)),
            (Some(first), None) => {
                if self.lists_tensors(first, &callee, merge.is_some()) {
                    (None, Some(first))
                } else {
                    (Some(first), None)
                }
            }
            (None, None) => (None, None),
        };
        let args = match args.map(|g| g.args()).transpose() {
            Ok(a) => a.unwrap_or_default(),
            Err(e) => {
                errors.push_at(Mistake::UnknownArgument, e.span(), e);
                return Binding::Poisoned;
            }
        };
        if let Some(kind) = merge {
            return self.merge(index, s, kind, &args, inputs, errors);
        }
        let def = LayerDef {
            field: None,
            kind: s.callee.clone(),
            args,
            // `Block(x)` applies a nested model (no constructor call);
            // `MyLayer()(x)` calls `MyLayer::new()`.
            parens: s.second.is_some() && s.first.is_some()
                || s.second.is_none() && inputs.is_none() && s.first.is_some(),
            body: None,
            output: None,
        };
        let def = LayerDef {
            body: s.body.clone(),
            output: s.output.clone(),
            ..def
        };
        let Some(inputs) = inputs else {
            // `let shared = Dense(16);`: a layer to apply later.
            let name = s.name.unraw().to_string();
            if !self.fields.insert(name.clone()) {
                errors.push(
                    Mistake::DuplicateField,
                    &s.name,
                    format!("duplicate layer name `{name}`: each layer needs its own name"),
                );
                return Binding::Poisoned;
            }
            self.declared.push(Declared {
                name: s.name.clone(),
                def,
                stmt: s,
                layer: None,
            });
            return Binding::Layer(self.declared.len() - 1);
        };
        let Some(input) = self.one_input(index, s, inputs, errors) else {
            return Binding::Poisoned;
        };
        let base = keras_name(&callee);
        let field = auto_name(&base, &mut self.counters, &self.taken);
        self.fields.insert(field.clone());
        let field = Ident::new(&field, s.callee.span());
        self.apply_new(index, field, &def, s, input, errors)
    }

    /// Whether the only group of parentheses lists the inputs: plain names,
    /// one of them a tensor (for `Activation(relu)`, whose argument is a
    /// function's name) — or any plain names for other layers, so a typo in
    /// a tensor's name is reported as one.
    fn lists_tensors(&self, group: &super::parse::Group, callee: &str, merge: bool) -> bool {
        let Some(names) = group.names() else {
            return false;
        };
        if names.is_empty() {
            return false;
        }
        let known = |n: &Ident| {
            let n = n.unraw().to_string();
            self.env.contains_key(&n) || self.later.contains_key(&n)
        };
        if merge || callee != "Activation" {
            true
        } else {
            names.iter().any(known)
        }
    }

    /// The tensors named in `group`, each counted as used; `None` after
    /// reporting an unknown one.
    fn tensors(
        &mut self,
        index: usize,
        group: &super::parse::Group,
        errors: &mut Errors,
    ) -> Option<Vec<usize>> {
        let Some(names) = group.names() else {
            errors.push_at(
                Mistake::UnknownTensor,
                group.span,
                "expected the names of the tensors the layer takes, `(x)` or `(a, b)`",
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for n in &names {
            let key = n.unraw().to_string();
            match self.env.get(&key) {
                Some(Binding::Tensor(t)) => out.push(*t),
                Some(Binding::Poisoned) => ok = false,
                Some(Binding::Layer(_)) => {
                    errors.push(
                        Mistake::LayerAsTensor,
                        n,
                        format!(
                            "`{n}` is a layer, not a tensor: apply it, `{n}(x)`, and pass the result"
                        ),
                    );
                    ok = false;
                }
                None => {
                    ok = false;
                    match self.later.get(&key) {
                        Some(&at) if at >= index => errors.push(
                            Mistake::UsedBeforeComputed,
                            n,
                            format!(
                                "`{n}` is used before its `let` computes it: a graph's statements compute each tensor before it is used, so it has no cycles"
                            ),
                        ),
                        _ => {
                            let hint = closest(
                                &key,
                                self.env
                                    .iter()
                                    .filter(|(_, b)| matches!(b, Binding::Tensor(_)))
                                    .map(|(k, _)| k.as_str()),
                            )
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                            errors.push(
                                Mistake::UnknownTensor,
                                n,
                                format!("no tensor `{n}` is computed before this{hint}"),
                            );
                        }
                    }
                }
            }
        }
        if !ok {
            return None;
        }
        for &t in &out {
            self.nodes[t].uses += 1;
        }
        Some(out)
    }

    /// The one tensor a single-input layer takes.
    fn one_input(
        &mut self,
        index: usize,
        s: &Stmt,
        group: &super::parse::Group,
        errors: &mut Errors,
    ) -> Option<usize> {
        let inputs = self.tensors(index, group, errors)?;
        match inputs.as_slice() {
            [one] => Some(*one),
            _ => {
                errors.push_at(
                    Mistake::LayerTakesOneInput,
                    group.span,
                    format!(
                        "`{}` takes one tensor, not {}; to combine tensors, merge them first: `Concatenate(a, b)`, `Add(a, b)`",
                        source(&s.callee),
                        inputs.len()
                    ),
                );
                None
            }
        }
    }

    /// A new layer `def` (field `field`) applied to `input`.
    fn apply_new(
        &mut self,
        index: usize,
        field: Ident,
        def: &LayerDef,
        s: &Stmt,
        input: usize,
        errors: &mut Errors,
    ) -> Binding {
        let shape = self.nodes[input].shape.clone();
        let resolved = {
            let at = Position {
                model: &self.def.name,
                label: &self.label,
                vis: &self.def.vis,
                field: &field,
                index,
            };
            layers::resolve(def, &shape, self.dtype, &at, errors)
        };
        let Some(r) = resolved else {
            return Binding::Poisoned;
        };
        match r.params {
            Some(n) => self.params.known = self.params.known.saturating_add(n),
            None => self.params.unknown = true,
        }
        if let Some(p) = &r.parts {
            self.params.add(p.params.clone());
        }
        let node = self.nodes.len();
        self.layers.push(GraphLayer {
            field,
            span: def.kind.span(),
            input: shape,
            output: r.output.clone(),
            ty: r.ty,
            ctor: r.ctor,
            check_shape: r.check_shape,
            parts: r.parts,
            source: layer_source(def),
            apps: vec![(node, s.callee.span())],
        });
        self.nodes.push(Node {
            binding: s.name.clone(),
            kind: NodeKind::Apply {
                layer: self.layers.len() - 1,
                app: 0,
                input,
            },
            shape: r.output,
            uses: 0,
        });
        Binding::Tensor(node)
    }

    /// `shared(x)`: declared layer `d` applied.
    fn apply_declared(&mut self, index: usize, d: usize, s: &Stmt, errors: &mut Errors) -> Binding {
        let Some(group) = s.first.as_ref().filter(|_| s.second.is_none()) else {
            errors.push(
                Mistake::LayerTakesOneInput,
                &s.callee,
                format!(
                    "`{}` is a layer declared above: apply it to one tensor, `{}(x)`",
                    s.name, s.callee.segments[0].ident
                ),
            );
            return Binding::Poisoned;
        };
        let Some(input) = self.one_input(index, s, group, errors) else {
            return Binding::Poisoned;
        };
        match self.declared[d].layer {
            None => {
                let (field, def) = (self.declared[d].name.clone(), self.declared[d].def.clone());
                let decl_stmt = self.declared[d].stmt;
                let b = self.apply_new(index, field, &def, decl_stmt, input, errors);
                if let Binding::Tensor(node) = b {
                    // The tensor is this statement's, spanned at its callee.
                    self.nodes[node].binding = s.name.clone();
                    let layer = self.layers.len() - 1;
                    self.layers[layer].apps[0].1 = s.callee.span();
                    self.declared[d].layer = Some(layer);
                }
                b
            }
            Some(layer) => {
                let shape = self.nodes[input].shape.clone();
                let l = &self.layers[layer];
                if shape != l.input {
                    errors.push_at(
                        Mistake::SharedLayerShapeMismatch,
                        group.span,
                        format!(
                            "the shared layer `{}` was first applied to {}, here to {}: one layer's weights fit one input shape",
                            l.field,
                            shape_text(&l.input),
                            shape_text(&shape)
                        ),
                    );
                    return Binding::Poisoned;
                }
                let node = self.nodes.len();
                let app = l.apps.len();
                let output = l.output.clone();
                self.layers[layer].apps.push((node, s.callee.span()));
                self.nodes.push(Node {
                    binding: s.name.clone(),
                    kind: NodeKind::Apply { layer, app, input },
                    shape: output,
                    uses: 0,
                });
                Binding::Tensor(node)
            }
        }
    }

    fn merge(
        &mut self,
        index: usize,
        s: &Stmt,
        kind: MergeKind,
        args: &[Arg],
        inputs: Option<&super::parse::Group>,
        errors: &mut Errors,
    ) -> Binding {
        let name = kind.type_name();
        let reader = Args::new(name, args);
        let axis_expr = (kind == MergeKind::Concatenate)
            .then(|| reader.take_positional_or_named("axis"))
            .flatten();
        let args_ok = reader.finish(errors);
        let Some(group) = inputs else {
            errors.push(
                Mistake::MergeInputCount,
                &s.callee,
                format!(
                    "`{name}` merges tensors: apply it to two or more, `let y = {name}(a, b);`"
                ),
            );
            return Binding::Poisoned;
        };
        let Some(ins) = self.tensors(index, group, errors) else {
            return Binding::Poisoned;
        };
        if !args_ok {
            return Binding::Poisoned;
        }
        let count_ok = match kind {
            MergeKind::Subtract => ins.len() == 2,
            _ => ins.len() >= 2,
        };
        if !count_ok {
            let need = if kind == MergeKind::Subtract {
                "exactly two tensors, `a - b`"
            } else {
                "two or more tensors"
            };
            errors.push_at(
                Mistake::MergeInputCount,
                group.span,
                format!("`{name}` takes {need}, not {}", ins.len()),
            );
            return Binding::Poisoned;
        }
        let shapes: Vec<&Vec<usize>> = ins.iter().map(|&i| &self.nodes[i].shape).collect();
        let listed = || {
            ins.iter()
                .map(|&i| {
                    format!(
                        "`{}` {}",
                        self.nodes[i].binding,
                        shape_text(&self.nodes[i].shape)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut axis = -1isize;
        let output = if kind == MergeKind::Concatenate {
            if let Some(e) = axis_expr {
                match signed_lit(e) {
                    Some((neg, syn::Lit::Int(i))) => match i.base10_parse::<isize>() {
                        Ok(v) => axis = if neg { -v } else { v },
                        Err(_) => {
                            errors.push(Mistake::ExpectedInteger, e, "`axis` must be an integer");
                            return Binding::Poisoned;
                        }
                    },
                    _ => {
                        errors.push(
                            Mistake::ExpectedInteger,
                            e,
                            format!("`axis` must be an integer, found `{}`", source(e)),
                        );
                        return Binding::Poisoned;
                    }
                }
            }
            let rank = shapes[0].len() as isize + 1;
            let a = if axis < 0 { axis + rank } else { axis };
            if a < 1 || a >= rank {
                let at: TokenStream = match axis_expr {
                    Some(e) => quote::quote!(#e),
                    None => quote::ToTokens::to_token_stream(&s.callee),
                };
                errors.push(
                    Mistake::ConcatenateAxisOutOfRange,
                    at,
                    format!(
                        "`Concatenate(axis = {axis})` is out of range for {}: the axes of a sample are 1..={} (or -1..=-{}), as in Keras; axis 0 is the batch",
                        shape_text(shapes[0]),
                        rank - 1,
                        rank - 1
                    ),
                );
                return Binding::Poisoned;
            }
            let k = (a - 1) as usize;
            let fits = shapes.iter().all(|sh| {
                sh.len() == shapes[0].len()
                    && sh
                        .iter()
                        .zip(shapes[0].iter())
                        .enumerate()
                        .all(|(i, (x, y))| i == k || x == y)
            });
            if !fits {
                errors.push_at(
                    Mistake::MergeShapeMismatch,
                    group.span,
                    format!(
                        "`Concatenate(axis = {axis})` joins tensors whose other axes agree, but got {}",
                        listed()
                    ),
                );
                return Binding::Poisoned;
            }
            let mut out = shapes[0].clone();
            out[k] = shapes.iter().map(|sh| sh[k]).sum();
            out
        } else {
            if shapes.iter().any(|sh| *sh != shapes[0]) {
                errors.push_at(
                    Mistake::MergeShapeMismatch,
                    group.span,
                    format!(
                        "`{name}` combines tensors of one shape, but got {}",
                        listed()
                    ),
                );
                return Binding::Poisoned;
            }
            shapes[0].clone()
        };
        let field = auto_name(&keras_name(name), &mut self.counters, &self.taken);
        self.fields.insert(field.clone());
        let node = self.nodes.len();
        self.nodes.push(Node {
            binding: s.name.clone(),
            kind: NodeKind::Merge {
                field: Ident::new(&field, s.callee.span()),
                kind,
                axis,
                inputs: ins,
            },
            shape: output,
            uses: 0,
        });
        Binding::Tensor(node)
    }

    fn outputs(&mut self, errors: &mut Errors) -> Vec<usize> {
        let def = self.def;
        if def.outputs.is_empty() {
            errors.push_at(
                Mistake::NoGraphOutputs,
                def.outputs_span,
                format!(
                    "graph `{}` returns nothing: name its outputs after the inputs, `-> (y)` or `-> (y, aux)`",
                    def.name
                ),
            );
        }
        let mut out = Vec::new();
        for o in &def.outputs {
            let key = o.unraw().to_string();
            match self.env.get(&key) {
                Some(Binding::Tensor(t)) => {
                    self.nodes[*t].uses += 1;
                    out.push(*t);
                }
                Some(Binding::Poisoned) => {}
                Some(Binding::Layer(_)) => errors.push(
                    Mistake::LayerAsTensor,
                    o,
                    format!("`{o}` is a layer, not a tensor: return what it computes, `let y = {o}(x);` … `-> (y)`"),
                ),
                None => {
                    let hint = closest(
                        &key,
                        self.env
                            .iter()
                            .filter(|(_, b)| matches!(b, Binding::Tensor(_)))
                            .map(|(k, _)| k.as_str()),
                    )
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                    errors.push(
                        Mistake::OutputNotComputed,
                        o,
                        format!("output `{o}` is never computed: no `let {o} = ..` in the graph{hint}"),
                    );
                }
            }
        }
        out
    }

    /// Tensors computed and never read, layers declared and never applied.
    /// A name rebound before its first tensor was read is reported there.
    fn report_unused(&self, errors: &mut Errors) {
        for n in &self.nodes {
            if n.uses > 0 {
                continue;
            }
            let msg = match n.kind {
                NodeKind::Input(_) => format!(
                    "input `{}` is never used: every input must reach an output",
                    n.binding
                ),
                _ => format!(
                    "`{}` is computed but never used: pass it to a layer or return it in `-> (..)`",
                    n.binding
                ),
            };
            errors.push(Mistake::UnusedTensor, &n.binding, msg);
        }
        for d in &self.declared {
            if d.layer.is_none() {
                errors.push(
                    Mistake::UnusedLayer,
                    &d.name,
                    format!(
                        "layer `{}` is declared but never applied: apply it to a tensor, `let y = {}(x);` (to apply `{}` at once, write `{}(..)(x)`)",
                        d.name,
                        d.name,
                        source(&d.stmt.callee),
                        source(&d.stmt.callee)
                    ),
                );
            }
        }
    }
}
