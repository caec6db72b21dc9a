//! The rows of a CSV file parsed into inputs and targets.

use std::path::Path;

use ::csv::StringRecord;
use ndarray::{ArrayD, IxDyn};

use super::columns::{Layout, Role};
use super::CsvError;
use crate::data::{Dataset, Targets, TargetsAs};
use crate::Float;

/// The rows parsed so far.
pub(super) struct Table<'a, T> {
    layout: &'a Layout,
    targets_as: TargetsAs,
    path: &'a Path,
    rows: usize,
    inputs: Vec<T>,
    values: Vec<T>,
    labels: Vec<usize>,
}

impl<'a, T: Float> Table<'a, T> {
    pub fn new(layout: &'a Layout, targets_as: TargetsAs, path: &'a Path) -> Self {
        Table {
            layout,
            targets_as,
            path,
            rows: 0,
            inputs: Vec::new(),
            values: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Parses one data row, line `row` of the file.
    pub fn push(&mut self, row: u64, record: &StringRecord) -> Result<(), CsvError> {
        let start = self.values.len();
        if self.targets_as == TargetsAs::Values {
            self.values.resize(start + self.layout.targets, T::zero());
        }
        for (i, text) in record.iter().enumerate() {
            match (self.layout.roles[i], self.targets_as) {
                (Role::Skip, _) => {}
                (Role::Input, _) => {
                    let v = self.number(text, row, i)?;
                    self.inputs.push(v);
                }
                (Role::Target(_), TargetsAs::Labels { classes }) => {
                    let label = self.label(text, row, i, classes)?;
                    self.labels.push(label);
                }
                (Role::Target(k), TargetsAs::Values) => {
                    self.values[start + k] = self.number(text, row, i)?;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn number(&self, text: &str, row: u64, i: usize) -> Result<T, CsvError> {
        // Rust's float syntax: 1, -2.5, 1e-3, .5; not "" or "1,5". It also
        // reads inf and NaN, which a dataset refuses, as it refuses numbers
        // beyond the element type (`1e40` as `f32`).
        match text.parse::<f64>().map(T::lit) {
            Ok(v) if v.is_finite() => Ok(v),
            parsed => {
                let (path, column) = (self.path.to_path_buf(), self.layout.column(i));
                let text = text.to_string();
                Err(match parsed {
                    Ok(_) => CsvError::NotFinite {
                        path,
                        row,
                        column,
                        text,
                        element: std::any::type_name::<T>(),
                    },
                    Err(_) => CsvError::NotANumber {
                        path,
                        row,
                        column,
                        text,
                    },
                })
            }
        }
    }

    fn label(
        &self,
        text: &str,
        row: u64,
        i: usize,
        classes: Option<usize>,
    ) -> Result<usize, CsvError> {
        // "2.0" is accepted: files written from float columns spell labels so.
        let whole = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < usize::MAX as f64;
        let label = text.parse::<usize>().ok().or_else(|| {
            let v = text.parse::<f64>().ok()?;
            whole(v).then_some(v as usize)
        });
        let Some(label) = label else {
            return Err(CsvError::InvalidLabel {
                path: self.path.to_path_buf(),
                row,
                column: self.layout.column(i),
                text: text.to_string(),
            });
        };
        match classes {
            Some(classes) if label >= classes => Err(CsvError::LabelOutOfRange {
                path: self.path.to_path_buf(),
                row,
                column: self.layout.column(i),
                label,
                classes,
            }),
            _ => Ok(label),
        }
    }

    pub fn into_dataset(self) -> Dataset<T> {
        let inputs = ArrayD::from_shape_vec(IxDyn(&[self.rows, self.layout.inputs]), self.inputs)
            .expect("every row has every input");
        match self.targets_as {
            TargetsAs::Labels { classes: None } => Dataset::new(inputs, self.labels),
            TargetsAs::Labels {
                classes: Some(classes),
            } => Dataset::classification(inputs, self.labels, classes)
                .expect("labels checked while parsing"),
            TargetsAs::Values => {
                let shape = IxDyn(&[self.rows, self.layout.targets]);
                let values = ArrayD::from_shape_vec(shape, self.values).expect("every target");
                Dataset::from_targets(inputs, Targets::Values(values)).expect("one row each")
            }
        }
    }
}
