//! Charts: several training runs compared on one metric ([`Comparison`],
//! [`compare`]), the embedded font plotters draws text with
//! ([`ensure_font`]), and [`plotters`] itself, re-exported so charts of your
//! own use the same version and features as `nn`.
//!
//! # Charts of your own
//!
//! `nn` builds plotters with the PNG (`BitMapBackend`) and SVG backends,
//! `LineSeries` and text through `ab_glyph`, which draws only fonts that were
//! registered: call [`ensure_font`] first and write text in `"sans-serif"`
//! (DejaVu Sans, embedded in the binary, so no system font library is needed).
//!
//! ```
//! use nn::plot::plotters::prelude::*;
//!
//! nn::plot::ensure_font();
//! let path = std::env::temp_dir().join("nn-plot-doc-parabola.png");
//! let root = BitMapBackend::new(&path, (640, 400)).into_drawing_area();
//! root.fill(&WHITE)?;
//! let mut chart = ChartBuilder::on(&root)
//!     .caption("y = x²", ("sans-serif", 22))
//!     .margin(12)
//!     .x_label_area_size(40)
//!     .y_label_area_size(50)
//!     .build_cartesian_2d(-1.0..1.0, 0.0..1.0)?;
//! chart.configure_mesh().x_desc("x").y_desc("y").draw()?;
//! let parabola = (-50..=50).map(|i| f64::from(i) / 50.0).map(|x| (x, x * x));
//! chart.draw_series(LineSeries::new(parabola, BLUE.stroke_width(2)))?;
//! root.present()?;
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For more of plotters (`point_series`, `area_series`, `histogram`,
//! `full_palette`, …), add it to your `Cargo.toml` with
//! `default-features = false` and those features; Cargo merges them into the
//! one build `nn::plot::plotters` names. Leave out `ttf`: it replaces the
//! registered fonts with system fonts found through fontconfig.

mod compare;

pub use compare::{compare, Comparison, PALETTE};
pub use plotters;

use std::sync::Once;

/// Registers DejaVu Sans (embedded in the binary) as plotters' `sans-serif`,
/// once, so plots need no system font libraries.
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
}
