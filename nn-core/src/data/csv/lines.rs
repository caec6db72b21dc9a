//! Line numbers as an editor shows them. The `csv` crate skips empty lines
//! without counting them and places a record after the previous one's line
//! end, so a record after a blank line would be reported a line early; we
//! count the line ends in the text ourselves.

/// Counts line ends up to each record, records taken in file order.
pub(super) struct Lines<'a> {
    text: &'a [u8],
    /// Where counting stopped, and the line there (1-based).
    at: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        Lines {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line of the record the `csv` crate places at byte `byte`: the first
    /// line at or after it that is not empty.
    pub fn line_of(&mut self, byte: u64) -> u64 {
        let from = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .clamp(self.at, self.text.len());
        let start = self.text[from..]
            .iter()
            .position(|&b| b != b'\n' && b != b'\r')
            .map_or(self.text.len(), |i| from + i);
        let ends = self.text[self.at..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += ends as u64;
        self.at = start;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_and_crlf_are_counted() {
        let text = b"a,b\r\n1,2\r\n\r\n\n3,4\n";
        let mut lines = Lines::new(text);
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(5), 2);
        // The crate places "3,4" right after the "1,2" line end.
        assert_eq!(lines.line_of(10), 5);
    }
}
