//! Which column of a CSV file is an input, a target or skipped, resolved from
//! the options against the file's header and width.

use std::path::Path;

use super::{Column, CsvColumn, CsvError, CsvOptions};
use crate::data::TargetsAs;

/// What one column is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Input,
    /// The `k`-th target column, in the order the options list them.
    Target(usize),
    Skip,
}

/// Every column's role, and how to name a column in an error.
pub(super) struct Layout {
    pub roles: Vec<Role>,
    pub inputs: usize,
    pub targets: usize,
    header: Option<Vec<String>>,
}

impl Layout {
    pub fn resolve(
        options: &CsvOptions,
        header: Option<Vec<String>>,
        width: usize,
        path: &Path,
    ) -> Result<Layout, CsvError> {
        let problem = |problem: String| CsvError::Options {
            path: path.to_path_buf(),
            problem,
        };
        if options.targets.is_empty() {
            return Err(problem("no target column given".into()));
        }
        if matches!(options.targets_as, TargetsAs::Labels { .. }) && options.targets.len() > 1 {
            return Err(problem(format!(
                "labels come from one column, {} target columns were given (use TargetsAs::Values for several)",
                options.targets.len()
            )));
        }
        let mut layout = Layout {
            roles: vec![Role::Input; width],
            inputs: width,
            targets: options.targets.len(),
            header,
        };
        let wanted = options
            .targets
            .iter()
            .enumerate()
            .map(|(k, c)| (c, Role::Target(k)))
            .chain(options.skip.iter().map(|c| (c, Role::Skip)));
        for (column, role) in wanted {
            let i = layout.index_of(column, width, path)?;
            if layout.roles[i] != Role::Input {
                return Err(problem(format!(
                    "column {} is given twice (as targets or to skip)",
                    layout.column(i)
                )));
            }
            layout.roles[i] = role;
            layout.inputs -= 1;
        }
        if layout.inputs == 0 {
            return Err(problem("no input column is left".into()));
        }
        Ok(layout)
    }

    /// Column `i` (0-based) as the person reading the file names it.
    pub fn column(&self, i: usize) -> CsvColumn {
        match &self.header {
            Some(names) => CsvColumn::Named(names[i].clone()),
            None => CsvColumn::Numbered(i + 1),
        }
    }

    fn index_of(&self, column: &Column, width: usize, path: &Path) -> Result<usize, CsvError> {
        let problem = |problem: String| CsvError::Options {
            path: path.to_path_buf(),
            problem,
        };
        match column {
            Column::Last if width > 0 => Ok(width - 1),
            Column::Index(i) if *i < width => Ok(*i),
            Column::Last => Err(problem("the first row has no fields".into())),
            Column::Index(i) => Err(problem(format!(
                "column index {i} (0-based) is past the last column; the first row has {width}"
            ))),
            Column::Name(name) => {
                let Some(names) = &self.header else {
                    return Err(problem(format!(
                        "column '{name}' is named but the options say the file has no header"
                    )));
                };
                let mut at = names.iter().enumerate().filter(|(_, n)| *n == name);
                match (at.next(), at.next()) {
                    (Some((i, _)), None) => Ok(i),
                    // Which of the two was meant cannot be known.
                    (Some((i, _)), Some((j, _))) => Err(problem(format!(
                        "column '{name}' is named twice in the header (columns {i} and {j}, \
                         0-based): give it by index"
                    ))),
                    (None, _) => Err(CsvError::UnknownColumn {
                        path: path.to_path_buf(),
                        name: name.clone(),
                        header: names.clone(),
                    }),
                }
            }
        }
    }
}
