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
    /// A graph's layer: the tensors it reads, as Keras's "Connected to"
    /// column names them (`dense[1][0]`: the output of the second
    /// application of `dense`); empty in a sequential model and for inputs.
    pub connected_to: Vec<String>,
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
    /// A graph (`functional!`): printed with Keras's "Connected to" column.
    pub connections: bool,
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
        if self.connections {
            writeln!(f, "Model: \"{}\"", self.name)?;
            render_graph(f, &self.rows)?;
            return self.totals(f);
        }
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
        self.totals(f)
    }

    /// The three lines of counts under the table.
    fn totals(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// Keras 3's table for a functional model, as it prints outside a terminal:
/// four columns of fixed widths, each cell wrapped at spaces and a word too
/// long for its column cut with `…` (what `rich` does with Keras's
/// settings).
fn render_graph(f: &mut fmt::Formatter<'_>, rows: &[SummaryRow]) -> fmt::Result {
    const W: [usize; 4] = [19, 17, 10, 17];
    let header = ["Layer (type)", "Output Shape", "Param #", "Connected to"];
    let line = |l: &str, m: &str, r: &str, fill: &str| {
        let cols: Vec<String> = W.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{l}{}{r}", cols.join(m))
    };
    let print = |f: &mut fmt::Formatter<'_>, cells: [Vec<String>; 4], bar: &str| {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            let mut out = String::new();
            for (c, (cell, w)) in cells.iter().zip(W).enumerate() {
                let text = cell.get(i).map_or("", String::as_str);
                let pad = " ".repeat(w - text.chars().count());
                // The parameter count is right-aligned, as Keras's.
                if c == 2 {
                    out.push_str(&format!("{bar} {pad}{text} "));
                } else {
                    out.push_str(&format!("{bar} {text}{pad} "));
                }
            }
            writeln!(f, "{out}{bar}")?;
        }
        Ok(())
    };
    writeln!(f, "{}", line("┏", "┳", "┓", "━"))?;
    print(f, header.map(|h| vec![h.to_string()]), "┃")?;
    writeln!(f, "{}", line("┡", "╇", "┩", "━"))?;
    for (i, r) in rows.iter().enumerate() {
        let connected = if r.connected_to.is_empty() {
            String::from("-")
        } else {
            r.connected_to.join(", ")
        };
        let cells = [
            wrap(&format!("{} ({})", r.name, r.type_name), W[0]),
            wrap(&shape_text(&r.output_shape), W[1]),
            wrap(&thousands(r.params), W[2]),
            wrap(&connected, W[3]),
        ];
        print(f, cells, "│")?;
        if i + 1 < rows.len() {
            writeln!(f, "{}", line("├", "┼", "┤", "─"))?;
        }
    }
    writeln!(f, "{}", line("└", "┴", "┘", "─"))
}

/// `text` in lines of at most `width` characters, broken at spaces; a word
/// longer than a line keeps its first `width - 1` characters and `…`.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let fits = current.chars().count() + 1 + word.chars().count() <= width;
        if !current.is_empty() && fits {
            current.push(' ');
            current.push_str(word);
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        current = if word.chars().count() > width {
            let mut cut: String = word.chars().take(width - 1).collect();
            cut.push('…');
            cut
        } else {
            word.to_string()
        };
    }
    lines.push(current);
    lines
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

    /// The cells of Keras 3's summary of a two-branch model (printed by
    /// Keras 3.x with the torch backend, outside a terminal).
    #[test]
    fn graph_cells_wrap_like_keras() {
        assert_eq!(wrap("(None, 16, 26, 26)", 17), ["(None, 16, 26,", "26)"]);
        assert_eq!(
            wrap("global_average_pooling2d (GlobalAveragePooling2D)", 19),
            ["global_average_poo…", "(GlobalAveragePool…"]
        );
        assert_eq!(
            wrap("global_average_pooling2d[0][0], activation[0][0]", 17),
            ["global_average_p…", "activation[0][0]"]
        );
        assert_eq!(
            wrap("dense_2[0][0], dense_2[1][0]", 17),
            ["dense_2[0][0],", "dense_2[1][0]"]
        );
        assert_eq!(
            wrap("activation (Activation)", 19),
            ["activation", "(Activation)"]
        );
    }
}
