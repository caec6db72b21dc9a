//! A CSV file of numbers as a [`Dataset`]: one sample per row, the target
//! columns (the last one by default) as class labels or values, every other
//! column an input feature (inputs `[rows, features]`).
//!
//! Fields are trimmed; empty lines are skipped. Every problem is a
//! [`CsvError`] naming the file and, for a bad field, its row (counted from 1,
//! header included, as an editor numbers lines) and column (by header name,
//! else numbered from 1).
//!
//! ```no_run
//! use nn_core::data::csv::{dataset_from_csv, CsvOptions};
//! use nn_core::data::TargetsAs;
//!
//! // sepal_length,sepal_width,petal_length,petal_width,species   (species 0..3)
//! let options = CsvOptions::new().targets_as(TargetsAs::labels(3));
//! let iris = dataset_from_csv::<f32>("iris.csv", &options)?;
//!
//! // id;rooms;area;price   without a header: price (index 3) is the target, id skipped
//! let options = CsvOptions::new()
//!     .header(false)
//!     .delimiter(b';')
//!     .target(3)
//!     .targets_as(TargetsAs::Values)
//!     .skip([0]);
//! let houses = dataset_from_csv::<f64>("houses.csv", &options)?;
//! # Ok::<(), nn_core::data::csv::CsvError>(())
//! ```

mod columns;
mod error;
mod lines;
mod table;

use std::path::Path;

use ::csv::{ReaderBuilder, Trim};

pub use error::{CsvColumn, CsvError};

use self::columns::Layout;
use self::lines::Lines;
use self::table::Table;
use super::{Dataset, TargetsAs};
use crate::Float;

/// A column chosen in [`CsvOptions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// The column of this header name (needs a header).
    Name(String),
    /// The column at this index, counting from 0 as Rust and pandas do
    /// (errors name columns counting from 1, as a person does).
    Index(usize),
    /// The last column.
    Last,
}

impl From<&str> for Column {
    fn from(name: &str) -> Self {
        Column::Name(name.to_string())
    }
}

impl From<String> for Column {
    fn from(name: String) -> Self {
        Column::Name(name)
    }
}

impl From<usize> for Column {
    fn from(index: usize) -> Self {
        Column::Index(index)
    }
}

/// How to read a CSV file; [`CsvOptions::new`] (= `default()`) is: a header
/// row, commas, the last column as class labels (classes inferred), nothing
/// skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// Whether the first row names the columns.
    pub header: bool,
    /// The field separator (`b','`, `b';'`, `b'\t'`, …).
    pub delimiter: u8,
    /// The target columns; for values, the order here is the order of a
    /// sample's target values.
    pub targets: Vec<Column>,
    /// Whether the targets are class labels (one column) or values.
    pub targets_as: TargetsAs,
    /// Columns that are neither inputs nor targets (ids, text).
    pub skip: Vec<Column>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: b',',
            targets: vec![Column::Last],
            targets_as: TargetsAs::default(),
            skip: Vec::new(),
        }
    }
}

impl CsvOptions {
    /// The defaults (see [`CsvOptions`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the first row names the columns.
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The field separator.
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// One target column, by name or 0-based index.
    pub fn target(self, column: impl Into<Column>) -> Self {
        self.targets([column])
    }

    /// Several target columns (values), by name or 0-based index.
    pub fn targets<C: Into<Column>>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.targets = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the targets are class labels or values.
    pub fn targets_as(mut self, targets_as: TargetsAs) -> Self {
        self.targets_as = targets_as;
        self
    }

    /// Columns to leave out, by name or 0-based index.
    pub fn skip<C: Into<Column>>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.skip = columns.into_iter().map(Into::into).collect();
        self
    }
}

/// Reads the CSV file at `path` as a dataset, as `options` say.
pub fn dataset_from_csv<T: Float>(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<Dataset<T>, CsvError> {
    let path = path.as_ref();
    // Whole in memory: the parsed numbers take as much, and row numbers are
    // counted on the text (see `lines`).
    let text = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CsvError::Missing {
            path: path.to_path_buf(),
        },
        _ => CsvError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut lines = Lines::new(&text);
    // Headers are read as a plain record, and ragged rows let through, so
    // that both are reported with their row numbers by the code below.
    let mut records = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .trim(Trim::All)
        .from_reader(text.as_slice())
        .into_records()
        .map(|r| {
            let byte = |p: Option<&::csv::Position>| p.map_or(0, ::csv::Position::byte);
            match r {
                Ok(record) => Ok((lines.line_of(byte(record.position())), record)),
                Err(e) => Err(csv_error(path, lines.line_of(byte(e.position())), e)),
            }
        });
    let empty = |after_header| CsvError::Empty {
        path: path.to_path_buf(),
        after_header,
    };
    let (first_row, first) = records.next().ok_or_else(|| empty(false))??;
    let width = first.len();
    let first_data = if options.header {
        records.next().ok_or_else(|| empty(true))??
    } else {
        (first_row, first.clone())
    };
    let header = options
        .header
        .then(|| first.iter().map(str::to_string).collect());
    let layout = Layout::resolve(options, header, width, path)?;
    let mut table = Table::new(&layout, options.targets_as, path);
    for record in std::iter::once(Ok(first_data)).chain(records) {
        let (row, record) = record?;
        if record.len() != width {
            return Err(CsvError::Ragged {
                path: path.to_path_buf(),
                row,
                fields: record.len(),
                expected: width,
                first_row,
            });
        }
        table.push(row, &record)?;
    }
    Ok(table.into_dataset())
}

fn csv_error(path: &Path, row: u64, e: ::csv::Error) -> CsvError {
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => CsvError::Io {
            path: path.to_path_buf(),
            source,
        },
        ::csv::ErrorKind::Utf8 { err, .. } => CsvError::Malformed {
            path: path.to_path_buf(),
            row,
            problem: format!("not UTF-8 text: {err}"),
        },
        other => CsvError::Malformed {
            path: path.to_path_buf(),
            row,
            problem: format!("{other:?}"),
        },
    }
}
