//! Keras's `model.summary()` table.

use std::fmt;

/// One row of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The field name (`"dense_1"`).
    pub name: String,
    /// The layer type (`"Dense"`).
    pub type_name: String,
    /// Output shape without the batch axis.
    pub output_shape: Vec<usize>,
    /// Trainable plus non-trainable scalars.
    pub params: usize,
    /// The rows of a nested model's layers (a `sequential!` model inside
    /// another, a `Residual` block's body and shortcut): shown by
    /// [`Summary::expanded`], empty for a plain layer.
    pub children: Vec<SummaryRow>,
}

/// A model's layers, shapes and parameter counts, displayed in Keras 3's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The model's name (the struct name in snake case).
    pub name: String,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
    /// Trainable scalars.
    pub trainable: usize,
    /// Non-trainable scalars.
    pub non_trainable: usize,
    /// Bytes per scalar (4 for `f32`).
    pub bytes_per_param: usize,
}

/// `1234567` as `"1,234,567"`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count as Keras prints it: `397.54 KB`, `0.00 B`.
fn human_bytes(bytes: usize) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", units[u])
}

/// `(None, 128)` or `(None, 32, 28, 28)`.
pub fn shape_text(shape: &[usize]) -> String {
    let mut s = String::from("(None");
    for d in shape {
        s.push_str(&format!(", {d}"));
    }
    s.push(')');
    s
}

impl Summary {
    /// The same table with every nested model's layers under its row,
    /// indented (Keras's `summary(expand_nested=True)`); [`Summary`]'s own
    /// `Display` shows a nested model as one row.
    pub fn expanded(&self) -> Expanded<'_> {
        Expanded(self)
    }

    fn render(&self, f: &mut fmt::Formatter<'_>, expand: bool) -> fmt::Result {
        let mut cells: Vec<[String; 3]> = Vec::new();
        for r in &self.rows {
            push_cells(&mut cells, r, 0, expand);
        }
        let header = ["Layer (type)", "Output Shape", "Param #"];
        let mut w = [31usize, 22, 13];
        for row in cells
            .iter()
            .chain(std::iter::once(&header.map(String::from)))
        {
            for (wi, c) in w.iter_mut().zip(row) {
                *wi = (*wi).max(c.chars().count());
            }
        }
        let line = |l: &str, m: &str, r: &str, fill: &str| {
            format!(
                "{l}{}{m}{}{m}{}{r}",
                fill.repeat(w[0] + 2),
                fill.repeat(w[1] + 2),
                fill.repeat(w[2] + 2)
            )
        };
        let row = |c: &[String; 3], bar: &str| {
            format!(
                "{bar} {:<a$} {bar} {:<b$} {bar} {:>c$} {bar}",
                c[0],
                c[1],
                c[2],
                a = w[0],
                b = w[1],
                c = w[2]
            )
        };
        writeln!(f, "Model: \"{}\"", self.name)?;
        writeln!(f, "{}", line("┏", "┳", "┓", "━"))?;
        writeln!(f, "{}", row(&header.map(String::from), "┃"))?;
        writeln!(f, "{}", line("┡", "╇", "┩", "━"))?;
        for (i, c) in cells.iter().enumerate() {
            writeln!(f, "{}", row(c, "│"))?;
            if i + 1 < cells.len() {
                writeln!(f, "{}", line("├", "┼", "┤", "─"))?;
            }
        }
        writeln!(f, "{}", line("└", "┴", "┘", "─"))?;
        let total = self.trainable + self.non_trainable;
        let b = self.bytes_per_param;
        writeln!(
            f,
            " Total params: {} ({})",
            thousands(total),
            human_bytes(total * b)
        )?;
        writeln!(
            f,
            " Trainable params: {} ({})",
            thousands(self.trainable),
            human_bytes(self.trainable * b)
        )?;
        write!(
            f,
            " Non-trainable params: {} ({})",
            thousands(self.non_trainable),
            human_bytes(self.non_trainable * b)
        )
    }
}

/// The cells of `row` at nesting `depth` (indented under its parent's),
/// then, when `expand`, its children's.
fn push_cells(cells: &mut Vec<[String; 3]>, row: &SummaryRow, depth: usize, expand: bool) {
    let indent = if depth == 0 {
        String::new()
    } else {
        format!("{}└ ", "  ".repeat(depth))
    };
    cells.push([
        format!("{indent}{} ({})", row.name, row.type_name),
        shape_text(&row.output_shape),
        thousands(row.params),
    ]);
    if expand {
        for child in &row.children {
            push_cells(cells, child, depth + 1, expand);
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, false)
    }
}

/// A [`Summary`] with nested models expanded: what [`Summary::expanded`]
/// returns, for printing.
#[derive(Clone, Copy, Debug)]
pub struct Expanded<'a>(&'a Summary);

impl fmt::Display for Expanded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.render(f, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_keras() {
        assert_eq!(thousands(101_770), "101,770");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        // 101,770 f32 parameters: Keras prints 397.54 KB
        assert_eq!(human_bytes(101_770 * 4), "397.54 KB");
        assert_eq!(human_bytes(0), "0.00 B");
        assert_eq!(shape_text(&[32, 28, 28]), "(None, 32, 28, 28)");
    }
}
