//! Per-epoch metrics, saved as CSV or JSON and drawn as curves.

use std::path::Path;

use plotters::prelude::*;

use super::{write_atomic, TrainError};

/// The metrics of one epoch, under Keras's names.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLogs {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy.
    pub accuracy: f64,
    /// Validation loss, if validation data was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Learning rate during the epoch.
    pub lr: f64,
    /// Wall time of the training pass.
    pub seconds: f64,
    /// Training throughput.
    pub samples_per_sec: f64,
    /// A model of several outputs: each output's metrics under Keras's
    /// names (`aux_loss`, `val_out_accuracy`); empty otherwise.
    pub outputs: Vec<(String, f64)>,
}

impl EpochLogs {
    /// A metric by its Keras name (`"loss"`, `"val_accuracy"`, …).
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "loss" => Some(self.loss),
            "accuracy" => Some(self.accuracy),
            "val_loss" => self.val_loss,
            "val_accuracy" => self.val_accuracy,
            "lr" => Some(self.lr),
            "seconds" => Some(self.seconds),
            "samples_per_sec" => Some(self.samples_per_sec),
            _ => self
                .outputs
                .iter()
                .find(|(n, _)| n == metric)
                .map(|(_, v)| *v),
        }
    }

    /// The CSV columns, in order.
    pub const COLUMNS: [&'static str; 8] = [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
        "samples_per_sec",
    ];

    /// This epoch as a CSV row (empty cells for missing validation metrics).
    pub fn csv_row(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{}",
            self.epoch,
            self.loss,
            self.accuracy,
            opt(self.val_loss),
            opt(self.val_accuracy),
            self.lr,
            self.seconds,
            self.samples_per_sec
        )
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
        let mut s = EpochLogs::COLUMNS.join(",");
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
                serde_json::json!({
                    "epoch": e.epoch, "loss": e.loss, "accuracy": e.accuracy,
                    "val_loss": e.val_loss, "val_accuracy": e.val_accuracy,
                    "lr": e.lr, "seconds": e.seconds, "samples_per_sec": e.samples_per_sec,
                })
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

    /// Draws loss and accuracy per epoch (training and validation) side by side,
    /// as PNG or SVG by the file's extension. Text uses an embedded font, so no
    /// system font libraries are needed.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let plot_err = |e: String| TrainError::Plot {
            path: path.to_path_buf(),
            message: e,
        };
        crate::plot::ensure_font();
        let svg = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
        let size = (1000, 420);
        let result = if svg {
            self.draw(SVGBackend::new(path, size).into_drawing_area())
        } else {
            self.draw(BitMapBackend::new(path, size).into_drawing_area())
        };
        result.map_err(plot_err)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let panels = root.split_evenly((1, 2));
        let series = [
            ("loss", "val_loss", "loss"),
            ("accuracy", "val_accuracy", "accuracy"),
        ];
        for (area, (train, val, title)) in panels.iter().zip(series) {
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
            let last = self.epochs.len().max(2) as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(1.0..last, (lo - pad)..(hi + pad))
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(|x| e(&x))?;
            chart
                .draw_series(LineSeries::new(tp, BLUE.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(train)
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
            if !vp.is_empty() {
                chart
                    .draw_series(LineSeries::new(vp, RED.stroke_width(2)))
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
