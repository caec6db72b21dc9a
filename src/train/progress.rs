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
    let mut s = format!("Epoch {}/{epochs}", logs.epoch);
    let shown = std::iter::once(("loss", Some(logs.loss)))
        .chain(logs.metrics.iter().map(|(n, v)| (n.as_str(), Some(*v))))
        .chain(logs.val_loss.map(|v| ("val_loss", Some(v))))
        .chain(logs.val_metrics.iter().map(|(n, v)| (n.as_str(), Some(*v))));
    for (name, value) in shown {
        if let Some(v) = value {
            s.push_str(&format!(" - {name}: {v:.4}"));
        }
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
        let plain = |plain| Progress {
            bar: None,
            plain,
            epoch,
            epochs,
            last_update: 0,
        };
        match verbosity {
            Verbosity::Silent => plain(false),
            Verbosity::Lines => plain(true),
            Verbosity::Auto if !std::io::stdout().is_terminal() => plain(true),
            Verbosity::Auto => Self::with_bar(ProgressDrawTarget::stdout(), epoch, epochs, batches),
        }
    }

    /// A progress bar drawn to `target`.
    pub(crate) fn with_bar(
        target: ProgressDrawTarget,
        epoch: usize,
        epochs: usize,
        batches: usize,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(Some(batches as u64), target);
        bar.set_style(
            ProgressStyle::with_template("Epoch {prefix} {bar:30.cyan/blue} {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{epochs}", epoch + 1));
        Progress {
            bar: Some(bar),
            plain: false,
            epoch,
            epochs,
            last_update: 0,
        }
    }

    /// After each batch: refresh the bar (cheaply: the message, with the
    /// running `values`, only every few batches).
    pub(crate) fn batch(
        &mut self,
        seen: usize,
        seconds: f64,
        values: &mut dyn FnMut() -> Vec<(String, f64)>,
    ) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            let pos = bar.position() as usize;
            if pos - self.last_update >= 10 || Some(pos as u64) == bar.length() {
                self.last_update = pos;
                let mut msg: Vec<String> = values()
                    .iter()
                    .map(|(n, v)| format!("{n}: {v:.4}"))
                    .collect();
                msg.push(format!(
                    "{} samples/s",
                    thousands(seen as f64 / seconds.max(1e-9))
                ));
                bar.set_message(msg.join(" - "));
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

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps what is written to it: indicatif's own
    /// (`InMemoryTerm`) needs a feature whose terminal emulator every
    /// example would build.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl TermLike for Recorder {
        fn width(&self) -> u16 {
            140
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push(s.to_string());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_bar_shows_the_epoch_position_and_running_metrics() {
        let term = Recorder::default();
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 200);
        let mut p = Progress::with_bar(target, 1, 5, 20);
        for i in 1..=20 {
            p.batch(i * 100, 0.01 * i as f64, &mut || {
                vec![("loss".into(), 0.25), ("accuracy".into(), 0.875)]
            });
        }
        // Drawing is rate-limited; finishing forces the final frame.
        p.bar.as_ref().unwrap().finish();
        let writes = term.0.lock().unwrap();
        let screen = writes.iter().rev().find(|w| !w.trim().is_empty()).unwrap();
        assert!(screen.contains("Epoch 2/5"), "{screen}");
        assert!(screen.contains("20/20"), "{screen}");
        assert!(
            screen.contains("loss: 0.2500 - accuracy: 0.8750 - 10,000 samples/s"),
            "{screen}"
        );
    }

    #[test]
    fn the_epoch_line_reads_like_keras() {
        let logs = EpochLogs {
            epoch: 2,
            loss: 0.123456,
            metrics: vec![("accuracy".into(), 0.96)],
            val_loss: Some(0.2),
            val_metrics: vec![("val_accuracy".into(), 0.95)],
            lr: 1e-3,
            seconds: 0.5,
            samples_per_sec: 120_000.4,
        };
        assert_eq!(
            epoch_line(&logs, 5),
            "Epoch 2/5 - loss: 0.1235 - accuracy: 0.9600 - val_loss: 0.2000 - val_accuracy: 0.9500 - 0.50s - 120,000 samples/s"
        );
    }
}
