//! Per-epoch metrics, saved as CSV or JSON and drawn as curves.

use std::path::Path;

use plotters::prelude::*;

use super::{write_atomic, TrainError};

/// The metrics of one epoch, under Keras's names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochLogs {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training metrics in order (`accuracy`, `mae`, a graph's `out_loss`, …).
    pub metrics: Vec<(String, f64)>,
    /// Validation loss, if validation data was given.
    pub val_loss: Option<f64>,
    /// Validation metrics in order, named `val_…`.
    pub val_metrics: Vec<(String, f64)>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the training pass.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_sec: f64,
}

impl EpochLogs {
    /// A metric by its Keras name (`"loss"`, `"accuracy"`, `"val_mae"`, `"lr"`, …).
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "loss" => Some(self.loss),
            "val_loss" => self.val_loss,
            "lr" => Some(self.lr),
            "seconds" => Some(self.seconds),
            "samples_per_sec" => Some(self.samples_per_sec),
            _ => self
                .metrics
                .iter()
                .chain(&self.val_metrics)
                .find(|(n, _)| n == metric)
                .map(|(_, v)| *v),
        }
    }

    /// Training accuracy, if it was measured.
    pub fn accuracy(&self) -> Option<f64> {
        self.get("accuracy")
    }

    /// Validation accuracy, if it was measured.
    pub fn val_accuracy(&self) -> Option<f64> {
        self.get("val_accuracy")
    }

    /// Every value but the epoch, in the order logs show them: `loss`, the
    /// training metrics, `val_loss` and the validation metrics (when validation
    /// ran), `lr`, `seconds`, `samples_per_sec`.
    pub fn entries(&self) -> Vec<(&str, f64)> {
        let mut out = vec![("loss", self.loss)];
        out.extend(self.metrics.iter().map(|(n, v)| (n.as_str(), *v)));
        if let Some(v) = self.val_loss {
            out.push(("val_loss", v));
        }
        out.extend(self.val_metrics.iter().map(|(n, v)| (n.as_str(), *v)));
        out.extend([
            ("lr", self.lr),
            ("seconds", self.seconds),
            ("samples_per_sec", self.samples_per_sec),
        ]);
        out
    }

    /// The CSV header for these logs: `epoch`, then [`EpochLogs::entries`]'s names.
    pub fn csv_header(&self) -> String {
        let mut cols = vec!["epoch"];
        cols.extend(self.entries().iter().map(|(n, _)| *n));
        cols.join(",")
    }

    /// This epoch as a CSV row, in [`EpochLogs::csv_header`]'s order.
    pub fn csv_row(&self) -> String {
        let mut cells = vec![self.epoch.to_string()];
        cells.extend(self.entries().iter().map(|(_, v)| v.to_string()));
        cells.join(",")
    }
}

/// What [`fit`](super::fit) recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One entry per completed epoch.
    pub epochs: Vec<EpochLogs>,
    /// Why training stopped before its last epoch, if it did.
    pub stopped: Option<String>,
}

impl History {
    /// The last epoch's metrics.
    pub fn last(&self) -> Option<&EpochLogs> {
        self.epochs.last()
    }

    /// The values of one metric, epoch by epoch.
    pub fn metric(&self, name: &str) -> Vec<Option<f64>> {
        self.epochs.iter().map(|e| e.get(name)).collect()
    }

    /// The history as CSV: a header, then a row per epoch.
    pub fn to_csv(&self) -> String {
        let mut s = self
            .epochs
            .first()
            .map(EpochLogs::csv_header)
            .unwrap_or_default();
        s.push('\n');
        for e in &self.epochs {
            s.push_str(&e.csv_row());
            s.push('\n');
        }
        s
    }

    /// The history as JSON: `{"epochs": [{…}, …], "stopped": …}`.
    pub fn to_json(&self) -> String {
        let epochs: Vec<serde_json::Value> = self
            .epochs
            .iter()
            .map(|e| {
                let mut row = serde_json::Map::new();
                row.insert("epoch".into(), e.epoch.into());
                for (name, v) in e.entries() {
                    row.insert(name.into(), v.into());
                }
                serde_json::Value::Object(row)
            })
            .collect();
        serde_json::to_string_pretty(
            &serde_json::json!({ "epochs": epochs, "stopped": self.stopped }),
        )
        .expect("plain values serialize")
    }

    /// Writes [`History::to_csv`] to `path` (atomically).
    pub fn save_csv(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        write_atomic(path.as_ref(), self.to_csv().as_bytes())
    }

    /// Writes [`History::to_json`] to `path` (atomically).
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        write_atomic(path.as_ref(), self.to_json().as_bytes())
    }

    /// Draws the loss and the first metric (accuracy for a classifier) per
    /// epoch, training and validation, side by side,
    /// as PNG or SVG by the file's extension (`.png` or `.svg`; another is an
    /// error). Text uses an embedded font, so no system font libraries are
    /// needed.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        self.plot_at(path.as_ref())
    }

    // Not generic, so the drawing (thousands of plotters instantiations) is
    // compiled once, here, instead of in every crate that plots.
    fn plot_at(&self, path: &Path) -> Result<(), TrainError> {
        let size = (1000, 420);
        if crate::plot::is_svg(path)? {
            crate::plot::svg(path, size, |root| self.draw(root))
        } else {
            crate::plot::png(path, size, |root| self.draw(root))
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        // Loss, and beside it the first metric (accuracy for a classifier).
        let first_metric = self
            .epochs
            .first()
            .and_then(|e| e.metrics.first())
            .map(|(n, _)| n.clone());
        let mut series = vec![("loss".to_string(), "val_loss".to_string())];
        series.extend(first_metric.map(|m| (m.clone(), format!("val_{m}"))));
        let panels = root.split_evenly((1, series.len()));
        for (area, (train, val)) in panels.iter().zip(&series) {
            let (train, val, title) = (train.as_str(), val.as_str(), train.as_str());
            let points = |name: &str| -> Vec<(f64, f64)> {
                self.epochs
                    .iter()
                    .filter_map(|ep| ep.get(name).map(|v| (ep.epoch as f64, v)))
                    .collect()
            };
            let (tp, vp) = (points(train), points(val));
            let all: Vec<f64> = tp
                .iter()
                .chain(&vp)
                .map(|p| p.1)
                .filter(|v| v.is_finite())
                .collect();
            let (lo, hi) = all
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let (lo, hi) = if all.is_empty() {
                (0.0, 1.0)
            } else if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            };
            let pad = (hi - lo) * 0.08;
            // One epoch is a point in the middle, not on the frame.
            let epochs = self.epochs.len();
            let x_range = if epochs <= 1 {
                0.5..1.5
            } else {
                1.0..epochs as f64
            };
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(x_range, (lo - pad)..(hi + pad))
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                // No more labels than epochs keeps them on whole epochs.
                .x_labels(epochs.clamp(1, 10))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|x| e(&x))?;
            // A dot per epoch: a run of one epoch is a dot, not nothing.
            chart
                .draw_series(LineSeries::new(tp, BLUE.stroke_width(2)).point_size(3))
                .map_err(|x| e(&x))?
                .label(train)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
            if !vp.is_empty() {
                chart
                    .draw_series(LineSeries::new(vp, RED.stroke_width(2)).point_size(3))
                    .map_err(|x| e(&x))?
                    .label(val)
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))
    }
}
