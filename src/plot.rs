//! Plotting support: the embedded font plotters draws text with.

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
