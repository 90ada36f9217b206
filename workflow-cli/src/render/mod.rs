//! Rendering: pure functions from the data of [`model`](crate::model) to the text `wf` prints.
//!
//! Nothing here reads a clock: the current time comes in as `now`, so the output is
//! reproducible and unit-testable.

mod history;
mod runs;

use std::time::Duration;

use workflow_core::{Payload, Timestamp};

pub use history::{event_details, render_attempts, render_history, render_history_json};
pub use runs::{outcome, render_describe, render_list, render_tree};

/// How many characters of an input, result or heartbeat a table or description shows.
pub const PREVIEW_CHARS: usize = 60;

/// Any of the read models as pretty JSON, one trailing newline: the same data the admin
/// endpoint serves, for scripts.
pub fn render_json<T: serde::Serialize>(value: &T) -> String {
    // The models are plain data with string keys: serializing them cannot fail.
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// A duration in its two largest units: `850ms`, `1.25s`, `2m03s`, `1h02m`, `3d04h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if s < 60 {
        let centis = (ms % 1000) / 10;
        format!("{s}.{centis:02}s")
    } else if s < 3_600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3_600)
    }
}

/// `t` relative to `origin`: `+1.25s`.
pub fn relative(t: Timestamp, origin: Timestamp) -> String {
    format!("+{}", format_duration(t.since(origin)))
}

/// How long ago `t` was at `now` (`3m02s ago`), or how far ahead (`in 5.00s`).
pub fn age(t: Timestamp, now: Timestamp) -> String {
    if t <= now {
        format!("{} ago", format_duration(now.since(t)))
    } else {
        format!("in {}", format_duration(t.since(now)))
    }
}

/// A payload on one line, cut at [`PREVIEW_CHARS`].
pub fn preview(p: &Payload) -> String {
    p.preview(PREVIEW_CHARS)
}

/// Cuts `s` to one line of at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A table with aligned columns; the last column is not padded.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new<const N: usize>(header: [&str; N]) -> Table {
        Table { rows: vec![header.iter().map(|h| h.to_string()).collect()] }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    /// The table, each line indented by `indent` spaces.
    pub(crate) fn render(&self, indent: usize) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = " ".repeat(indent);
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_two_units() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(1_250)), "1.25s");
        assert_eq!(format_duration(Duration::from_secs(123)), "2m03s");
        assert_eq!(format_duration(Duration::from_secs(3_720)), "1h02m");
        assert_eq!(format_duration(Duration::from_secs(3 * 86_400 + 4 * 3_600)), "3d04h");
    }

    #[test]
    fn ages_point_both_ways() {
        assert_eq!(age(Timestamp(1_000), Timestamp(4_000)), "3.00s ago");
        assert_eq!(age(Timestamp(9_000), Timestamp(4_000)), "in 5.00s");
    }

    #[test]
    fn tables_align_and_trim() {
        let mut t = Table::new(["A", "LONG HEADER", "C"]);
        t.row(vec!["xyz".into(), "1".into(), "".into()]);
        assert_eq!(t.render(0), "A    LONG HEADER  C\nxyz  1\n");
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
