//! The per-epoch progress display: an indicatif bar on a terminal, a plain
//! line per epoch otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::fit::Verbosity;
use super::history::EpochLogs;

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    epoch: usize,
    epochs: usize,
    last_update: usize,
}

/// `12345` as `"12,345"`.
fn thousands(v: f64) -> String {
    nn_core::summary::thousands(v.round().max(0.0) as usize)
}

/// Keras's end-of-epoch line.
pub fn epoch_line(logs: &EpochLogs, epochs: usize) -> String {
    let mut s = format!(
        "Epoch {}/{epochs} - loss: {:.4} - accuracy: {:.4}",
        logs.epoch, logs.loss, logs.accuracy
    );
    if let (Some(l), Some(a)) = (logs.val_loss, logs.val_accuracy) {
        s.push_str(&format!(" - val_loss: {l:.4} - val_accuracy: {a:.4}"));
    }
    s.push_str(&format!(
        " - {:.2}s - {} samples/s",
        logs.seconds,
        thousands(logs.samples_per_sec)
    ));
    s
}

impl Progress {
    pub(crate) fn new(verbosity: Verbosity, epoch: usize, epochs: usize, batches: usize) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let (bar, plain) = match verbosity {
            Verbosity::Silent => (None, false),
            Verbosity::Lines => (None, true),
            Verbosity::Auto if !terminal => (None, true),
            Verbosity::Auto => {
                let bar = ProgressBar::with_draw_target(
                    Some(batches as u64),
                    ProgressDrawTarget::stdout(),
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "Epoch {prefix} {bar:30.cyan/blue} {pos}/{len} {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{}/{epochs}", epoch + 1));
                (Some(bar), false)
            }
        };
        Progress {
            bar,
            plain,
            epoch,
            epochs,
            last_update: 0,
        }
    }

    /// After each batch: refresh the bar (cheaply: the message only every few batches).
    pub(crate) fn batch(&mut self, seen: usize, loss: f64, accuracy: f64, seconds: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            let pos = bar.position() as usize;
            if pos - self.last_update >= 10 || Some(pos as u64) == bar.length() {
                self.last_update = pos;
                bar.set_message(format!(
                    "loss: {loss:.4} - accuracy: {accuracy:.4} - {} samples/s",
                    thousands(seen as f64 / seconds.max(1e-9))
                ));
            }
        }
    }

    pub(crate) fn finish(&mut self, logs: &EpochLogs) {
        let line = epoch_line(logs, self.epochs);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            println!("{line}");
        } else if self.plain {
            println!("{line}");
        }
    }

    pub(crate) fn abandon(&mut self, reason: &str) {
        let shown = self.bar.is_some() || self.plain;
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
        if shown {
            eprintln!("Epoch {}/{}: {reason}", self.epoch + 1, self.epochs);
        }
    }
}
