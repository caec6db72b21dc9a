//! `Display` and `Debug` of a [`Var`]: its values as PyTorch prints a tensor.
//!
//! The layout follows `torch/_tensor_str.py` with its default print options
//! (precision 4, line width 80, threshold 1000, 3 edge items):
//!
//! - one format for all elements, chosen from the nonzero finite ones: whole
//!   numbers print as `1.`; others with 4 decimals (`1.5000`); scientific
//!   notation (`1.0000e-05`) when the largest is over 1e8, or over 1000 times
//!   the smallest, or (for non-whole numbers) the smallest is under 1e-4;
//! - every element right-aligned to the widest, rows nested in brackets and
//!   wrapped at 80 columns;
//! - over 1000 elements, only the first and last 3 indices of each axis,
//!   with `...` between;
//! - suffixes: `dtype=torch.float64` for `f64`, and `requires_grad=True` on
//!   a leaf that needs a gradient or `grad_fn=<…Backward>` on an op's result
//!   that does.
//!
//! A precision in the format string replaces the 4 decimals
//! (`format!("{x:.2}")`, as `torch.set_printoptions(precision=2)`).

use std::fmt;

use ndarray::{ArrayViewD, Axis};

use super::{Value, Var};
use crate::Float;

/// `torch.set_printoptions` defaults.
const LINE_WIDTH: usize = 80;
const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
const PREFIX: &str = "tensor(";

impl<T: Float> fmt::Display for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut suffixes = Vec::new();
        if T::DTYPE == "F64" {
            // `float32` is PyTorch's default dtype, shown without a suffix.
            suffixes.push("dtype=torch.float64".into());
        }
        match self.op_name() {
            Some(op) => suffixes.push(format!("grad_fn=<{}Backward>", camel_case(op))),
            None if self.requires_grad() => suffixes.push("requires_grad=True".into()),
            None => {}
        }
        let precision = f.precision().unwrap_or(4);
        let text = self.with_value(|v| repr(v.view(), precision, suffixes));
        f.write_str(&text)
    }
}

impl<T: Float> fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let precision = f.precision().unwrap_or(4);
        let kind = {
            let nodes = self.tape().nodes();
            let node = &nodes[self.id()];
            match (&node.value, &node.op) {
                (Value::Param(_), _) => "param",
                (_, Some(op)) => op.name(),
                (_, None) if node.requires_grad => "leaf",
                (_, None) => "constant",
            }
        };
        let values = self.with_value(|v| repr(v.view(), precision, Vec::new()));
        f.debug_struct("Var")
            .field("id", &self.id())
            .field("shape", &self.shape())
            .field("op", &kind)
            .field("requires_grad", &self.requires_grad())
            .field("value", &Raw(&values))
            .finish()
    }
}

/// Writes a string as it is, inside a `Debug` struct.
struct Raw<'a>(&'a str);

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl<T: Float> Var<T> {
    /// The recorded op's name, if this variable is an op's result that
    /// backward will differentiate.
    fn op_name(&self) -> Option<&'static str> {
        self.tape().nodes()[self.id()]
            .op
            .as_ref()
            .map(|op| op.name())
    }
}

/// `max_pool2d` → `MaxPool2d`.
fn camel_case(name: &str) -> String {
    name.split('_')
        .flat_map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(c)
        })
        .collect()
}

/// `tensor(…)` with the suffixes, as `torch.Tensor.__repr__`.
fn repr<T: Float>(x: ArrayViewD<'_, T>, precision: usize, mut suffixes: Vec<String>) -> String {
    let body = if x.is_empty() {
        // PyTorch shows the shape of an empty tensor unless it is `[0]`.
        if x.ndim() != 1 {
            let dims: Vec<String> = x.shape().iter().map(|d| d.to_string()).collect();
            let tuple = match dims.len() {
                1 => format!("({},)", dims[0]),
                _ => format!("({})", dims.join(", ")),
            };
            suffixes.insert(0, format!("size={tuple}"));
        }
        "[]".to_string()
    } else {
        let summarize = x.len() > THRESHOLD;
        let mut shown = Vec::new();
        edge_values(x.view(), summarize, &mut shown);
        let style = Style::new(&shown, precision);
        nested(x, PREFIX.len(), summarize, &style)
    };
    with_suffixes(format!("{PREFIX}{body}"), &suffixes)
}

/// PyTorch's `_add_suffixes`: `, suffix` on the last line while it fits in 80
/// columns, else on a new line under the first bracket.
fn with_suffixes(mut s: String, suffixes: &[String]) -> String {
    // `len - rfind("\n") + 1` as PyTorch counts it (rfind is -1 on one line).
    let mut last = match s.rfind('\n') {
        Some(i) => s.len() - i + 1,
        None => s.len() + 2,
    };
    let indent = PREFIX.len();
    for suffix in suffixes {
        if last + suffix.len() + 2 > LINE_WIDTH {
            s.push_str(",\n");
            s.push_str(&" ".repeat(indent));
            last = indent + suffix.len();
        } else {
            s.push_str(", ");
            last += suffix.len() + 2;
        }
        s.push_str(suffix);
    }
    s.push(')');
    s
}

/// The indices of an axis of `n` that are printed.
fn shown_indices(n: usize, summarize: bool) -> Vec<usize> {
    if summarize && n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
    } else {
        (0..n).collect()
    }
}

/// The elements that will be printed (PyTorch's `get_summarized_data`): the
/// format is chosen from these only.
fn edge_values<T: Float>(x: ArrayViewD<'_, T>, summarize: bool, out: &mut Vec<f64>) {
    if x.ndim() == 0 {
        out.extend(x.iter().map(|v| v.as_f64()));
        return;
    }
    for i in shown_indices(x.len_of(Axis(0)), summarize) {
        edge_values(x.index_axis(Axis(0), i), summarize, out);
    }
}

/// PyTorch's `_Formatter` for floating-point tensors.
struct Style {
    int_mode: bool,
    sci_mode: bool,
    width: usize,
    precision: usize,
}

impl Style {
    fn new(values: &[f64], precision: usize) -> Self {
        let mut style = Style {
            int_mode: true,
            sci_mode: false,
            width: 1,
            precision,
        };
        let finite: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v != 0.0)
            .collect();
        if finite.is_empty() {
            return style;
        }
        let abs = finite.iter().map(|v| v.abs());
        let min = abs.clone().fold(f64::INFINITY, f64::min);
        let max = abs.fold(0.0, f64::max);
        style.int_mode = finite.iter().all(|v| *v == v.ceil());
        style.sci_mode = max / min > 1000.0 || max > 1.0e8 || (!style.int_mode && min < 1.0e-4);
        style.width = finite
            .iter()
            .map(|&v| match (style.sci_mode, style.int_mode) {
                (true, _) => scientific(v, precision).len(),
                (false, true) => fixed(v, 0).len() + 1,
                (false, false) => fixed(v, precision).len(),
            })
            .max()
            .unwrap_or(1);
        style
    }

    /// One element, right-aligned to the widest.
    fn format(&self, v: f64) -> String {
        let s = if self.sci_mode {
            scientific(v, self.precision)
        } else if self.int_mode {
            let mut s = fixed(v, 0);
            if v.is_finite() {
                s.push('.');
            }
            s
        } else {
            fixed(v, self.precision)
        };
        format!("{s:>width$}", width = self.width)
    }
}

/// Python's `f"{v:.{p}f}"` (`nan`, `inf` spelled as Python does).
fn fixed(v: f64, precision: usize) -> String {
    match non_finite(v) {
        Some(s) => s.into(),
        None => format!("{v:.precision$}"),
    }
}

/// Python's `f"{v:.{p}e}"`: a signed exponent of at least two digits.
fn scientific(v: f64, precision: usize) -> String {
    if let Some(s) = non_finite(v) {
        return s.into();
    }
    let s = format!("{v:.precision$e}");
    let (mantissa, exp) = s.split_once('e').expect("Rust writes an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

fn non_finite(v: f64) -> Option<&'static str> {
    match v {
        v if v.is_nan() => Some("nan"),
        v if v == f64::INFINITY => Some("inf"),
        v if v == f64::NEG_INFINITY => Some("-inf"),
        _ => None,
    }
}

/// PyTorch's `_tensor_str_with_formatter`: nested brackets, `indent` columns
/// in from the left margin.
fn nested<T: Float>(x: ArrayViewD<'_, T>, indent: usize, summarize: bool, style: &Style) -> String {
    match x.ndim() {
        0 => style.format(x.iter().next().expect("one element").as_f64()),
        1 => vector(x, indent, summarize, style),
        dim => {
            let n = x.len_of(Axis(0));
            let mut slices: Vec<String> = Vec::new();
            for (j, i) in shown_indices(n, summarize).into_iter().enumerate() {
                if summarize && n > 2 * EDGE_ITEMS && j == EDGE_ITEMS {
                    slices.push("...".into());
                }
                slices.push(nested(
                    x.index_axis(Axis(0), i),
                    indent + 1,
                    summarize,
                    style,
                ));
            }
            let sep = format!(",{}{}", "\n".repeat(dim - 1), " ".repeat(indent + 1));
            format!("[{}]", slices.join(&sep))
        }
    }
}

/// PyTorch's `_vector_str`: as many elements per line as fit in 80 columns.
fn vector<T: Float>(x: ArrayViewD<'_, T>, indent: usize, summarize: bool, style: &Style) -> String {
    let per_line = (LINE_WIDTH.saturating_sub(indent) / (style.width + 2)).max(1);
    let n = x.len();
    let mut items: Vec<String> = Vec::new();
    for (j, i) in shown_indices(n, summarize).into_iter().enumerate() {
        if summarize && n > 2 * EDGE_ITEMS && j == EDGE_ITEMS {
            items.push(" ...".into());
        }
        items.push(style.format(x[&[i][..]].as_f64()));
    }
    let lines: Vec<String> = items.chunks(per_line).map(|l| l.join(", ")).collect();
    format!(
        "[{}]",
        lines.join(&format!(",\n{}", " ".repeat(indent + 1)))
    )
}
