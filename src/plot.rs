//! Charts: several training runs compared on one metric ([`Comparison`],
//! [`compare`]), the embedded font plotters draws text with
//! ([`ensure_font`]), and [`plotters`] itself, re-exported so charts of your
//! own use the same version and features as `nn`.
//!
//! # Charts of your own
//!
//! `nn` builds plotters with its bitmap and SVG backends, `LineSeries` and
//! text through `ab_glyph`, which draws only fonts that were registered:
//! [`png()`] and [`svg`] register DejaVu Sans (embedded in the binary, so no
//! system font library is needed) as `"sans-serif"`, hand your closure the
//! drawing area, and write the file atomically when it returns.
//!
//! ```
//! use nn::plot::plotters::prelude::*;
//!
//! let path = std::env::temp_dir().join("nn-plot-doc-parabola.png");
//! nn::plot::png(&path, (640, 400), |root| {
//!     root.fill(&WHITE)?;
//!     let mut chart = ChartBuilder::on(&root)
//!         .caption("y = x²", ("sans-serif", 22))
//!         .margin(12)
//!         .x_label_area_size(40)
//!         .y_label_area_size(50)
//!         .build_cartesian_2d(-1.0..1.0, 0.0..1.0)?;
//!     chart.configure_mesh().x_desc("x").y_desc("y").draw()?;
//!     let parabola = (-50..=50).map(|i| f64::from(i) / 50.0).map(|x| (x, x * x));
//!     chart.draw_series(LineSeries::new(parabola, BLUE.stroke_width(2)))?;
//!     root.present()
//! })?;
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! PNG files are encoded by a page of our own over `flate2` (which reads
//! MNIST's gzip files anyway) rather than plotters' own encoder
//! (`bitmap_encoder`), which would bring the whole `image` crate into every
//! build of `nn`: about a tenth of a first build's CPU time. For more
//! of plotters (`point_series`, `area_series`, `histogram`, `full_palette`,
//! …), add it to your `Cargo.toml` with `default-features = false` and those
//! features; Cargo merges them into the one build `nn::plot::plotters`
//! names. Leave out `ttf`: it replaces the registered fonts with system
//! fonts found through fontconfig.

mod compare;
mod png_file;

pub use compare::{compare, Comparison, PALETTE};
pub use plotters;

use std::fmt::Display;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea, SVGBackend};

use crate::train::{write_atomic, TrainError};

/// Draws a PNG image of `size` (width, height) pixels with `draw` and writes
/// it to `path` atomically; the embedded font is registered first.
///
/// # Errors
/// [`TrainError::Plot`] with what `draw` returned or the encoder said, or
/// the write's error, naming `path`; nothing is written then.
pub fn png<E: Display>(
    path: impl AsRef<Path>,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), E>,
) -> Result<(), TrainError> {
    let path = path.as_ref();
    let (width, height) = size;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    ensure_font();
    draw(BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area())
        .map_err(|e| plot_error(path, e))?;
    let encoded = png_file::encode(&pixels, size).map_err(|e| plot_error(path, e))?;
    write_atomic(path, &encoded)
}

/// Draws an SVG image of `size` (width, height) with `draw` and writes it to
/// `path` atomically; the embedded font is registered first (plotters
/// measures text with it).
///
/// # Errors
/// As [`png()`].
pub fn svg<E: Display>(
    path: impl AsRef<Path>,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), E>,
) -> Result<(), TrainError> {
    let path = path.as_ref();
    let mut text = String::new();
    ensure_font();
    // The backend writes the document into `text` when the area is dropped,
    // at the end of `draw`.
    draw(SVGBackend::with_string(&mut text, size).into_drawing_area())
        .map_err(|e| plot_error(path, e))?;
    write_atomic(path, text.as_bytes())
}

/// Whether a chart at `path` is drawn as SVG (`.svg`) or PNG (`.png`), by
/// the extension, case aside; any other name is refused rather than given
/// PNG bytes it does not announce.
pub(crate) fn is_svg(path: &Path) -> Result<bool, TrainError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(true),
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(false),
        _ => Err(plot_error(
            path,
            "a chart is written as PNG or SVG: name the file .png or .svg",
        )),
    }
}

/// A drawing's failure at `path`.
pub(crate) fn plot_error(path: &Path, e: impl Display) -> TrainError {
    TrainError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Registers DejaVu Sans (embedded in the binary) as plotters' `sans-serif`,
/// once, so plots need no system font libraries ([`png()`] and [`svg`] call
/// it; a chart drawn on a backend of your own needs it first).
pub fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration only fails for unparsable font data; the embedded font parses.
        let _ = plotters::style::register_font(
            "sans-serif",
            plotters::style::FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

#[cfg(test)]
mod tests {
    use super::plotters::prelude::*;

    #[test]
    fn charts_of_your_own_draw_text_in_the_embedded_font() {
        super::ensure_font();
        let (width, height) = (200u32, 60u32);
        let mut pixels = vec![255u8; (width * height * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            root.draw(&Text::new("epoch", (10, 20), ("sans-serif", 24)))
                .unwrap();
            root.present().unwrap();
        }
        let inked = pixels.chunks(3).filter(|p| p[0] < 128).count();
        assert!(inked > 50, "only {inked} dark pixels: no glyphs drawn");
    }

    /// A file name of this test process's own in the system's temporary directory.
    pub(in crate::plot) fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("nn-plot-{}-{name}", std::process::id()))
    }

    #[test]
    fn png_writes_the_drawn_pixels() {
        let path = scratch("two-colours.png");
        super::png(&path, (5, 3), |root| {
            root.fill(&RED)?;
            root.draw_pixel((3, 1), &BLUE)
        })
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (size, buf) = super::png_file::tests::decode(&bytes);
        assert_eq!(size, (5, 3));
        for (i, pixel) in buf.chunks(3).enumerate() {
            let want: &[u8] = if i == 5 + 3 {
                &[0, 0, 255]
            } else {
                &[255, 0, 0]
            };
            assert_eq!(pixel, want, "pixel ({}, {})", i % 5, i / 5);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_failed_drawing_writes_nothing_and_names_the_file() {
        for name in ["failed.png", "failed.svg"] {
            let path = scratch(name);
            let err = if name.ends_with("png") {
                super::png(&path, (4, 4), |_| Err("no data")).unwrap_err()
            } else {
                super::svg(&path, (4, 4), |_| Err("no data")).unwrap_err()
            };
            let message = err.to_string();
            assert!(
                message.contains(name) && message.contains("no data"),
                "{message}"
            );
            assert!(!path.exists(), "{name} was written");
        }
    }

    #[test]
    fn svg_writes_the_document() {
        let path = scratch("text.svg");
        super::svg(&path, (120, 40), |root| {
            root.draw(&Text::new("loss", (5, 10), ("sans-serif", 14)))
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{text}"
        );
        assert!(text.contains("<text") && text.contains("loss"), "{text}");
        std::fs::remove_file(&path).unwrap();
    }
}
