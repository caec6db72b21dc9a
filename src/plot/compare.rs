//! One metric of several training runs on one chart.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::train::{History, TrainError};

/// Tableau 10, the colours runs are drawn in, in order (then again from the
/// first): distinct from one another and readable on white.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7), // blue
    RGBColor(0xf2, 0x8e, 0x2b), // orange
    RGBColor(0xe1, 0x57, 0x59), // red
    RGBColor(0x76, 0xb7, 0xb2), // teal
    RGBColor(0x59, 0xa1, 0x4f), // green
    RGBColor(0xed, 0xc9, 0x48), // yellow
    RGBColor(0xb0, 0x7a, 0xa1), // purple
    RGBColor(0xff, 0x9d, 0xa7), // pink
    RGBColor(0x9c, 0x75, 0x5f), // brown
    RGBColor(0xba, 0xb0, 0xac), // grey
];

/// A chart of one metric (`val_accuracy`, `loss`, …) against the epoch for
/// several training runs: a line per run with a dot per epoch, each in its
/// [`PALETTE`] colour, named in a legend beside the plot (where it hides no
/// curve). Runs may have different numbers of epochs.
///
/// ```
/// use nn::plot::Comparison;
/// use nn::train::{EpochLogs, History};
///
/// // Histories as `fit` returns them; here written out.
/// let run = |accuracies: &[f64]| History {
///     epochs: (1..)
///         .zip(accuracies)
///         .map(|(epoch, &a)| EpochLogs {
///             epoch,
///             val_metrics: vec![("val_accuracy".into(), a)],
///             ..Default::default()
///         })
///         .collect(),
///     stopped: None,
/// };
/// let (relu, tanh) = (run(&[0.95, 0.96, 0.97]), run(&[0.94, 0.95]));
///
/// let path = std::env::temp_dir().join("nn-doc-comparison.svg");
/// Comparison::new("val_accuracy")
///     .run("relu", &relu)
///     .run("tanh", &tanh)
///     .title("Hidden activations on MNIST")
///     .draw(&path)?;
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), nn::train::TrainError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Comparison<'a> {
    metric: String,
    runs: Vec<(String, &'a History)>,
    title: Option<String>,
    size: (u32, u32),
}

/// Draws `metric` for each named run on one chart at `path` (PNG, or SVG for
/// a `.svg` path): [`Comparison`] with its defaults.
///
/// ```no_run
/// # let (relu, tanh) = (nn::train::History::default(), nn::train::History::default());
/// nn::plot::compare("activations.png", &[("relu", &relu), ("tanh", &tanh)], "val_accuracy")?;
/// # Ok::<(), nn::train::TrainError>(())
/// ```
pub fn compare(
    path: impl AsRef<Path>,
    runs: &[(&str, &History)],
    metric: &str,
) -> Result<(), TrainError> {
    runs.iter()
        .fold(Comparison::new(metric), |chart, (name, history)| {
            chart.run(*name, history)
        })
        .draw(path)
}

/// One run's line: its name and its (epoch, value) points.
struct Line {
    name: String,
    points: Vec<(f64, f64)>,
}

impl<'a> Comparison<'a> {
    /// A chart of `metric`, any name [`EpochLogs::get`](crate::train::EpochLogs::get)
    /// knows, titled with it unless [`Comparison::title`] says otherwise.
    pub fn new(metric: impl Into<String>) -> Self {
        Comparison {
            metric: metric.into(),
            runs: Vec::new(),
            title: None,
            size: (900, 520),
        }
    }

    /// Adds a run, drawn in the next colour and named `name` in the legend.
    pub fn run(mut self, name: impl Into<String>, history: &'a History) -> Self {
        self.runs.push((name.into(), history));
        self
    }

    /// The chart's title (default: the metric's name).
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The image's size in pixels (default 900 × 520).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Draws the chart at `path`, PNG or SVG by its extension.
    ///
    /// Fails, writing nothing, when there are no runs or a run never
    /// recorded the metric (the error names both); or when the image cannot
    /// be written.
    pub fn draw(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        self.draw_at(path.as_ref())
    }

    // Not generic: the drawing is compiled once, here (see `History::plot`).
    fn draw_at(&self, path: &Path) -> Result<(), TrainError> {
        let lines = self.lines().map_err(|e| crate::plot::plot_error(path, e))?;
        if crate::plot::is_svg(path)? {
            crate::plot::svg(path, self.size, |root| self.render(root, &lines))
        } else {
            crate::plot::png(path, self.size, |root| self.render(root, &lines))
        }
    }

    /// Each run's points, or why the chart cannot be drawn. Non-finite
    /// values (a diverged run) are left out rather than stretch the axis.
    fn lines(&self) -> Result<Vec<Line>, String> {
        if self.runs.is_empty() {
            return Err(format!("no runs to compare on `{}`", self.metric));
        }
        let metric = self.metric.as_str();
        let lines = self.runs.iter().map(|(name, history)| {
            let Some(first) = history.epochs.first() else {
                return Err(format!("run `{name}` has no epochs, so no `{metric}`"));
            };
            if history.epochs.iter().all(|e| e.get(metric).is_none()) {
                let known: Vec<&str> = first.entries().iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "run `{name}` has no metric `{metric}` (it has {})",
                    known.join(", ")
                ));
            }
            let points = history
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, e.get(metric)?)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            Ok(Line {
                name: name.clone(),
                points,
            })
        });
        lines.collect()
    }

    fn render<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        lines: &[Line],
    ) -> Result<(), String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let title = self.title.as_deref().unwrap_or(&self.metric);
        let root = root.titled(title, ("sans-serif", 24)).map_err(|x| e(&x))?;
        let legend_font =
            TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let longest_name = lines
            .iter()
            .map(|l| root.estimate_text_size(&l.name, &legend_font))
            .map(|size| size.map(|(w, _)| w).map_err(|x| e(&x)))
            .try_fold(0, |widest, w| w.map(|w| widest.max(w)))?;
        // The legend gets a column of its own, so it can never cover a curve.
        let legend_width = longest_name + 64;
        let (plot_area, legend_area) =
            root.split_horizontally(root.dim_in_pixel().0.saturating_sub(legend_width));

        let (x_range, y_range) = ranges(lines);
        let epochs_shown = (x_range.end - x_range.start).round() as usize;
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.metric.as_str())
            // No more labels than epochs keeps them on whole epochs.
            .x_labels(epochs_shown.clamp(1, 10))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            // Grid lines at the labels only, faint: the curves are the point.
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(|x| e(&x))?;
        for (line, colour) in lines.iter().zip(PALETTE.iter().cycle()) {
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    colour.stroke_width(3),
                ))
                .map_err(|x| e(&x))?;
            // A dot per epoch shows a run of one epoch, and where a short run ends.
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|&p| Circle::new(p, 4, colour.filled())),
                )
                .map_err(|x| e(&x))?;
        }

        // Legend entries top-down, level with the plot's top edge.
        for (i, (line, colour)) in lines.iter().zip(PALETTE.iter().cycle()).enumerate() {
            let y = 28 + 28 * i as i32;
            let sample = PathElement::new(vec![(4, y), (32, y)], colour.stroke_width(3));
            legend_area.draw(&sample).map_err(|x| e(&x))?;
            legend_area
                .draw(&Circle::new((18, y), 4, colour.filled()))
                .map_err(|x| e(&x))?;
            legend_area
                .draw(&Text::new(line.name.as_str(), (40, y), legend_font.clone()))
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))
    }
}

/// The epochs and values every line spans, padded so that the dots at the
/// ends are drawn whole and no curve runs along the frame.
fn ranges(lines: &[Line]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let span = |of: fn(&(f64, f64)) -> f64| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(of))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (first, last) = match span(|p| p.0) {
        (lo, hi) if lo <= hi => (lo, hi),
        _ => (1.0, 1.0),
    };
    let (lo, hi) = match span(|p| p.1) {
        (lo, hi) if lo < hi => (lo, hi),
        (lo, hi) if lo == hi => (lo - 0.5, hi + 0.5),
        _ => (0.0, 1.0),
    };
    let x_pad = ((last - first) * 0.03).max(0.3);
    let y_pad = (hi - lo) * 0.08;
    ((first - x_pad)..(last + x_pad), (lo - y_pad)..(hi + y_pad))
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
