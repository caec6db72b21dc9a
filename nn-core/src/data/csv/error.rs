//! What can go wrong reading a CSV file, each error naming the file and,
//! where there is one, the row and the column.

use std::fmt;
use std::path::PathBuf;

/// A column as a person reading the file names it: its header name, or its
/// 1-based number when the file has no header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CsvColumn {
    /// The header's name for it.
    Named(String),
    /// Its number, counting from 1.
    Numbered(usize),
}

impl fmt::Display for CsvColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvColumn::Named(name) => write!(f, "'{name}'"),
            CsvColumn::Numbered(n) => write!(f, "{n}"),
        }
    }
}

/// Why a CSV file could not be read as a dataset. Rows count from 1 with the
/// header included, as an editor numbers lines.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file does not exist.
    #[error("{}: no such file", .path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// Reading failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not CSV text (e.g. not UTF-8).
    #[error("{}: row {row}: {problem}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The row.
        row: u64,
        /// What is wrong.
        problem: String,
    },
    /// There are no data rows.
    #[error("{}: no data rows{}", .path.display(), if *.after_header { " after the header" } else { "" })]
    Empty {
        /// The file.
        path: PathBuf,
        /// Whether a header row was read.
        after_header: bool,
    },
    /// A column named in the options is not in the header.
    #[error("{}: no column '{name}' in the header; it has: {}", .path.display(), .header.join(", "))]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The header's names.
        header: Vec<String>,
    },
    /// The options do not fit the file (a column index past the last, a name
    /// without a header, a column given twice, no input column left, several
    /// label columns).
    #[error("{}: {problem}", .path.display())]
    Options {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        problem: String,
    },
    /// A row has more or fewer fields than the first.
    #[error("{}: row {row} has {fields} fields, expected {expected} like row {first_row}", .path.display())]
    Ragged {
        /// The file.
        path: PathBuf,
        /// The row.
        row: u64,
        /// Its number of fields.
        fields: usize,
        /// The number of fields of the first row.
        expected: usize,
        /// The first row (the header, if any).
        first_row: u64,
    },
    /// A field is not a number.
    #[error("{}: row {row}, column {column}: {} is not a number", .path.display(),
        if .text.is_empty() { "an empty field".to_string() } else { format!("'{}'", .text) })]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// The row.
        row: u64,
        /// The column.
        column: CsvColumn,
        /// The field as written.
        text: String,
    },
    /// A field is a number but not a finite one in the element type (`NaN`,
    /// `inf`, or `1e40` in `f32`): a dataset's values are finite, as
    /// `.npy` datasets' are.
    #[error("{}: row {row}, column {column}: '{text}' is not a finite {element} (a dataset's values must be)", .path.display())]
    NotFinite {
        /// The file.
        path: PathBuf,
        /// The row.
        row: u64,
        /// The column.
        column: CsvColumn,
        /// The field as written.
        text: String,
        /// The element type read into (`f32`, `f64`).
        element: &'static str,
    },
    /// A label is not a whole number `>= 0`.
    #[error("{}: row {row}, column {column}: label '{text}' is not a class index (a whole number >= 0)", .path.display())]
    InvalidLabel {
        /// The file.
        path: PathBuf,
        /// The row.
        row: u64,
        /// The column.
        column: CsvColumn,
        /// The field as written.
        text: String,
    },
    /// A label is not below the declared number of classes.
    #[error("{}: row {row}, column {column}: label {label} is not a class of 0..{classes}", .path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The row.
        row: u64,
        /// The column.
        column: CsvColumn,
        /// The label.
        label: usize,
        /// The declared number of classes.
        classes: usize,
    },
}
