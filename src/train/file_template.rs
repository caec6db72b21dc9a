//! Keras's checkpoint file names: `"w.{epoch:02d}-{val_loss:.2f}.safetensors"`
//! filled from an epoch's logs, Python's format specs restricted to what a
//! file name needs (`[0][width][.precision][d|f|e]`).

use super::history::EpochLogs;

/// One `{…}` of a template: the name and its spec.
#[derive(Debug, PartialEq)]
struct Field<'a> {
    name: &'a str,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    kind: Option<char>,
}

/// A piece of a template: text, or a field to fill.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(String),
    Field(Field<'a>),
}

/// Splits `template` into text and fields; `{{` and `}}` are braces.
fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let message = |why: &str| format!("file name template `{template}`: {why}");
    let bad = |why: &str| Err(message(why));
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            text.push(c);
            rest = &rest[2..];
        } else if c == '}' {
            return bad("a `}` without its `{` (write `}}` for a brace)");
        } else if c == '{' {
            let Some(end) = rest.find('}') else {
                return bad("a `{` without its `}` (write `{{` for a brace)");
            };
            let inner = &rest[1..end];
            let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return bad(&format!("`{{{inner}}}` does not name a metric or `epoch`"));
            }
            pieces.push(Piece::Text(std::mem::take(&mut text)));
            pieces.push(Piece::Field(
                field(name, spec).map_err(|why| message(&why))?,
            ));
            rest = &rest[end + 1..];
        } else {
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

/// `name` with the spec after its colon: `[0][width][.precision][d|f|e]`.
fn field<'a>(name: &'a str, spec: &str) -> Result<Field<'a>, String> {
    let unsupported =
        || format!("`{{{name}:{spec}}}`: the format is not `[0][width][.precision][d|f|e]`");
    let (spec, kind) = match spec.chars().last() {
        Some(k @ ('d' | 'f' | 'e')) => (&spec[..spec.len() - 1], Some(k)),
        _ => (spec, None),
    };
    let zero = spec.starts_with('0');
    let (width, precision) = spec.split_once('.').unwrap_or((spec, ""));
    let number = |s: &str| s.parse::<usize>().map_err(|_| unsupported());
    let width = if width.is_empty() { 0 } else { number(width)? };
    let precision = if spec.contains('.') {
        Some(number(precision)?)
    } else {
        None
    };
    // Python's `.2` without a type counts significant digits: not taken.
    if precision.is_some() && !matches!(kind, Some('f' | 'e')) {
        return Err(unsupported());
    }
    Ok(Field {
        name,
        zero,
        width,
        precision,
        kind,
    })
}

/// The names a template reads from the logs, `epoch` aside.
pub(crate) fn metrics_named(template: &str) -> Result<Vec<&str>, String> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Field(f) if f.name != "epoch" => Some(f.name),
            _ => None,
        })
        .collect())
}

/// `template` filled from `logs`: `epoch` counts from 1, as Keras's does;
/// other names are the logs' metrics (`loss`, `val_accuracy`, `lr`, …).
pub(crate) fn fill(template: &str, logs: &EpochLogs) -> Result<String, String> {
    let mut out = String::new();
    for piece in parse(template)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Field(f) => {
                let value = if f.name == "epoch" {
                    logs.epoch as f64
                } else {
                    logs.get(f.name).ok_or_else(|| {
                        format!(
                            "file name template `{template}`: no `{}` in this epoch's logs",
                            f.name
                        )
                    })?
                };
                out.push_str(&render(&f, value, f.name == "epoch"));
            }
        }
    }
    Ok(out)
}

/// One field's text: Python's `format(value, spec)` for the specs [`field`] takes.
fn render(f: &Field<'_>, value: f64, integer: bool) -> String {
    let body = match (f.kind, f.precision) {
        (Some('d'), _) => format!("{}", value.round() as i64),
        (Some('e'), p) => python_exponent(format!("{:.*e}", p.unwrap_or(6), value)),
        (Some('f'), p) => format!("{:.*}", p.unwrap_or(6), value),
        (_, _) if integer => format!("{}", value as i64),
        // Python's `str` of a float keeps a `.0`.
        (_, _) if value.is_finite() && value.fract() == 0.0 => format!("{value:.1}"),
        (_, _) => format!("{value}"),
    };
    let pad = f.width.saturating_sub(body.chars().count());
    match (f.zero, body.strip_prefix('-')) {
        (true, Some(digits)) => format!("-{}{digits}", "0".repeat(pad)),
        (true, None) => format!("{}{body}", "0".repeat(pad)),
        (false, _) => format!("{}{body}", " ".repeat(pad)),
    }
}

/// Rust's `1.5e-3` as Python writes it: `1.5e-03`.
fn python_exponent(s: String) -> String {
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> EpochLogs {
        EpochLogs {
            epoch: 3,
            loss: 0.25,
            val_loss: Some(0.123456),
            val_metrics: vec![("val_accuracy".into(), 0.98765)],
            ..EpochLogs::default()
        }
    }

    /// Expected strings are Python's: `"w.{epoch:02d}-{val_loss:.2f}".format(
    /// epoch=3, val_loss=0.123456)` and so on.
    #[test]
    fn fills_as_python_formats() {
        let l = logs();
        let f = |t: &str| fill(t, &l).unwrap();
        assert_eq!(
            f("w.{epoch:02d}-{val_loss:.2f}.safetensors"),
            "w.03-0.12.safetensors"
        );
        assert_eq!(f("w{epoch}.st"), "w3.st");
        assert_eq!(f("{epoch:3d}|{epoch:03}"), "  3|003");
        assert_eq!(f("{val_accuracy:.3f}"), "0.988");
        assert_eq!(f("{val_loss:.2e}"), "1.23e-01");
        assert_eq!(f("{loss}"), "0.25");
        assert_eq!(f("{val_loss}-{lr}"), "0.123456-0.0");
        assert_eq!(f("{loss:06.2f}"), "000.25");
        assert_eq!(f("a{{b}}c.st"), "a{b}c.st");
        assert_eq!(f("plain.safetensors"), "plain.safetensors");
    }

    #[test]
    fn names_the_metrics_it_reads() {
        assert_eq!(
            metrics_named("w.{epoch:02d}-{val_loss:.2f}-{accuracy}").unwrap(),
            ["val_loss", "accuracy"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_fill() {
        let l = logs();
        for (t, why) in [
            ("w{epoch.st", "without its `}`"),
            ("w}.st", "without its `{`"),
            ("w{}.st", "does not name"),
            ("w{epoch:x}.st", "the format is not"),
            ("w{epoch:.2d}.st", "the format is not"),
            ("w{loss:.2}.st", "the format is not"),
            ("w{val_mae}.st", "no `val_mae` in this epoch's logs"),
        ] {
            let e = fill(t, &l).unwrap_err();
            assert!(e.contains(why) && e.contains(t), "{t}: {e}");
        }
    }
}
