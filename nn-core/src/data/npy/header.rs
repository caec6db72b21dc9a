//! The `.npy` header: the magic string, the version, and the Python dict
//! literal that gives the dtype, the memory order and the shape
//! (NumPy's `numpy/lib/format.py` describes it).
//!
//! Parsed here, in a page of code, rather than with a general Python-literal
//! parser: the header is one small dict of strings, booleans and integer
//! tuples, and a parser generator cost every build of the crate seconds.

use std::io::{self, Read};

/// What the header declares.
#[derive(Debug, PartialEq)]
pub(super) struct Header {
    /// The `descr` entry: `Some("<f4")` for a plain dtype, `None` for a
    /// structured one (a list of fields).
    pub descr: Option<String>,
    /// `descr` as the header spells it, for messages (`'<c16'`).
    pub descr_text: String,
    /// `fortran_order`: the data is stored column-major.
    pub fortran_order: bool,
    /// `shape`; empty for a scalar.
    pub shape: Vec<usize>,
}

/// Why a header could not be read.
#[derive(Debug)]
pub(super) enum HeaderError {
    /// The stream ended inside the header.
    Truncated,
    /// Reading failed.
    Io(io::Error),
    /// The stream does not start with `\x93NUMPY`.
    Magic,
    /// The header is there but is not what NumPy writes.
    Bad(String),
}

/// The longest header read. NumPy writes a few hundred bytes and refuses
/// more than 10 000 unless told otherwise; a corrupt length must not make us
/// allocate gigabytes.
const MOST_HEADER_BYTES: usize = 1 << 20;

/// Nesting deeper than this is not a header (a structured dtype nests a
/// level per sub-array); it would only grow the parser's stack.
const MOST_DEPTH: usize = 32;

/// Reads the header from the start of `reader`; returns it and the bytes it
/// took (magic string and length included).
pub(super) fn read(reader: &mut dyn Read) -> Result<(Header, u64), HeaderError> {
    let mut start = [0u8; 8];
    read_exact(reader, &mut start)?;
    if &start[..6] != b"\x93NUMPY" {
        return Err(HeaderError::Magic);
    }
    let (major, minor) = (start[6], start[7]);
    let len_bytes = match major {
        1 => 2,
        2 | 3 => 4,
        _ => {
            return Err(HeaderError::Bad(format!(
                "format version {major}.{minor} (versions 1.0 to 3.0 are read)"
            )))
        }
    };
    let mut len = [0u8; 4];
    read_exact(reader, &mut len[..len_bytes])?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MOST_HEADER_BYTES {
        return Err(HeaderError::Bad(format!(
            "a header of {len} bytes (at most {MOST_HEADER_BYTES} are read)"
        )));
    }
    let mut text = vec![0u8; len];
    read_exact(reader, &mut text)?;
    let text = String::from_utf8(text)
        .map_err(|_| HeaderError::Bad("the header is not UTF-8 text".into()))?;
    let header = parse(&text).map_err(HeaderError::Bad)?;
    Ok((header, (8 + len_bytes + len) as u64))
}

fn read_exact(reader: &mut dyn Read, buf: &mut [u8]) -> Result<(), HeaderError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => HeaderError::Truncated,
        _ => HeaderError::Io(e),
    })
}

/// Parses the dict literal (`{'descr': '<f4', 'fortran_order': False,
/// 'shape': (3, 4), }` padded with spaces and a newline).
pub(super) fn parse(text: &str) -> Result<Header, String> {
    let mut p = Parser { text, at: 0 };
    let entries = match p.value(0)? {
        (Value::Dict(entries), _) => entries,
        _ => return Err("the header is not a dict".into()),
    };
    p.skip_space();
    if p.at != text.len() {
        return Err(format!("text after the dict: {:?}", &text[p.at..]));
    }
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    for (key, value, span) in entries {
        match key.as_str() {
            "descr" => descr = Some((value, span)),
            "fortran_order" => fortran_order = Some(value),
            "shape" => shape = Some(value),
            other => return Err(format!("an unexpected key '{other}'")),
        }
    }
    let missing = |key: &str| format!("no '{key}' key");
    let (descr, descr_span) = descr.ok_or_else(|| missing("descr"))?;
    let descr_text = text[descr_span.0..descr_span.1].to_string();
    let descr = match descr {
        Value::Str(s) => Some(s),
        Value::List => None,
        _ => return Err(format!("'descr' is {descr_text}, not a dtype")),
    };
    let fortran_order = match fortran_order.ok_or_else(|| missing("fortran_order"))? {
        Value::Bool(b) => b,
        _ => return Err("'fortran_order' is not True or False".into()),
    };
    let shape = match shape.ok_or_else(|| missing("shape"))? {
        Value::Tuple(dims) => dims
            .into_iter()
            .map(|d| match d {
                Value::Int(n) => {
                    usize::try_from(n).map_err(|_| format!("the shape has a dimension of {n}"))
                }
                _ => Err("the shape holds something other than integers".into()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("'shape' is not a tuple".into()),
    };
    Ok(Header {
        descr,
        descr_text,
        fortran_order,
        shape,
    })
}

/// The Python literals a header holds.
#[derive(Debug)]
enum Value {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Value>),
    /// A list; only a structured dtype's fields come as one, and they are
    /// not read.
    List,
    /// String keys, values and each value's byte span in the text.
    Dict(Vec<(String, Value, (usize, usize))>),
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    /// Skips spaces, then consumes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        let found = self.rest().starts_with(c);
        if found {
            self.at += c.len_utf8();
        }
        found
    }

    fn error(&self, what: &str) -> String {
        if self.rest().trim().is_empty() {
            return format!("the header ends before its dict does ({what})");
        }
        let near: String = self.rest().chars().take(20).collect();
        format!("{what} at byte {} (near {near:?})", self.at)
    }

    /// One value and its byte span.
    fn value(&mut self, depth: usize) -> Result<(Value, (usize, usize)), String> {
        if depth > MOST_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.skip_space();
        let start = self.at;
        let value = match self.rest().chars().next() {
            Some('{') => {
                self.at += 1;
                let mut entries = Vec::new();
                while !self.eat('}') {
                    let key = match self.value(depth + 1)? {
                        (Value::Str(key), _) => key,
                        _ => return Err(self.error("a dict key that is not a string")),
                    };
                    if !self.eat(':') {
                        return Err(self.error("expected ':'"));
                    }
                    let (value, span) = self.value(depth + 1)?;
                    entries.push((key, value, span));
                    if !self.eat(',') && !self.rest().starts_with('}') {
                        return Err(self.error("expected ',' or '}'"));
                    }
                }
                Value::Dict(entries)
            }
            Some(open @ ('(' | '[')) => {
                self.at += 1;
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.value(depth + 1)?.0);
                    if !self.eat(',') && !self.rest().starts_with(close) {
                        return Err(self.error(&format!("expected ',' or '{close}'")));
                    }
                }
                if open == '(' {
                    Value::Tuple(items)
                } else {
                    Value::List
                }
            }
            Some(quote @ ('\'' | '"')) => Value::Str(self.string(quote)?),
            Some(c) if c == '-' || c.is_ascii_digit() => Value::Int(self.int()?),
            Some(_) => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let value = match word.as_str() {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "None" => Value::None,
                    _ => return Err(self.error("expected a value")),
                };
                self.at += word.len();
                value
            }
            None => return Err(self.error("expected a value")),
        };
        Ok((value, (start, self.at)))
    }

    /// A quoted string; backslash escapes keep the escaped character (the
    /// names in a header need no more).
    fn string(&mut self, quote: char) -> Result<String, String> {
        let start = self.at;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c if c == quote => {
                    self.at += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        self.at = start;
        Err(self.error("an unterminated string"))
    }

    /// An integer; Python 2's long suffix (`3L`, in headers NumPy wrote
    /// under Python 2) is accepted.
    fn int(&mut self) -> Result<i128, String> {
        let rest = self.rest();
        let digits = rest.strip_prefix('-').unwrap_or(rest);
        let len =
            (rest.len() - digits.len()) + digits.chars().take_while(char::is_ascii_digit).count();
        let n = rest[..len]
            .parse::<i128>()
            .map_err(|_| self.error("a bad integer"))?;
        self.at += len;
        if self.rest().starts_with(['L', 'l']) {
            self.at += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_numpy_writes() {
        // np.save(f, np.zeros((3, 4), np.float32)), NumPy 1.x and 2.x alike.
        let h = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }   \n").unwrap();
        assert_eq!(h.descr.as_deref(), Some("<f4"));
        assert_eq!(h.descr_text, "'<f4'");
        assert!(!h.fortran_order);
        assert_eq!(h.shape, [3, 4]);

        let h = parse("{'descr': '>i2', 'fortran_order': True, 'shape': (5,), }").unwrap();
        assert_eq!(
            (h.descr.as_deref(), h.fortran_order, h.shape),
            (Some(">i2"), true, vec![5])
        );
        // A scalar; Python 2's longs; double quotes; no trailing comma.
        assert_eq!(
            parse("{'descr': '|u1', 'fortran_order': False, 'shape': ()}")
                .unwrap()
                .shape,
            Vec::<usize>::new()
        );
        assert_eq!(
            parse("{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \"<f8\"}")
                .unwrap()
                .shape,
            [2, 3]
        );
    }

    #[test]
    fn a_structured_dtype_is_recognized_as_such() {
        let h = parse("{'descr': [('x', '<f4'), ('y', '<i8', (2,))], 'fortran_order': False, 'shape': (2,), }").unwrap();
        assert_eq!(h.descr, None);
        assert_eq!(h.descr_text, "[('x', '<f4'), ('y', '<i8', (2,))]");
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        for (text, says) in [
            (
                "{'descr': '<f4', 'shape': (3,), }",
                "no 'fortran_order' key",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
                "dimension of -1",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}",
                "unexpected key 'x'",
            ),
            (
                "{'descr': '<f4, 'fortran_order': False}",
                "expected ',' or '}'",
            ),
            ("{'descr' '<f4'}", "expected ':'"),
            (
                "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3,)}",
                "expected a value",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
                "not True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [3]}",
                "not a tuple",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': ('3',)}",
                "other than integers",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x",
                "text after the dict",
            ),
            (
                "{'descr': 3, 'fortran_order': False, 'shape': (3,)}",
                "'descr' is 3",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}",
                "expected ',' or ')'",
            ),
            ("{'descr': '<f4'", "ends before its dict"),
            ("(3,)", "not a dict"),
            (
                "{'shape': (99999999999999999999999999999999999999999,)}",
                "a bad integer",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).unwrap_err().contains("nesting too deep"));
    }

    fn npy_bytes(version: u8, header: &str) -> Vec<u8> {
        let mut bytes = b"\x93NUMPY".to_vec();
        bytes.extend([version, 0]);
        match version {
            1 => bytes.extend((header.len() as u16).to_le_bytes()),
            _ => bytes.extend((header.len() as u32).to_le_bytes()),
        }
        bytes.extend(header.as_bytes());
        bytes
    }

    #[test]
    fn every_format_version_reads_and_counts_its_bytes() {
        let text = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
        for (version, prefix) in [(1, 10), (2, 12), (3, 12)] {
            let bytes = npy_bytes(version, text);
            let (h, used) = read(&mut bytes.as_slice()).unwrap();
            assert_eq!(h.shape, [2]);
            assert_eq!(used, (prefix + text.len()) as u64);
        }
        let bytes = npy_bytes(4, text);
        assert!(
            matches!(read(&mut bytes.as_slice()), Err(HeaderError::Bad(m)) if m.contains("version 4.0"))
        );
    }

    #[test]
    fn short_or_foreign_streams_are_told_apart() {
        let bytes = npy_bytes(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n",
        );
        assert!(matches!(
            read(&mut &bytes[..30]),
            Err(HeaderError::Truncated)
        ));
        assert!(matches!(
            read(&mut &bytes[..4]),
            Err(HeaderError::Truncated)
        ));
        assert!(matches!(
            read(&mut &b"PK\x03\x04 not numpy"[..]),
            Err(HeaderError::Magic)
        ));
        // A forged length is refused before anything is allocated for it.
        let mut forged = b"\x93NUMPY\x02\x00".to_vec();
        forged.extend(u32::MAX.to_le_bytes());
        assert!(
            matches!(read(&mut forged.as_slice()), Err(HeaderError::Bad(m)) if m.contains("4294967295 bytes"))
        );
    }
}
